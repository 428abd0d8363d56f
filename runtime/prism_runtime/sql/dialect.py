"""SQL dialects: column types and value conversions. The base is the common case; subclasses say what differs.

Plain data and plain SQL text, no sqlglot: the compiler's DDL dialects (protoc_gen_prism.sql.dialects) extend
these with what rendering DDL needs, so a fact about a dialect (its types, its limits) is stated once, here.
"""

from __future__ import annotations

import abc
import base64
import calendar
import datetime
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from prism_runtime.schema import Column, ColumnKind

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]

_EPOCH = datetime.datetime(1970, 1, 1)
# One encoder and decoder for every JSON value: json.dumps with options builds a new encoder per call. The
# text is exactly json.dumps(value, separators=(",", ":"), ensure_ascii=False).
_to_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_from_json = json.JSONDecoder().decode
json_string: Callable[[str], str] = json.encoder.encode_basestring
"""Return a JSON string as json.dumps with ensure_ascii=False writes it."""
# Kinds whose Python values are ints that JSON writes as int.__repr__ does (bool is not one: true/false).
_JSON_INTEGERS = frozenset({ColumnKind.INT32, ColumnKind.INT64, ColumnKind.UINT64, ColumnKind.ENUM})
_TS_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")


def identity(value: Any) -> Any:
    """Return `value`: the conversion of values every driver already gives as the field's Python type."""
    return value


