"""The PII layer's own tables: an EntitySpec each (how rows are read and written) with its DDL as plain SQL.

The DDL is written out per dialect here, so the runtime renders none; tests/test_sql_ddl.py checks it is what
the compiler renders for the same spec.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from prism_runtime.drive import SetupLock
from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql.driver import SqlDriver


def _table(
    name: str, key: str, columns: Sequence[Column], ddl: dict[str, str], sort_key: str | None = None
) -> EntitySpec:
    return EntitySpec(
        namespace=name,
        message_name=f"prism.internal.{name}",
        abstraction=Abstraction.KEY_VALUE,
        key=key,
        sort_key=sort_key,
        columns=tuple(columns),
        ddl={dialect: (" ".join(sql.split()).replace("( ", "("),) for dialect, sql in ddl.items()},
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
    {
        "sqlite": """
            CREATE TABLE IF NOT EXISTS "prism_keys" (
              "subject_ref" TEXT NOT NULL, "key_id" INTEGER NOT NULL, "version" INTEGER NOT NULL DEFAULT 0,
              "wrapped" BLOB, "state" TEXT NOT NULL DEFAULT '', "wrapper" TEXT NOT NULL DEFAULT '',
              "created_at" TEXT NOT NULL DEFAULT '', PRIMARY KEY ("subject_ref", "key_id"))
        """,
        "postgres": """
            CREATE TABLE IF NOT EXISTS "prism_keys" (
              "subject_ref" TEXT COLLATE "C" NOT NULL, "key_id" BIGINT NOT NULL, "version" BIGINT NOT NULL DEFAULT 0,
              "wrapped" BYTEA, "state" TEXT NOT NULL DEFAULT '', "wrapper" TEXT NOT NULL DEFAULT '',
              "created_at" TEXT NOT NULL DEFAULT '', PRIMARY KEY ("subject_ref", "key_id"))
        """,
    },
    sort_key="key_id",
)
"""Wrapped data keys per pseudonymous subject; also the wrapped index root key."""

META = _table(
    "prism_meta",
    "name",
    [Column("name", 1, _S), Column("value", 2, _S)],
    {
        "sqlite": """
            CREATE TABLE IF NOT EXISTS "prism_meta" (
              "name" TEXT NOT NULL PRIMARY KEY, "value" TEXT NOT NULL DEFAULT '')
        """,
        "postgres": """
            CREATE TABLE IF NOT EXISTS "prism_meta" (
              "name" TEXT COLLATE "C" NOT NULL, "value" TEXT NOT NULL DEFAULT '', PRIMARY KEY ("name"))
        """,
    },
)
"""Key generation and minimum decryption version, shared by every process on the backend."""

ENTITIES = _table(
    "prism_entities",
    "namespace",
    [Column("namespace", 1, _S), Column("message_name", 2, _S), Column("spec", 3, _S)],
    {
        "sqlite": """
            CREATE TABLE IF NOT EXISTS "prism_entities" (
              "namespace" TEXT NOT NULL PRIMARY KEY, "message_name" TEXT NOT NULL DEFAULT '',
              "spec" TEXT NOT NULL DEFAULT '')
        """,
        "postgres": """
            CREATE TABLE IF NOT EXISTS "prism_entities" (
              "namespace" TEXT COLLATE "C" NOT NULL, "message_name" TEXT NOT NULL DEFAULT '',
              "spec" TEXT NOT NULL DEFAULT '', PRIMARY KEY ("namespace"))
        """,
    },
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
    {
        dialect: f"""
            CREATE TABLE IF NOT EXISTS "prism_audit" (
              "seq" {integer} NOT NULL{primary}, "at" TEXT NOT NULL DEFAULT '',
              "event_id" TEXT NOT NULL DEFAULT '', "actor" TEXT NOT NULL DEFAULT '',
              "purpose" TEXT NOT NULL DEFAULT '', "action" TEXT NOT NULL DEFAULT '',
              "message" TEXT NOT NULL DEFAULT '', "field" {integer} NOT NULL DEFAULT 0,
              "pii" TEXT NOT NULL DEFAULT '', "subject_ref" TEXT NOT NULL DEFAULT '',
              "record_ref" TEXT NOT NULL DEFAULT '', "outcome" TEXT NOT NULL DEFAULT '',
              "key_id" {integer} NOT NULL DEFAULT 0, "prev_hash" TEXT NOT NULL DEFAULT '',
              "entry_hash" TEXT NOT NULL DEFAULT ''{key})
        """
        for dialect, integer, primary, key in (
            ("sqlite", "INTEGER", " PRIMARY KEY", ""),
            ("postgres", "BIGINT", "", ', PRIMARY KEY ("seq")'),
        )
    },
)
"""The hash-chained access audit log; append-only."""


async def prepare(driver: SqlDriver, spec: EntitySpec, extra: Sequence[str] = ()) -> None:
    """Create one of these tables (and the `extra` objects that go with it) on `driver` if missing.

    Prism's own bookkeeping tables are made by Prism, as `prism provision` makes its history table;
    entity tables stay provisioned from generated SQL. Made once per driver in a process, however many
    tasks ask at once; the driver serialises the DDL with other processes (see `SqlDriver.setup_table`).
    A failed setup is not remembered: the next caller tries again.
    """
    done = _prepared.get(driver)
    if done is not None and spec.namespace in done:
        return
    lock = _setup_locks.get(driver)
    if lock is None:
        lock = _setup_locks.setdefault(driver, SetupLock())
    async with lock:
        done = _prepared.setdefault(driver, set())
        if spec.namespace not in done:
            await driver.setup_table(spec, [*spec.ddl_for(driver.dialect.name), *extra])
            done.add(spec.namespace)


_prepared: weakref.WeakKeyDictionary[SqlDriver, set[str]] = weakref.WeakKeyDictionary()
_setup_locks: weakref.WeakKeyDictionary[SqlDriver, SetupLock] = weakref.WeakKeyDictionary()


def insert_sql(driver: SqlDriver, spec: EntitySpec) -> str:
    """Return the plain INSERT of every column of `spec`."""
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    names = ", ".join(q(c.name) for c in spec.columns)
    marks = ", ".join(ph(i + 1) for i in range(len(spec.columns)))
    return f"INSERT INTO {q(spec.namespace)} ({names}) VALUES ({marks})"


def marks(driver: SqlDriver, count: int, start: int = 1) -> str:
    """Return `count` comma-separated bind markers numbered from `start`."""
    return ", ".join(driver.dialect.placeholder(start + i) for i in range(count))
