"""The PII layer's own tables, declared as EntitySpecs so every SQL dialect renders their DDL as usual."""

from __future__ import annotations

from collections.abc import Sequence

from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql.ddl import ddl_statements
from prism_runtime.sql.driver import SqlDriver


def _table(name: str, key: str, columns: Sequence[Column], sort_key: str | None = None) -> EntitySpec:
    return EntitySpec(
        namespace=name,
        message_name=f"prism.internal.{name}",
        abstraction=Abstraction.KEY_VALUE,
        key=key,
        sort_key=sort_key,
        columns=tuple(columns),
    )


_S, _I, _B = ColumnKind.STRING, ColumnKind.INT64, ColumnKind.BYTES

KEYS = _table(
    "prism_keys",
    "subject_ref",
    [
        Column("subject_ref", 1, _S),
        Column("key_id", 2, _I),
        Column("version", 3, _I),
        # NULL once destroyed (forget) or retired: the row stays as a tombstone saying why.
        Column("wrapped", 4, _B, nullable=True),
        Column("state", 5, _S),
        Column("wrapper", 6, _S),
        Column("created_at", 7, _S),
    ],
    sort_key="key_id",
)
"""Wrapped data keys per pseudonymous subject; also the wrapped index root key."""

META = _table("prism_meta", "name", [Column("name", 1, _S), Column("value", 2, _S)])
"""Key generation and minimum decryption version, shared by every process on the backend."""

ENTITIES = _table(
    "prism_entities",
    "namespace",
    [Column("namespace", 1, _S), Column("message_name", 2, _S), Column("spec", 3, _S)],
)
"""Every entity with PII on the backend, so `forget` and the key sweep work without generated code."""

AUDIT = _table(
    "prism_audit",
    "seq",
    [
        Column("seq", 1, _I),
        Column("at", 2, _S),
        Column("event_id", 3, _S),
        Column("actor", 4, _S),
        Column("purpose", 5, _S),
        Column("action", 6, _S),
        Column("message", 7, _S),
        Column("field", 8, _I),
        Column("pii", 9, _S),
        Column("subject_ref", 10, _S),
        Column("record_ref", 11, _S),
        Column("outcome", 12, _S),
        Column("key_id", 13, _I),
        Column("prev_hash", 14, _S),
        Column("entry_hash", 15, _S),
    ],
)
"""The hash-chained access audit log; append-only."""


async def prepare(driver: SqlDriver, spec: EntitySpec, extra: Sequence[str] = ()) -> None:
    """Create one of these tables on `driver` if missing.

    Prism's own bookkeeping tables are made by Prism, as `prism provision` makes its history table;
    entity tables stay provisioned from generated SQL.
    """
    await driver.execute_script([*ddl_statements(spec, driver.dialect), *extra], namespace=spec.namespace)


def insert_sql(driver: SqlDriver, spec: EntitySpec) -> str:
    """Return the plain INSERT of every column of `spec`."""
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    names = ", ".join(q(c.name) for c in spec.columns)
    marks = ", ".join(ph(i + 1) for i in range(len(spec.columns)))
    return f"INSERT INTO {q(spec.namespace)} ({names}) VALUES ({marks})"


def marks(driver: SqlDriver, count: int, start: int = 1) -> str:
    """Return `count` comma-separated bind markers numbered from `start`."""
    return ", ".join(driver.dialect.placeholder(start + i) for i in range(count))
