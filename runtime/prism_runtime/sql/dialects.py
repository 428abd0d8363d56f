"""The dialects Prism runs statements on: what SQLite and Postgres each store differently.

Pure SQL knowledge, no drivers: the backends run DML with these; the compiler's DDL dialects extend them.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from prism_runtime.schema import Column, ColumnKind
from prism_runtime.sql.dialect import ServingDialect, SqlDialect

_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class SqliteDialect(ServingDialect):
    """SQLite's storage classes; what SQLite cannot hold natively is stored losslessly and readably."""

    name = "sqlite"
    type_dialect = "sqlite"
    # TEXT and BLOB as the base; integers, reals and text for everything else (SQLite's storage classes).
    types: ClassVar[dict[ColumnKind, str]] = {
        **SqlDialect.types,
        **dict.fromkeys(
            (ColumnKind.INT32, ColumnKind.INT64, ColumnKind.UINT64, ColumnKind.BOOL, ColumnKind.ENUM),
            "INTEGER",
        ),
        **dict.fromkeys((ColumnKind.FLOAT, ColumnKind.DOUBLE), "REAL"),
        **dict.fromkeys((ColumnKind.TIMESTAMP, ColumnKind.JSON), "TEXT"),
    }

    def encode_uint64(self, value: int) -> Any:
        """Store uint64 above 2^63-1 in two's complement: SQLite INTEGER is signed 64-bit."""
        return value - _U64 if value > _I64_MAX else value

    def decode_uint64(self, value: Any) -> int:
        """Undo the two's complement of `encode_uint64`."""
        return int(value) + _U64 if value < 0 else int(value)

    def encode_float(self, value: float) -> Any:
        """Store NaN as the text 'NaN': SQLite turns a NaN REAL into NULL."""
        return value if not math.isnan(value) else "NaN"

    def encode_bool(self, value: bool) -> Any:
        """Store bools as 0 and 1."""
        return int(value)

    def object_exists(self) -> str:
        """Find a table or index by type and name in sqlite_master."""
        return "SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?"

    def column_exists(self) -> str:
        """Find a column of a table through pragma_table_info."""
        return "SELECT 1 FROM pragma_table_info(?) WHERE name = ?"

    def table_columns(self) -> str:
        """List a table's columns through pragma_table_info (none when it does not exist)."""
        return "SELECT name FROM pragma_table_info(?)"

    def append_only(self, table: str) -> list[str]:
        """Return triggers that abort any UPDATE or DELETE of `table`."""
        return [
            f"CREATE TRIGGER IF NOT EXISTS {self.quote(f'{table}__no_{op.lower()}')} BEFORE {op} ON "
            f"{self.quote(table)} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for op in ("UPDATE", "DELETE")
        ]

    def erasing(self) -> tuple[list[str], list[str]]:
        """Zero what the deletes free (secure_delete), then move the WAL's pages into the file and empty it."""
        return ["PRAGMA secure_delete = ON"], [
            "PRAGMA secure_delete = OFF",
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ]


