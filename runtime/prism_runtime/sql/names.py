"""The names of what an entity's rows live in: table, extra series columns, indexes and partitions.

Shared by the compiler, which writes them into DDL, and the runtime, which reads and writes through them.
"""

from __future__ import annotations

import hashlib

from prism_runtime.schema import Abstraction, Column, EntitySpec
from prism_runtime.sql.dialect import SqlDialect

# TimeSeries tables add two columns: the event id (unique with key and event time, so a retried
# append inserts nothing) and an insertion sequence (what `tail` follows).
EVENT_ID_COLUMN = "prism_event_id"
SEQUENCE_COLUMN = "prism_seq"


def row_identity(spec: EntitySpec) -> tuple[str, ...]:
    """Return the columns that identify one stored row: the primary key; for a series, the event's."""
    if spec.abstraction is Abstraction.TIME_SERIES:
        assert spec.event_time is not None
        return (spec.key, spec.event_time, EVENT_ID_COLUMN)
    return tuple(c.name for c in spec.key_columns)


def stored_columns(spec: EntitySpec) -> tuple[str, ...]:
    """Return every column the table of `spec` has: its fields', and a series' event id and sequence."""
    names = tuple(c.name for c in spec.columns)
    if spec.abstraction is Abstraction.TIME_SERIES:
        return (*names, EVENT_ID_COLUMN, SEQUENCE_COLUMN)
    return names


def table_name(spec: EntitySpec) -> str:
    """Return the table that holds an entity: its namespace."""
    return spec.namespace


def index_name(table: str, column: str, dialect: SqlDialect) -> str:
    """Return a deterministic index name that fits the dialect's identifier limit."""
    return short_name(table, column, "idx", dialect=dialect)


def index_columns(spec: EntitySpec, column: Column) -> tuple[str, ...]:
    """Return the columns of the index of an indexed column: on a KeyValue field, the field then the key.

    A finder reads `field = value` in key order from a key: with the key in the index, each page is a range
    of the index, however many items have the value (docs/keyvalue.md). The blind index (an unpaged lookup)
    and the expiry column (read by the purge) are indexed alone.
    """
    if spec.abstraction is not Abstraction.KEY_VALUE or column.blind_index_of or column.expiry:
        return (column.name,)
    return (column.name, *(c.name for c in spec.key_columns if c.name != column.name))


def short_name(*parts: str, dialect: SqlDialect) -> str:
    """Join `parts` with '__' into a name that fits the dialect's limit, shortened with a hash when it must be."""
    name = "__".join(parts)
    if len(name) <= dialect.max_identifier_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: dialect.max_identifier_length - 9]}_{digest}"


def default_partition_name(spec: EntitySpec, dialect: SqlDialect) -> str:
    """Return the name of the partition that catches events no day partition covers."""
    return short_name(table_name(spec), "default", dialect=dialect)
