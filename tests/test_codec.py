"""The row codec alone: messages through encoded rows and back, for fields the generated schemas lack.

Encoded rows are what each driver binds and, for these kinds, what it fetches back (asyncpg returns the
datetimes and lists it was given; SQLite the text, integers and blobs), so no server is needed; JSON
columns, which the servers rewrite (JSONB reorders keys), go through real SQLite and Postgres.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from backends import BACKENDS, drop_schema, url_for
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
    timestamp_pb2,
    wrappers_pb2,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import prism_runtime
from prism_runtime.errors import CorruptRow, InvalidKey
from prism_runtime.inputs import message_check, message_checks
from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql.codec import RowCodec
from prism_runtime.sql.dialect import SqlDialect, json_array_encoder
from prism_runtime.sql.dialects import PostgresDialect, SqliteDialect
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.keyvalue import SqlKeyValue

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


def test_the_batch_check_tells_distinct_keys_and_refuses_what_the_single_check_refuses() -> None:
    cls = keyword_message()
    _, admit_all = message_checks(KEYWORD_SPEC, cls, distinct=True)
    batch = admit_all(cls(**{"from": k}) for k in ("a", "b", "c"))
    assert batch == [cls(**{"from": k}) for k in ("a", "b", "c")] and batch.distinct
    assert not admit_all([cls(**{"from": "a"}), cls(**{"from": "b"}), cls(**{"from": "a"})]).distinct
    assert not message_checks(KEYWORD_SPEC, cls)[1]([cls(**{"from": "a"})]).distinct  # not asked: unknown
    with pytest.raises(InvalidKey, match="key field from is empty"):
        admit_all([cls(**{"from": "a"}), cls()])


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.text(st.characters(blacklist_categories=["Cs"]))), odd=st.lists(st.text()))
def test_sqlite_stores_a_string_list_as_json_dumps_writes_it(values: list[str], odd: list[str]) -> None:
    """SQLite's string list is joined by hand, not by json.dumps; the text must still be json.dumps's exactly."""
    cls = keyword_message()
    codec = RowCodec(KEYWORD_SPEC, cls, SqliteDialect())
    row = codec.encode(cls(**{"from": "k", "in": values}))
    assert row[codec.column_index("in")] == json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    # Strings protobuf refuses (lone surrogates) too: the encoder is the dialect's for any list.
    assert json_array_encoder(ColumnKind.STRING)(odd) == json.dumps(
        odd, separators=(",", ":"), ensure_ascii=False
    )
    assert codec.decode(row) == cls(**{"from": "k", "in": values})


def lists_message() -> Any:
    """Return a message class with a repeated field of each scalar kind a list column stores."""
    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("prismtest.codec.Lists"))
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name="prismtest/codec/lists.proto", package="prismtest.codec", syntax="proto3"
    )
    message = proto.message_type.add(name="Lists")
    message.field.add(name="id", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    for number, (name, kind) in enumerate(_LIST_FIELDS.items(), start=2):
        message.field.add(name=name, number=number, type=kind, label=_F.LABEL_REPEATED)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prismtest.codec.Lists"))


_LIST_FIELDS = {
    "texts": _F.TYPE_STRING,
    "int32s": _F.TYPE_INT32,
    "int64s": _F.TYPE_INT64,
    "uint64s": _F.TYPE_UINT64,
    "bools": _F.TYPE_BOOL,
    "doubles": _F.TYPE_DOUBLE,
    "blobs": _F.TYPE_BYTES,
}
_LIST_KINDS = {
    "texts": ColumnKind.STRING,
    "int32s": ColumnKind.INT32,
    "int64s": ColumnKind.INT64,
    "uint64s": ColumnKind.UINT64,
    "bools": ColumnKind.BOOL,
    "doubles": ColumnKind.DOUBLE,
    "blobs": ColumnKind.BYTES,
}
LISTS_SPEC = EntitySpec(
    namespace="prismtest_codec_lists",
    message_name="prismtest.codec.Lists",
    abstraction=Abstraction.KEY_VALUE,
    key="id",
    columns=(
        Column("id", 1, ColumnKind.STRING),
        *(
            Column(name, n, kind, repeated=True)
            for n, (name, kind) in enumerate(_LIST_KINDS.items(), start=2)
        ),
        Column("prism_expires_at", 0, ColumnKind.INT64, nullable=True, expiry=True),
    ),
)


@st.composite
def list_messages(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "texts": draw(st.lists(st.text(st.characters(blacklist_categories=["Cs"])), max_size=4)),
        "int32s": draw(st.lists(st.integers(-(1 << 31), (1 << 31) - 1), max_size=3)),
        "int64s": draw(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=3)),
        "uint64s": draw(st.lists(st.integers(0, (1 << 64) - 1), max_size=3)),
        "bools": draw(st.lists(st.booleans(), max_size=3)),
        "doubles": draw(st.lists(st.floats(), max_size=3)),  # nan and the infinities too
        "blobs": draw(st.lists(st.binary(max_size=6), max_size=3)),
    }


def _dumps_as_before(kind: ColumnKind, values: list[Any]) -> str:
    """The JSON list the SQLite encoder wrote before it wrote lists in place: json.dumps of the JSON values."""
    if kind is ColumnKind.BYTES:
        values = [base64.b64encode(v).decode("ascii") for v in values]
    elif kind is ColumnKind.DOUBLE:
        values = [v if math.isfinite(v) else str(v) for v in values]
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=200, deadline=None)
@given(fields=st.lists(list_messages(), min_size=1, max_size=4), expires=st.none() | st.integers(0, 1 << 50))
@pytest.mark.parametrize("dialect", [PostgresDialect(), SqliteDialect()], ids=["postgres", "sqlite"])
def test_batch_encoders_write_what_encode_writes(
    dialect: SqlDialect, fields: list[dict[str, Any]], expires: int | None
) -> None:
    """encode_rows and encode_flat are `encode` in a loop; SQLite's lists are json.dumps's text exactly."""
    cls = lists_message()
    codec = RowCodec(LISTS_SPEC, cls, dialect)
    messages = [cls(id=f"k{i}", **f) for i, f in enumerate(fields)]
    rows = [codec.encode_expiring(m, expires) for m in messages]
    # repr, not ==: a nan is unequal to itself, and repr tells every other float (and -0.0) apart.
    assert repr(codec.encode_rows(messages, expires)) == repr(rows)
    assert repr(codec.encode_flat(messages, expires)) == repr([v for row in rows for v in row])
    assert rows[0][-1] == expires
    if isinstance(dialect, SqliteDialect):
        for row, f in zip(rows, fields, strict=True):
            for name, kind in _LIST_KINDS.items():
                assert row[codec.column_index(name)] == _dumps_as_before(kind, f[name]), name
    for row, message in zip(rows, messages, strict=True):
        # In the JSON mapping every nan is "NaN", whatever its payload (which no backend keeps).
        assert json_format.MessageToDict(codec.decode(row)) == json_format.MessageToDict(message)


# -- JSON columns: every field type through a real SQLite and Postgres, against ParseDict -------------------


def _no_negative_zero(value: float) -> float:
    return value + 0.0  # -0.0 + 0.0 is 0.0; every other value is unchanged


# Every scalar type a map value or a message field can have, as (proto type, hypothesis strategy).
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)  # Postgres text and JSONB cannot hold U+0000
_SCALARS: dict[str, tuple[int, st.SearchStrategy[Any]]] = {
    "int32": (_F.TYPE_INT32, st.integers(-(1 << 31), (1 << 31) - 1)),
    "int64": (_F.TYPE_INT64, st.integers(-(1 << 63), (1 << 63) - 1)),
    "uint32": (_F.TYPE_UINT32, st.integers(0, (1 << 32) - 1)),
    "uint64": (_F.TYPE_UINT64, st.integers(0, (1 << 64) - 1)),
    "sint32": (_F.TYPE_SINT32, st.integers(-(1 << 31), (1 << 31) - 1)),
    "sint64": (_F.TYPE_SINT64, st.integers(-(1 << 63), (1 << 63) - 1)),
    "fixed32": (_F.TYPE_FIXED32, st.integers(0, (1 << 32) - 1)),
    "fixed64": (_F.TYPE_FIXED64, st.integers(0, (1 << 64) - 1)),
    "sfixed32": (_F.TYPE_SFIXED32, st.integers(-(1 << 31), (1 << 31) - 1)),
    "sfixed64": (_F.TYPE_SFIXED64, st.integers(-(1 << 63), (1 << 63) - 1)),
    # NaN only as Python makes it: JSON keeps no NaN payload, so another one would not come back bit for bit.
    # No -0.0: a JSONB number has no negative zero (Postgres stores it as 0).
    "float": (_F.TYPE_FLOAT, st.floats(width=32, allow_nan=False).map(_no_negative_zero) | st.just(math.nan)),
    "double": (_F.TYPE_DOUBLE, st.floats(allow_nan=False).map(_no_negative_zero) | st.just(math.nan)),
    "bool": (_F.TYPE_BOOL, st.booleans()),
    "string": (_F.TYPE_STRING, _TEXT),
    "bytes": (_F.TYPE_BYTES, st.binary(max_size=20)),
    "enum": (_F.TYPE_ENUM, st.integers(0, 4)),  # open enum: unnamed numbers too
}
_KEY_TYPES = [k for k in _SCALARS if k not in ("float", "double", "bytes", "enum")]
_ENUM = ".prismtest.codec.Hue"


def shapes_message() -> Any:
    """Return `Shapes`: a map per scalar value type, a map per key type, a flat message, and the shapes
    still left to ParseDict (a repeated message, a map of messages)."""
    pool = descriptor_pool.Default()
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName("prismtest.codec.Shapes"))
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name="prismtest/codec/shapes.proto", package="prismtest.codec", syntax="proto3"
    )
    hue = proto.enum_type.add(name="Hue")
    for number, name in enumerate(["HUE_UNSPECIFIED", "HUE_RED", "HUE_BLUE"]):
        hue.value.add(name=name, number=number)
    flat = proto.message_type.add(name="Flat")
    number = 0
    for name, (kind, _) in _SCALARS.items():
        for label, prefix in ((_F.LABEL_OPTIONAL, "one_"), (_F.LABEL_REPEATED, "many_")):
            number += 1
            type_name = _ENUM if kind == _F.TYPE_ENUM else None
            flat.field.add(name=prefix + name, number=number, type=kind, label=label, type_name=type_name)
    flat.field.add(
        name="maybe",
        number=number + 1,
        type=_F.TYPE_INT32,
        label=_F.LABEL_OPTIONAL,
        proto3_optional=True,
        oneof_index=0,
    )
    flat.oneof_decl.add(name="_maybe")
    shapes = proto.message_type.add(name="Shapes")
    shapes.field.add(name="id", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    number = 1

    def add_map(field: str, key: int, value: int, value_type: str | None) -> None:
        nonlocal number
        number += 1
        entry = "".join(part.title() for part in field.split("_")) + "Entry"
        shapes.nested_type.add(name=entry, options=descriptor_pb2.MessageOptions(map_entry=True))
        shapes.nested_type[-1].field.add(name="key", number=1, type=key, label=_F.LABEL_OPTIONAL)
        shapes.nested_type[-1].field.add(
            name="value", number=2, type=value, label=_F.LABEL_OPTIONAL, type_name=value_type
        )
        shapes.field.add(
            name=field,
            number=number,
            type=_F.TYPE_MESSAGE,
            label=_F.LABEL_REPEATED,
            type_name=f".prismtest.codec.Shapes.{entry}",
        )

    for name, (kind, _) in _SCALARS.items():
        add_map(f"to_{name}", _F.TYPE_STRING, kind, _ENUM if kind == _F.TYPE_ENUM else None)
    for name in _KEY_TYPES:
        add_map(f"from_{name}", _SCALARS[name][0], _F.TYPE_STRING, None)
    add_map("to_flat", _F.TYPE_STRING, _F.TYPE_MESSAGE, ".prismtest.codec.Flat")
    for field, label in (("flat", _F.LABEL_OPTIONAL), ("flats", _F.LABEL_REPEATED)):
        number += 1
        shapes.field.add(
            name=field, number=number, type=_F.TYPE_MESSAGE, label=label, type_name=".prismtest.codec.Flat"
        )
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prismtest.codec.Shapes"))


def _shapes_spec() -> EntitySpec:
    cls = shapes_message()
    json_fields = [f for f in cls.DESCRIPTOR.fields if f.name != "id"]
    columns = (
        Column("id", 1, ColumnKind.STRING),
        *(Column(f.name, f.number, ColumnKind.JSON, nullable=f.name == "flat") for f in json_fields),
    )
    table = '"prismtest_codec_shapes"'
    return EntitySpec(
        namespace="prismtest_codec_shapes",
        message_name="prismtest.codec.Shapes",
        abstraction=Abstraction.KEY_VALUE,
        key="id",
        columns=columns,
        ddl={
            dialect: (
                f'CREATE TABLE IF NOT EXISTS {table} ("id" TEXT NOT NULL PRIMARY KEY, '
                + ", ".join(f'"{f.name}" {kind}' for f in json_fields)
                + ")",
            )
            for dialect, kind in (("sqlite", "TEXT"), ("postgres", "JSONB"))
        },
    )


@st.composite
def flat_messages(draw: st.DrawFn) -> dict[str, Any]:
    """Return the fields of one Flat message."""
    fields: dict[str, Any] = {}
    for name, (_, values) in _SCALARS.items():
        if draw(st.booleans()):
            fields[f"one_{name}"] = draw(values)
        fields[f"many_{name}"] = draw(st.lists(values, max_size=3))
    if draw(st.booleans()):
        fields["maybe"] = draw(st.sampled_from([0, -1, 7]))
    return fields


@st.composite
def shapes(draw: st.DrawFn) -> Any:
    """Return a Shapes message with random content in every field (or none)."""
    cls = shapes_message()
    message = cls(id=draw(st.uuids()).hex)
    for name, (_, values) in _SCALARS.items():
        getattr(message, f"to_{name}").update(draw(st.dictionaries(_TEXT, values, max_size=3)))
    for name in _KEY_TYPES:
        getattr(message, f"from_{name}").update(draw(st.dictionaries(_SCALARS[name][1], _TEXT, max_size=3)))
    flat_type = message_factory.GetMessageClass(cls.DESCRIPTOR.fields_by_name["flat"].message_type)
    for key, fields in draw(st.dictionaries(_TEXT, flat_messages(), max_size=2)).items():
        message.to_flat[key].CopyFrom(flat_type(**fields))
    if draw(st.booleans()):
        message.flat.SetInParent()  # present, maybe with every field at its default
        message.flat.MergeFrom(flat_type(**draw(flat_messages())))
    message.flats.extend(flat_type(**fields) for fields in draw(st.lists(flat_messages(), max_size=2)))
    return message


@pytest.fixture(params=BACKENDS, scope="module")
async def shapes_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[SqlKeyValue[Any], Any]]:
    url = await url_for(request, request.param, tmp_path_factory.mktemp("shapes"))
    spec = _shapes_spec()
    try:
        async with prism_runtime.connect(url) as db:
            driver = cast(SqlDriver, db.backend_for(spec))
            await driver.execute_script(spec.ddl_for(request.param), namespace=spec.namespace)
            yield SqlKeyValue(spec, shapes_message(), driver), driver
    finally:
        if request.param == "postgres":
            await drop_schema(url)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=shapes())
async def test_json_columns_read_back_byte_identical_to_parsedict(
    shapes_store: tuple[SqlKeyValue[Any], SqlDriver], message: Any
) -> None:
    store, driver = shapes_store
    await store.put([message])
    got = await store.get((message.id,))
    assert got is not None
    # The reference: the stored row's JSON values through ParseDict, as every JSON column was read before.
    [row] = await driver.fetch(store._get, (message.id,), namespace=store.spec.namespace)
    reference = type(message)(id=message.id)
    try:
        for column, value in zip(store.spec.columns[1:], row[1:], strict=True):
            decoded = driver.dialect.decoder(column)(value)
            if decoded is not None:
                json_format.ParseDict({column.name: decoded}, reference)
    except json_format.ParseError:
        # ParseDict refuses the largest floats MessageToDict writes ("3.4028235e+38" rounds above FLT_MAX as a
        # double): the old path could not read such a row back at all, the direct one does (checked below).
        reference = message
    wanted = message.SerializeToString(deterministic=True)
    assert got.SerializeToString(deterministic=True) == wanted
    assert reference.SerializeToString(deterministic=True) == wanted
    assert got.HasField("flat") == message.HasField("flat")


async def test_the_largest_float32_in_a_repeated_or_mapped_message_reads_back(
    shapes_store: tuple[SqlKeyValue[Any], SqlDriver],
) -> None:
    # MessageToDict writes FLT_MAX in a float field as 3.4028235e+38, which ParseDict alone refuses: a repeated
    # message and a map of messages are left to ParseDict, so such a row was stored and then unreadable.
    store, _ = shapes_store
    cls = shapes_message()
    largest = float.fromhex("0x1.fffffep+127")
    message = cls(id="float-max")
    message.flats.add(one_float=largest).many_float.extend([-largest, 1.5])
    message.to_flat["k"].one_float = -largest
    message.flat.one_double = float("3.4028235e+38")  # a double field keeps that value as it is
    await store.put([message])
    got = await store.get((message.id,))
    assert got is not None
    assert got.SerializeToString(deterministic=True) == message.SerializeToString(deterministic=True)


def test_a_json_value_the_fast_path_refuses_gets_parsedicts_verdict() -> None:
    cls = shapes_message()
    spec = _shapes_spec()
    codec = RowCodec(spec, cls, SqliteDialect())
    row = ["k", *([None] * (len(spec.columns) - 1))]
    names = [c.name for c in spec.columns]
    # A float where an int64 map value belongs: the setter refuses it, ParseDict takes an integral float.
    row[names.index("to_int64")] = '{"a": 2.0}'
    # JSON names (lowerCamelCase) in a flat message: ParseDict reads them, the setter does not.
    row[names.index("flat")] = '{"oneInt32": 5}'
    decoded = codec.decode(row)
    assert dict(decoded.to_int64) == {"a": 2}
    assert decoded.flat.one_int32 == 5
    row[names.index("to_int64")] = '{"a": "many"}'
    with pytest.raises(CorruptRow):
        codec.decode(row)
