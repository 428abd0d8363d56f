"""A put_many's rows as Postgres binary COPY data, written by the native extension (runtime/native/pgcopy.c).

asyncpg's `copy_records_to_table` encodes every value through its generic codecs, which was most of a bulk
write's client time (about 1.2 µs a row of the bench's Profile). The columns of a Prism table have a few
known types, so the extension writes the same binary values directly; asyncpg then only sends the bytes
(`copy_to_table(format="binary")`). Where the extension is not built, a column type is not one it writes,
or a value is not one it writes exactly, `copy_data` returns None and the rows go to asyncpg as before.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from typing import Any

from prism_runtime.schema import Column, ColumnKind

try:
    from prism_runtime import _wire
except ImportError:  # built without a C compiler: asyncpg encodes every row
    _wire = None  # type: ignore[assignment]


class PgType(enum.IntEnum):
    """A column's Postgres type as the extension writes it (the PG_* of pgcopy.c)."""

    INT4 = 1
    INT8 = 2
    NUMERIC = 3
    FLOAT4 = 4
    FLOAT8 = 5
    BOOL = 6
    TEXT = 7
    BYTEA = 8
    TIMESTAMPTZ = 9
    JSONB = 10


ARRAY = 0x100
"""Added to an element's type: a one-dimensional array of it."""

# The Postgres type of each column kind, as the Postgres dialect declares it (prism_runtime.sql.dialects).
_TYPES = {
    ColumnKind.INT32: PgType.INT4,
    ColumnKind.ENUM: PgType.INT4,
    ColumnKind.INT64: PgType.INT8,
    ColumnKind.UINT64: PgType.NUMERIC,
    ColumnKind.FLOAT: PgType.FLOAT4,
    ColumnKind.DOUBLE: PgType.FLOAT8,
    ColumnKind.BOOL: PgType.BOOL,
    ColumnKind.STRING: PgType.TEXT,
    ColumnKind.BYTES: PgType.BYTEA,
    ColumnKind.TIMESTAMP: PgType.TIMESTAMPTZ,
    ColumnKind.JSON: PgType.JSONB,
}


def column_types(columns: Sequence[Column]) -> tuple[int, ...] | None:
    """Return the extension's type of each column, or None where it cannot write them all (or is not built)."""
    if _wire is None:
        return None
    types = []
    for column in columns:
        kind = _TYPES.get(column.kind)
        if kind is None or (column.repeated and kind is PgType.JSONB):
            return None
        types.append(kind | ARRAY if column.repeated else int(kind))
    return tuple(types)


def copy_data(rows: Sequence[Sequence[Any]], types: tuple[int, ...]) -> bytes | None:
    """Return the rows as one binary COPY stream, or None when a value is not one the extension writes."""
    return _wire.pg_copy(rows, types, True, True)


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    """Yield COPY data to asyncpg's copy_to_table, which sends what an async iterator yields as it comes."""
    yield data