class PostgresDialect(ServingDialect):
    """Postgres as the shared SQL base already writes it, plus asyncpg's value types."""

    name = "postgres"
    type_dialect = "postgres"
    supports_arrays = True
    supports_column_comments = True
    supports_alter_if_exists = True
    supports_concurrent_index = True
    supports_drop_not_null = True
    partitions_series = True
    types: ClassVar[dict[ColumnKind, str]] = {
        **SqlDialect.types,
        ColumnKind.INT32: "INTEGER",
        ColumnKind.UINT64: "NUMERIC(20, 0)",
        ColumnKind.FLOAT: "REAL",
        ColumnKind.DOUBLE: "DOUBLE PRECISION",
        ColumnKind.BYTES: "BYTEA",
        ColumnKind.ENUM: "INTEGER",
        ColumnKind.JSON: "JSONB",
    }

    def placeholder(self, index: int) -> str:
        """Return asyncpg's positional parameter `$n`."""
        return f"${index}"

    def append_only(self, table: str) -> list[str]:
        """Return a function and triggers that reject UPDATE, DELETE and TRUNCATE of `table`."""
        function = self.quote(f"{table}__reject_change")
        return [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{table} is append-only'; END $$",
            f"CREATE OR REPLACE TRIGGER {self.quote(f'{table}__no_change')} BEFORE UPDATE OR DELETE ON "
            f"{self.quote(table)} FOR EACH ROW EXECUTE FUNCTION {function}()",
            f"CREATE OR REPLACE TRIGGER {self.quote(f'{table}__no_truncate')} BEFORE TRUNCATE ON "
            f"{self.quote(table)} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]

    def serialize_appends(self, table: str) -> str:
        """Lock `table` against other appenders (the mode conflicts with itself and with INSERT), not readers."""
        return f"LOCK TABLE {self.quote(table)} IN SHARE ROW EXCLUSIVE MODE"

    def object_exists(self) -> str:
        """Find a table ('r', partitioned 'p') or index ('i') by name in the current schema."""
        return (
            "SELECT 1 FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relname = $2 "
            "AND relkind = ANY(CASE $1::text WHEN 'table' THEN ARRAY['r', 'p'] ELSE ARRAY['i', 'I'] END::\"char\"[])"
        )

    def column_exists(self) -> str:
        """Find a column of a table in the current schema."""
        return (
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = $1 AND column_name = $2"
        )

    def table_columns(self) -> str:
        """List the columns of a table in the current schema."""
        return (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = $1"
        )

    def batch_lookup(
        self, select: str, table: str, keys: Sequence[str], columns: Sequence[Column], count: int
    ) -> str:
        """Look keys up through unnest of one typed array per key column: one prepared statement for any count."""
        arrays = ", ".join(f"${i + 1}::{self.types[c.kind].lower()}[]" for i, c in enumerate(columns))
        names = ", ".join(keys)
        return f"SELECT {select} FROM {table} WHERE ({names}) IN (SELECT * FROM unnest({arrays}))"

    def delete_some(self, table: str, where: str, limit: str) -> str:
        """Find the rows by ctid through an array (a TID scan), and check `where` again on rows updated meanwhile."""
        return (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {where} LIMIT {limit})) "
            f"AND {where}"
        )

    def batch_args(self, keys: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Return one array per key column."""
        return [list(column) for column in zip(*keys, strict=True)]

    def batch_size(self, width: int) -> int:
        """Return how many keys one lookup carries: arrays have no parameter limit."""
        return 10_000

    def encode_uint64(self, value: int) -> Any:
        """Bind an unsigned 64-bit integer to NUMERIC(20, 0)."""
        return Decimal(value)

    def encode_timestamp(self, value: tuple[int, int]) -> Any:
        """Bind (seconds, nanos) as an aware datetime; TIMESTAMPTZ keeps microseconds (nanos are truncated)."""
        seconds, nanos = value
        return _EPOCH + datetime.timedelta(seconds=seconds, microseconds=nanos // 1000)

    def decode_timestamp(self, value: Any) -> tuple[int, int]:
        """Read an aware datetime back into (seconds, nanos)."""
        delta: datetime.timedelta = value - _EPOCH
        return delta.days * 86_400 + delta.seconds, delta.microseconds * 1000


DIALECTS: dict[str, type[ServingDialect]] = {d.name: d for d in (SqliteDialect, PostgresDialect)}
"""The dialects of the backends that run statements, by name: the registry the compiler's DDL dialects
(protoc_gen_prism.sql.dialects) extend; any other sqlglot dialect is the neutral base there."""


def dialect_for(name: str) -> ServingDialect:
    """Return the dialect of a backend that runs statements: "sqlite" or "postgres"."""
    return DIALECTS[name]()
