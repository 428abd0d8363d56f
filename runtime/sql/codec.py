"""Message <-> row: one tuple of bind values per message, in column order, and back.

Built once per (entity, dialect); the per-row work is a loop over precomputed column plans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from prism_runtime.schema import Column, ColumnKind, EntitySpec
from prism_runtime.sql.dialect import SqlDialect

M = TypeVar("M", bound=Message)
FieldEncoder = Callable[[Any, dict[str, Any] | None], Any]


class RowCodec(Generic[M]):
    """Encodes messages into rows and decodes rows into messages for one entity and dialect."""

    def __init__(self, spec: EntitySpec, message: type[M], dialect: SqlDialect) -> None:
        self.spec = spec
        self.message = message
        self.columns = spec.columns
        self._json = any(_is_json(c) for c in spec.columns)
        self._encoders = [_field_encoder(c, dialect) for c in spec.columns]
        self._decoders = [
            (i, c.name, _field_decoder(c, dialect)) for i, c in enumerate(spec.columns) if not _is_json(c)
        ]
        self._json_decoders = [
            (i, c.name, dialect.decoder(c)) for i, c in enumerate(spec.columns) if _is_json(c)
        ]
        self.key_index = tuple(self.column_index(c.name) for c in spec.key_columns)

    def column_index(self, name: str) -> int:
        """Return the position of a column in encoded rows."""
        return next(i for i, c in enumerate(self.columns) if c.name == name)

    def encode(self, message: M) -> tuple[Any, ...]:
        """Return the bind values of one message, in column order."""
        as_json = (
            json_format.MessageToDict(message, preserving_proto_field_name=True, use_integers_for_enums=True)
            if self._json
            else None
        )
        return tuple(encode(message, as_json) for encode in self._encoders)

    def key_of(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """Return the primary key values of an encoded or fetched row."""
        return tuple(row[i] for i in self.key_index)

    def decode(self, row: Sequence[Any]) -> M:
        """Return the message stored in one fetched row."""
        kwargs: dict[str, Any] = {}
        for index, name, decode in self._decoders:
            value = row[index]
            if value is not None:
                kwargs[name] = decode(value)
        message = self.message(**kwargs)
        if self._json_decoders:
            present = {name: decode(row[i]) for i, name, decode in self._json_decoders if row[i] is not None}
            present = {name: value for name, value in present.items() if value is not None}
            if present:
                json_format.ParseDict(present, message)
        return message


def _is_json(column: Column) -> bool:
    return column.kind is ColumnKind.JSON


def _field_encoder(column: Column, dialect: SqlDialect) -> FieldEncoder:
    name, nullable = column.name, column.nullable
    encode = dialect.encoder(column)
    if column.kind is ColumnKind.JSON:
        # Absent from MessageToDict means empty (repeated/map) or unset (message): both store as null JSON.
        def json_value(message: Any, as_json: dict[str, Any] | None) -> Any:
            assert as_json is not None
            value = as_json.get(name)
            if value is None:
                return None if nullable else encode(None)
            return encode(value)

        return json_value
    if column.repeated:
        return lambda message, _: encode(list(getattr(message, name)))
    if column.kind is ColumnKind.TIMESTAMP:

        def timestamp_value(message: Any, _: dict[str, Any] | None) -> Any:
            if not message.HasField(name):
                return None if nullable else encode((0, 0))
            ts = getattr(message, name)
            return encode((ts.seconds, ts.nanos))

        return timestamp_value
    if column.wrapped:
        return lambda message, _: encode(getattr(message, name).value) if message.HasField(name) else None
    if nullable:
        return lambda message, _: encode(getattr(message, name)) if message.HasField(name) else None
    return lambda message, _: encode(getattr(message, name))


def _field_decoder(column: Column, dialect: SqlDialect) -> Callable[[Any], Any]:
    decode = dialect.decoder(column)
    if column.kind is ColumnKind.TIMESTAMP:

        def timestamp(value: Any) -> Timestamp:
            seconds, nanos = decode(value)
            return Timestamp(seconds=seconds, nanos=nanos)

        return timestamp
    if column.wrapped:
        return lambda value: {"value": decode(value)}
    return decode