class SqlDialect:
    """A SQL dialect as Prism uses it; subclass and override only what differs."""

    name: ClassVar[str] = ""
    """The sqlglot dialect name."""

    # Types in sqlglot's neutral spelling; sqlglot renders them in each target dialect.
    types: ClassVar[dict[ColumnKind, str]] = {
        ColumnKind.INT32: "INT",
        ColumnKind.INT64: "BIGINT",
        ColumnKind.UINT64: "DECIMAL(20, 0)",
        ColumnKind.FLOAT: "FLOAT",
        ColumnKind.DOUBLE: "DOUBLE",
        ColumnKind.BOOL: "BOOLEAN",
        ColumnKind.STRING: "TEXT",
        ColumnKind.BYTES: "BLOB",
        ColumnKind.ENUM: "INT",
        ColumnKind.TIMESTAMP: "TIMESTAMPTZ",
        ColumnKind.JSON: "JSON",
    }
    type_dialect: ClassVar[str] = ""
    """The dialect `types` are spelled in."""

    max_identifier_length: ClassVar[int] = 63
    # Declarative range partitioning of TimeSeries tables by event time (one partition per UTC day).
    partitions_series: ClassVar[bool] = False
    # Without arrays a repeated scalar is a JSON list: readable and lossless.
    supports_arrays: ClassVar[bool] = False
    supports_column_comments: ClassVar[bool] = False
    # ALTER TABLE IF EXISTS, ADD COLUMN IF NOT EXISTS, DROP COLUMN IF EXISTS: migrations say so in SQL when they can.
    supports_alter_if_exists: ClassVar[bool] = False
    # CREATE INDEX CONCURRENTLY builds an index without blocking writes (and outside any transaction).
    supports_concurrent_index: ClassVar[bool] = False
    # ALTER COLUMN ... DROP NOT NULL; without it a column keeps its NOT NULL DEFAULT until it is dropped.
    supports_drop_not_null: ClassVar[bool] = False

    def placeholder(self, index: int) -> str:
        """Return the bind parameter marker for the 1-based parameter `index`."""
        return "?"

    def quote(self, identifier: str) -> str:
        """Return `identifier` quoted as SQLite and Postgres quote it (a DDL dialect quotes as sqlglot does)."""
        return '"' + identifier.replace('"', '""') + '"'

    def append_only(self, table: str) -> list[str]:
        """Return DDL that makes `table` reject UPDATE and DELETE (none where the dialect cannot)."""
        return []

    def erasing(self) -> tuple[list[str], list[str]]:
        """Return the statements `forget` runs before and after its deletes, so deleted values leave the files.

        None by default: a server (Postgres) keeps dead rows until VACUUM reuses their space (docs/pii.md).
        """
        return [], []

    # -- statements that differ by dialect ----------------------------------------------------------

    def serialize_appends(self, table: str) -> str | None:
        """Return the statement that makes appends to `table` wait for each other until commit, or None where
        a write transaction's own lock already does (SQLite's BEGIN IMMEDIATE holds the whole file's)."""
        return None

    def batch_lookup(
        self, select: str, table: str, keys: Sequence[str], columns: Sequence[Column], count: int
    ) -> str:
        """Return a query for `count` full primary keys at once."""
        width = len(keys)
        if width == 1:
            marks = ", ".join(self.placeholder(i + 1) for i in range(count))
            return f"SELECT {select} FROM {table} WHERE {keys[0]} IN ({marks})"
        tuples = ", ".join(
            "(" + ", ".join(self.placeholder(i * width + j + 1) for j in range(width)) + ")"
            for i in range(count)
        )
        return f"SELECT {select} FROM {table} WHERE ({', '.join(keys)}) IN (VALUES {tuples})"

    def delete_some(self, table: str, where: str, limit: str) -> str:
        """Return a DELETE of at most `limit` rows of `table` matching `where`, found by their physical row id.

        Each parameter is bound once. SQLite runs the statement as one write, so no row changes between the
        subquery and the delete; a dialect with concurrent writers checks `where` again (PostgresDialect).
        """
        return f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {where} LIMIT {limit})"

    def batch_args(self, keys: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Return the bind values for `batch_lookup`."""
        return [part for key in keys for part in key]

    def batch_size(self, width: int) -> int:
        """Return how many keys one `batch_lookup` may carry."""
        return max(1, 500 // width)

    # -- values ------------------------------------------------------------------------------------

    def encoder(self, column: Column) -> Encoder:
        """Return the function turning a Python field value (a list for arrays) into a bind parameter."""
        element = self.scalar_encoder(column.kind)
        if not column.repeated:
            return element
        if not self.supports_arrays:
            return json_array_encoder(column.kind)
        return lambda values: [element(v) for v in values]

    def decoder(self, column: Column) -> Decoder:
        """Return the function turning a fetched value back into a Python field value (a list for arrays)."""
        element = self.scalar_decoder(column.kind)
        if not column.repeated:
            return element
        if not self.supports_arrays:
            return json_array_decoder(column.kind)
        return lambda values: [element(v) for v in values]

    def scalar_encoder(self, kind: ColumnKind) -> Encoder:
        """Return the encoder of one value of `kind`."""
        table: dict[ColumnKind, Encoder] = {
            ColumnKind.FLOAT: self.encode_float,
            ColumnKind.DOUBLE: self.encode_float,
            ColumnKind.UINT64: self.encode_uint64,
            ColumnKind.BOOL: self.encode_bool,
            ColumnKind.TIMESTAMP: self.encode_timestamp,
            ColumnKind.JSON: self.encode_json,
        }
        return table.get(kind, identity)

    def scalar_decoder(self, kind: ColumnKind) -> Decoder:
        """Return the decoder of one value of `kind`."""
        table: dict[ColumnKind, Decoder] = {
            ColumnKind.FLOAT: self.decode_float,
            ColumnKind.DOUBLE: self.decode_float,
            ColumnKind.UINT64: self.decode_uint64,
            ColumnKind.BOOL: bool,
            ColumnKind.BYTES: bytes,
            ColumnKind.TIMESTAMP: self.decode_timestamp,
            ColumnKind.JSON: self.decode_json,
        }
        return table.get(kind, identity)

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
        return _to_json(value)

    def decode_json(self, value: Any) -> Any:
        """Decode stored JSON."""
        if type(value) is str:
            return _from_json(value)
        return json.loads(value) if isinstance(value, str | bytes) else value


def json_array_encoder(kind: ColumnKind) -> Encoder:
    """Return an encoder of a list of `kind` values as a JSON list, for dialects without arrays."""
    if kind is ColumnKind.STRING:
        return json_string_list
    if kind in _JSON_INTEGERS:
        return json_integer_list
    element = _json_element_encoder(kind)
    if element is identity:
        return lambda values: _to_json(values if type(values) is list else list(values))
    return lambda values: _to_json([element(v) for v in values])


def json_string_list(values: Sequence[str]) -> str:
    """Return a list of strings as JSON text, exactly as `_to_json` writes it.

    Joined here: json.dumps builds an encoder per call, which costs more than the text. The row encoder
    writes this expression in place (prism_runtime.sql.codec), so the two must stay the same.
    """
    return f"[{','.join(map(json_string, values))}]"


def json_integer_list(values: Sequence[int]) -> str:
    """Return a list of integers (not bools) as JSON text, exactly as `_to_json` writes it (see above)."""
    return f"[{','.join(map(int.__repr__, values))}]"


def json_array_decoder(kind: ColumnKind) -> Decoder:
    """Return the decoder of `json_array_encoder`'s lists."""
    element = _json_element_decoder(kind)
    if element is identity:
        return lambda text: _from_json(text) if type(text) is str else json.loads(text)
    return lambda text: [element(v) for v in json.loads(text)]


def _json_element_encoder(kind: ColumnKind) -> Encoder:
    if kind is ColumnKind.BYTES:
        return lambda b: base64.b64encode(b).decode("ascii")
    if kind in (ColumnKind.FLOAT, ColumnKind.DOUBLE):
        return lambda f: f if math.isfinite(f) else str(f)  # 'nan', 'inf', '-inf': JSON has no such numbers
    return identity


def _json_element_decoder(kind: ColumnKind) -> Decoder:
    if kind is ColumnKind.BYTES:
        return base64.b64decode
    if kind in (ColumnKind.FLOAT, ColumnKind.DOUBLE):
        return float
    return identity


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


class ServingDialect(SqlDialect, abc.ABC):
    """The dialect of a backend that runs statements: it also reads its own catalogue."""

    @abc.abstractmethod
    def object_exists(self) -> str:
        """Return a query with two parameters (object type 'table' or 'index', name) finding one object."""

    @abc.abstractmethod
    def column_exists(self) -> str:
        """Return a query with two parameters (table, column) finding one column."""

    @abc.abstractmethod
    def table_columns(self) -> str:
        """Return a query with one parameter (table) listing its column names; none when it does not exist."""
