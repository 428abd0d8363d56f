"""Message <-> row: one tuple of bind values per message, in column order, and back.

Built once per (entity, dialect); the per-row work is a loop over precomputed column plans.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from prism_runtime.schema import Column, ColumnKind, EntitySpec
from prism_runtime.sql.dialect import SqlDialect

M = TypeVar("M", bound=Message)
FieldEncoder = Callable[[Any], Any]
_FD = FieldDescriptor


class RowCodec(Generic[M]):
    """Encodes messages into rows and decodes rows into messages for one entity and dialect."""

    def __init__(self, spec: EntitySpec, message: type[M], dialect: SqlDialect) -> None:
        self.spec = spec
        self.message = message
        self.columns = spec.columns
        fields = message.DESCRIPTOR.fields_by_name
        # A blind index column is no field: the PII layer fills it in (prism_runtime.pii.sealer).
        self._encoders = [
            _no_value if c.blind_index_of else _field_encoder(c, dialect, fields[c.name])
            for c in spec.columns
        ]
        self._decoders = [
            (i, c.name, _field_decoder(c, dialect))
            for i, c in enumerate(spec.columns)
            if not _is_json(c) and not c.blind_index_of
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
        return tuple(encode(message) for encode in self._encoders)

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


def _no_value(message: Any) -> None:
    return None


def _as_opened(value: Any) -> Any:
    return value


def _is_json(column: Column) -> bool:
    return column.kind is ColumnKind.JSON


def _field_encoder(column: Column, dialect: SqlDialect, field: Any) -> FieldEncoder:
    name, nullable = column.name, column.nullable
    encode = dialect.encoder(column)
    if column.kind is ColumnKind.JSON:
        to_json = json_field(field)
        # An empty repeated or map field and an unset message field both store as null JSON.
        empty = None if nullable else encode(None)

        def json_value(message: Any) -> Any:
            value = to_json(message)
            return empty if value is None else encode(value)

        return json_value
    if column.repeated:
        return lambda message: encode(list(getattr(message, name)))
    if column.kind is ColumnKind.TIMESTAMP:
        zero = None if nullable else encode((0, 0))

        def timestamp_value(message: Any) -> Any:
            if not message.HasField(name):
                return zero
            ts = getattr(message, name)
            return encode((ts.seconds, ts.nanos))

        return timestamp_value
    if column.wrapped:
        return lambda message: encode(getattr(message, name).value) if message.HasField(name) else None
    if nullable:
        return lambda message: encode(getattr(message, name)) if message.HasField(name) else None
    return lambda message: encode(getattr(message, name))


def json_field(field: Any) -> Callable[[Any], Any]:
    """Return a function giving one field of a message in protobuf's JSON mapping, or None when empty or unset.

    Field by field rather than MessageToDict of the whole message, which would walk every scalar column too.
    """
    name = field.name
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_of = _map_key(field.message_type.fields_by_name["key"])
        value_of = _json_scalar(field.message_type.fields_by_name["value"])
        return lambda m: {key_of(k): value_of(v) for k, v in getattr(m, name).items()} or None
    if _is_repeated(field):
        element = _json_scalar(field)
        return lambda m: [element(v) for v in getattr(m, name)] or None
    as_dict = _json_scalar(field)
    return lambda m: as_dict(getattr(m, name)) if m.HasField(name) else None


def _is_repeated(field: Any) -> bool:
    # protobuf 6+ has is_repeated; older runtimes only the label.
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == _FD.LABEL_REPEATED


def _map_key(field: Any) -> Callable[[Any], str]:
    if field.type == _FD.TYPE_BOOL:
        return lambda k: "true" if k else "false"
    return str


def _json_scalar(field: Any) -> Callable[[Any], Any]:
    kind = field.type
    if kind in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP):
        return lambda v: json_format.MessageToDict(
            v, preserving_proto_field_name=True, use_integers_for_enums=True
        )
    if kind == _FD.TYPE_BYTES:
        return lambda v: base64.b64encode(v).decode("ascii")
    if kind in (_FD.TYPE_FLOAT, _FD.TYPE_DOUBLE):
        return lambda v: (
            v if math.isfinite(v) else ("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
        )
    return lambda v: v  # ints (exact in JSON numbers as Python writes them), bools, strings, enum numbers


def _field_decoder(column: Column, dialect: SqlDialect) -> Callable[[Any], Any]:
    if column.encrypted:
        return _as_opened  # the PII layer already turned the ciphertext into the field's str or bytes
    decode = dialect.decoder(column)
    if column.kind is ColumnKind.TIMESTAMP:

        def timestamp(value: Any) -> Timestamp:
            seconds, nanos = decode(value)
            return Timestamp(seconds=seconds, nanos=nanos)

        return timestamp
    if column.wrapped:
        return lambda value: {"value": decode(value)}
    return decode
