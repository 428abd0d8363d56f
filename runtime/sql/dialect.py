"""SQL dialects: column types and value conversions. The base is the common case; subclasses say what differs."""

from __future__ import annotations

import calendar
import datetime
import json
import math
import re
from collections.abc import Callable
from typing import Any, ClassVar

from sqlglot import exp

from prism_runtime.schema import Column, ColumnKind

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

_EPOCH = datetime.datetime(1970, 1, 1)
_TS_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")


def _identity(value: Any) -> Any:
    return value


class SqlDialect:
    """A SQL dialect as Prism uses it; subclass and override only what differs."""

    name: ClassVar[str] = ""
    """The sqlglot dialect name."""

    types: ClassVar[dict[ColumnKind, str]] = {
        ColumnKind.INT32: "INTEGER",
        ColumnKind.INT64: "BIGINT",
        ColumnKind.UINT64: "NUMERIC(20, 0)",
        ColumnKind.FLOAT: "REAL",
        ColumnKind.DOUBLE: "DOUBLE PRECISION",
        ColumnKind.BOOL: "BOOLEAN",
        ColumnKind.STRING: "TEXT",
        ColumnKind.BYTES: "BYTEA",
        ColumnKind.ENUM: "INTEGER",
        ColumnKind.TIMESTAMP: "TIMESTAMPTZ",
        ColumnKind.JSON: "JSONB",
    }

    max_identifier_length: ClassVar[int] = 63

    def placeholder(self, index: int) -> str:
        """Return the bind parameter marker for the 1-based parameter `index`."""
        return "?"

    def quote(self, identifier: str) -> str:
        """Return `identifier` quoted for this dialect."""
        return exp.to_identifier(identifier, quoted=True).sql(self.name)

    def column_type(self, column: Column) -> exp.DataType:
        """Return the SQL type of a column."""
        return exp.DataType.build(self.types[column.kind], dialect=self.name)

    def default(self, column: Column) -> exp.Expression:
        """Return the DEFAULT of a NOT NULL column: the proto3 zero value, stored as this dialect stores it."""
        kind = column.kind
        if kind is ColumnKind.STRING:
            return exp.Literal.string("")
        if kind is ColumnKind.BYTES:
            return exp.Literal.string("")
        if kind is ColumnKind.JSON:
            return exp.Literal.string("null")
        if kind is ColumnKind.BOOL:
            return exp.false()
        if kind is ColumnKind.TIMESTAMP:
            return exp.Literal.string("1970-01-01T00:00:00.000000000Z")
        return exp.Literal.number(0)

    def append_only(self, table: str) -> list[str]:
        """Return DDL that makes `table` reject UPDATE and DELETE (none where the dialect cannot)."""
        return []

    # -- values ------------------------------------------------------------------------------------

    def encoder(self, kind: ColumnKind) -> Encoder:
        """Return the function turning a Python field value into a bind parameter."""
        table: dict[ColumnKind, Encoder] = {
            ColumnKind.FLOAT: self.encode_float,
            ColumnKind.DOUBLE: self.encode_float,
            ColumnKind.UINT64: self.encode_uint64,
            ColumnKind.BOOL: self.encode_bool,
            ColumnKind.TIMESTAMP: self.encode_timestamp,
            ColumnKind.JSON: self.encode_json,
        }
        return table.get(kind, _identity)

    def decoder(self, kind: ColumnKind) -> Decoder:
        """Return the function turning a fetched value back into a Python field value."""
        table: dict[ColumnKind, Decoder] = {
            ColumnKind.FLOAT: self.decode_float,
            ColumnKind.DOUBLE: self.decode_float,
            ColumnKind.UINT64: self.decode_uint64,
            ColumnKind.BOOL: bool,
            ColumnKind.TIMESTAMP: self.decode_timestamp,
            ColumnKind.JSON: self.decode_json,
        }
        return table.get(kind, _identity)

    def encode_float(self, value: float) -> Any:
        """Encode a float or double."""
        return value

    def decode_float(self, value: Any) -> float:
        """Decode a float or double."""
        return float(value)

    def encode_uint64(self, value: int) -> Any:
        """Encode an unsigned 64-bit integer."""
        return value

    def decode_uint64(self, value: Any) -> int:
        """Decode an unsigned 64-bit integer."""
        return int(value)

    def encode_bool(self, value: bool) -> Any:
        """Encode a bool."""
        return value

    def encode_timestamp(self, value: tuple[int, int]) -> Any:
        """Encode a Timestamp given as (seconds, nanos)."""
        return timestamp_text(value)

    def decode_timestamp(self, value: Any) -> tuple[int, int]:
        """Decode a Timestamp into (seconds, nanos)."""
        return parse_timestamp_text(value)

    def encode_json(self, value: Any) -> Any:
        """Encode a JSON value (already in protobuf's JSON mapping) as text."""
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def decode_json(self, value: Any) -> Any:
        """Decode stored JSON."""
        return json.loads(value) if isinstance(value, str | bytes) else value


def timestamp_text(value: tuple[int, int]) -> str:
    """Format (seconds, nanos) as fixed-width RFC 3339 UTC text that sorts like the time it names."""
    seconds, nanos = value
    t = _EPOCH + datetime.timedelta(seconds=seconds)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{nanos:09d}Z"


def parse_timestamp_text(text: str) -> tuple[int, int]:
    """Parse text written by `timestamp_text` (or any RFC 3339 UTC 'Z' time) into (seconds, nanos)."""
    m = _TS_RE.match(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 UTC timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds, int((m.group(7) or "0").ljust(9, "0"))


def is_finite(value: float) -> bool:
    """Return whether a float is neither NaN nor infinite."""
    return math.isfinite(value)
