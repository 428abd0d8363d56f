"""Message <-> row: one tuple of bind values per message, in column order, and back.

Built once per (entity, dialect); the per-row work is a loop over precomputed column plans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from prism_runtime.schema import ColumnKind, EntitySpec
from prism_runtime.sql.dialect import SqlDialect

M = TypeVar("M", bound=Message)


class RowCodec(Generic[M]):
    """Encodes messages into rows and decodes rows into messages for one entity and dialect."""

    def __init__(self, spec: EntitySpec, message: type[M], dialect: SqlDialect) -> None:
        self.spec = spec
        self.message = message
        self.columns = spec.columns
        self._json = tuple(c.name for c in spec.columns if c.kind is ColumnKind.JSON)
        # A blind index column is no field: the PII layer fills it in (prism_runtime.pii.sealer).
        self._encoders: list[Callable[[M, dict[str, Any] | None], Any]] = [
            _no_value if c.blind_index_of else _field_encoder(c.name, c.kind, c.nullable, dialect)
            for c in spec.columns
        ]
        fields = [c for c in spec.columns if not c.blind_index_of]
        self._decoders = [
            (c.name, c.kind, dialect.decoder(c.kind)) for c in fields if c.kind is not ColumnKind.JSON
        ]
        self._json_decoders = [
            (i, c.name, dialect.decoder(c.kind))
            for i, c in enumerate(spec.columns)
            if c.kind is ColumnKind.JSON
        ]
        self._scalar_index = [
            i for i, c in enumerate(spec.columns) if c.kind is not ColumnKind.JSON and not c.blind_index_of
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
        """Return the primary key values of an encoded row."""
        return tuple(row[i] for i in self.key_index)

    def decode(self, row: Sequence[Any]) -> M:
        """Return the message stored in one fetched row."""
        kwargs: dict[str, Any] = {}
        for index, (name, kind, decode) in zip(self._scalar_index, self._decoders, strict=True):
            value = row[index]
            if value is None:
                continue
            if kind is ColumnKind.TIMESTAMP:
                seconds, nanos = decode(value)
                kwargs[name] = Timestamp(seconds=seconds, nanos=nanos)
            else:
                kwargs[name] = decode(value)
        message = self.message(**kwargs)
        if self._json_decoders:
            merged = {name: decode(row[i]) for i, name, decode in self._json_decoders if row[i] is not None}
            present = {name: value for name, value in merged.items() if value is not None}
            if present:
                json_format.ParseDict(present, message)
        return message


def _no_value(message: Any, as_json: dict[str, Any] | None) -> None:
    return None


def _field_encoder(
    name: str, kind: ColumnKind, nullable: bool, dialect: SqlDialect
) -> Callable[[Any, dict[str, Any] | None], Any]:
    encode = dialect.encoder(kind)
    if kind is ColumnKind.JSON:
        # Absent from MessageToDict means empty (repeated/map) or unset (message): both store as null JSON.
        def json_value(message: Any, as_json: dict[str, Any] | None) -> Any:
            assert as_json is not None
            value = as_json.get(name)
            if value is None:
                return None if nullable else encode(None)
            return encode(value)

        return json_value
    if kind is ColumnKind.TIMESTAMP:

        def timestamp_value(message: Any, _: dict[str, Any] | None) -> Any:
            if not message.HasField(name):
                return None if nullable else encode((0, 0))
            ts = getattr(message, name)
            return encode((ts.seconds, ts.nanos))

        return timestamp_value
    if nullable:

        def optional_value(message: Any, _: dict[str, Any] | None) -> Any:
            return encode(getattr(message, name)) if message.HasField(name) else None

        return optional_value

    def value(message: Any, _: dict[str, Any] | None) -> Any:
        return encode(getattr(message, name))

    return value
