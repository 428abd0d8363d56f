"""The row codec alone: messages through encoded rows and back, for fields the generated schemas lack.

Encoded rows are what each driver binds and, for these kinds, what it fetches back (asyncpg returns the
datetimes and lists it was given; SQLite the text, integers and blobs), so no server is needed.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2, wrappers_pb2

from prism_runtime.errors import InvalidKey
from prism_runtime.inputs import message_check
from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql.codec import RowCodec
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.dialects import PostgresDialect, SqliteDialect

_F = descriptor_pb2.FieldDescriptorProto


def keyword_message() -> Any:
    """Return a message class whose fields are named like Python keywords, one of each way a field decodes."""
    # The default pool, as generated code uses: its Timestamp is the class the runtime imports.
    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("prismtest.codec.Keywords"))
    except KeyError:
        pass
    assert timestamp_pb2.Timestamp and wrappers_pb2.Int64Value  # their files are in the pool
    proto = descriptor_pb2.FileDescriptorProto(
        name="prismtest/codec/keywords.proto",
        package="prismtest.codec",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto"],
    )
    message = proto.message_type.add(name="Keywords")
    for number, (name, kind, label, type_name) in enumerate(
        [
            ("from", _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
            ("class", _F.TYPE_DOUBLE, _F.LABEL_OPTIONAL, ""),
            ("in", _F.TYPE_STRING, _F.LABEL_REPEATED, ""),
            ("def", _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Timestamp"),
            ("is", _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
            ("not", _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.StringValue"),
        ],
        start=1,
    ):
        message.field.add(name=name, number=number, type=kind, label=label, type_name=type_name or None)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prismtest.codec.Keywords"))


KEYWORD_SPEC = EntitySpec(
    namespace="prismtest_codec_keywords",
    message_name="prismtest.codec.Keywords",
    abstraction=Abstraction.KEY_VALUE,
    key="from",
    columns=(
        Column("from", 1, ColumnKind.STRING),
        Column("class", 2, ColumnKind.DOUBLE),
        Column("in", 3, ColumnKind.STRING, repeated=True),
        Column("def", 4, ColumnKind.TIMESTAMP, nullable=True),
        Column("is", 5, ColumnKind.INT64, nullable=True, wrapped=True),
        Column("not", 6, ColumnKind.JSON, nullable=True),
    ),
)


@pytest.mark.parametrize("dialect", [PostgresDialect(), SqliteDialect()], ids=["postgres", "sqlite"])
def test_fields_named_like_keywords_round_trip(dialect: SqlDialect) -> None:
    cls = keyword_message()
    codec = RowCodec(KEYWORD_SPEC, cls, dialect)
    full = cls(**{"from": "k", "class": 2.5, "in": ["a", "b"]})
    getattr(full, "def").FromSeconds(1_700_000_000)
    getattr(full, "is").value = 0
    getattr(full, "not").value = "text"
    bare = cls(**{"from": "k"})
    for message in (full, bare):
        decoded = codec.decode(codec.encode(message))
        assert decoded == message
        for name in ("def", "is", "not"):
            assert decoded.HasField(name) == message.HasField(name), name


@pytest.mark.parametrize("dialect", [PostgresDialect(), SqliteDialect()], ids=["postgres", "sqlite"])
def test_null_in_any_column_leaves_the_field_unset(dialect: SqlDialect) -> None:
    cls = keyword_message()
    codec = RowCodec(KEYWORD_SPEC, cls, dialect)
    assert codec.decode((None,) * len(KEYWORD_SPEC.columns)) == cls()


def test_the_input_check_reads_a_key_field_named_like_a_keyword() -> None:
    cls = keyword_message()
    admit = message_check(KEYWORD_SPEC, cls)
    admit(cls(**{"from": "k"}))
    with pytest.raises(InvalidKey, match="key field from is empty"):
        admit(cls())
