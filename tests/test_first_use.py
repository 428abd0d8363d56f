"""First use of a fresh Postgres database under concurrency: Prism's own tables, functions and triggers are
made once, whatever the number of tasks (one process) or processes racing to make them.

Each test gets a new database on the session server (not a schema: functions, triggers and the catalog
types the race is about are per database), provisioned with the generated entity tables only, so the first
PII write finds prism_keys, prism_meta, prism_entities and prism_audit missing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import prism_runtime
from prism_runtime.pii import LocalKeyWrapper
from prism_runtime.pii.vault import vault_for
from protoc_gen_prism.pytest_plugin import new_postgres_database, provisioned

TASKS = 50
OPS = 2_000
PATIENTS = "prismtest_pii_v1_patient"


@pytest.fixture
async def fresh_db(postgres_dsn: str, generated: Path) -> AsyncIterator[str]:
    """A new, empty database on the session server with only the entity tables provisioned."""
    async with new_postgres_database(postgres_dsn) as url:
        async with provisioned(url, generated):
            pass
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database on each SQL backend: a new SQLite file (its tables made on first use), or `fresh_db`."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    url: str = request.getfixturevalue("fresh_db")
    return url


def _sql_backend(db: prism_runtime.Database) -> Any:
    """Return the SQL driver behind `db` (typed as a Backend)."""
    return db.backend


async def _count(url: str, sql: str) -> int:
    if url.startswith("sqlite:///"):
        lite = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(lite.execute(sql).fetchone()[0])
        finally:
            lite.close()
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def test_fifty_tasks_first_use_a_fresh_database_without_a_failure(
    fresh_db: str, generated: Path, tmp_path: Path
) -> None:
    from prismtest.pii.v1 import pii_pb2, pii_prism  # type: ignore[import-not-found]

    failures: list[str] = []
    done = 0

    async def worker(store: Any, task: int) -> None:
        nonlocal done
        for i in range(OPS // TASKS):
            pid = f"t{task}-{i // 2}"
            try:
                if i % 2 == 0:
                    await store.put(pii_pb2.Patient(patient_id=pid, ssn="078-05-1120", visits=i))
                else:
                    got = await store.get(pid)
                    assert got is not None and got.visits == i - 1
                done += 1
            except Exception as error:  # every failure is counted, whatever its type
                failures.append(f"{type(error).__name__}: {error}")

    wrapper = LocalKeyWrapper(tmp_path / "master.key")
    async with prism_runtime.connect(f"{fresh_db}?pool_size=10", key_wrapper=wrapper) as db:
        store = pii_prism.PatientStore(db)
        await asyncio.gather(*(worker(store, t) for t in range(TASKS)))
        result = await vault_for(_sql_backend(db)).audit.verify()
    assert (len(failures), failures[:3], done) == (0, [], OPS)
    assert result.ok and result.entries == OPS  # one entry (ssn) per put and per get
    assert await _count(fresh_db, f"SELECT COUNT(*) FROM {PATIENTS}") == OPS // 2
    assert await _count(fresh_db, "SELECT COUNT(*) FROM prism_entities") == 1


_WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    import prism_runtime
    from prism_runtime.pii import LocalKeyWrapper
    from prism_runtime.pii.vault import vault_for
    from prismtest.pii.v1 import pii_pb2, pii_prism

    url, key, name, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    async def main() -> None:
        async with prism_runtime.connect(url, key_wrapper=LocalKeyWrapper(key)) as db:
            store = pii_prism.PatientStore(db)
            audit = vault_for(db.backend).audit
            while time.time() < start:  # both processes reach their first use together
                await asyncio.sleep(0.001)
            async def one(task: int) -> None:
                # Every setup at once: keys and meta, the catalog (an encrypted field), the audit table with
                # its function and triggers. No audited field is written here: that the chain's appends
                # from two processes all land is the audit contention test's business, not first use's.
                await asyncio.gather(
                    store.put(pii_pb2.Patient(patient_id=f"{name}-{task}", email="a@example.com")),
                    audit.ready(),
                )
            await asyncio.gather(*(one(t) for t in range(10)))

    asyncio.run(main())
    """
)


async def test_two_processes_first_use_a_fresh_database_at_once(
    fresh_url: str, generated: Path, tmp_path: Path
) -> None:
    from prismtest.pii.v1 import pii_pb2, pii_prism

    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    key = tmp_path / "master.key"
    LocalKeyWrapper(key)._load(minting=True)  # one master key for both, made before either starts
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(generated), os.environ.get("PYTHONPATH", "")])}
    start = f"{time.time() + 2.0}"  # after both interpreters have imported Prism
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), fresh_url, str(key), name, start],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(err[-600:] for _, err in outcomes)
    assert await _count(fresh_url, f"SELECT COUNT(*) FROM {PATIENTS}") == 20
    async with prism_runtime.connect(fresh_url, key_wrapper=LocalKeyWrapper(key)) as db:
        store = pii_prism.PatientStore(db)
        await store.put(pii_pb2.Patient(patient_id="after", ssn="078-05-1120"))
        assert (await store.get("a-1")) is not None
        assert (await vault_for(_sql_backend(db)).audit.verify()).ok
    # The audit table came with its append-only guard, made once.
    if fresh_url.startswith("sqlite:"):
        guard = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'prism_audit__no_%'"
        assert await _count(fresh_url, guard) == 2
        return
    function = "SELECT COUNT(*) FROM pg_proc WHERE proname = 'prism_audit__reject_change'"
    assert await _count(fresh_url, function) == 1
    triggers = "SELECT COUNT(*) FROM pg_trigger WHERE tgname LIKE 'prism_audit__no_%'"
    assert await _count(fresh_url, triggers) == 2
    conn = await asyncpg.connect(fresh_url)
    try:
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("DELETE FROM prism_audit")
    finally:
        await conn.close()


async def test_handles_first_appending_to_a_fresh_series_at_once_share_its_partitions(fresh_db: str) -> None:
    # A series on Postgres gets its day partitions on first use: four handles (four pools, as four processes)
    # making the same partitions at once run one after another under the setup lock.
    from acme.events.v1 import events_pb2, events_prism  # type: ignore[import-not-found]

    now_ms = int(time.time() * 1000)
    handles = [prism_runtime.connect(fresh_db) for _ in range(4)]
    try:
        stores = [events_prism.StockLevelSeries(await h.open()) for h in handles]
        await asyncio.gather(
            *(
                s.append(events_pb2.StockLevel(warehouse_id=f"w{i}", at_ms=now_ms, sku="s", quantity=i))
                for i, s in enumerate(stores)
            )
        )
    finally:
        for h in handles:
            await h.close()
    assert await _count(fresh_db, "SELECT COUNT(*) FROM acme_events_v1_stock_level") == 4
    # Yesterday, today and the seven days ahead: each partition made once, none left in DEFAULT.
    partitions = await _count(
        fresh_db, "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'acme_events_v1_stock_level'::regclass"
    )
    assert partitions == 10


def test_a_new_file_opens_while_another_connection_holds_its_write_lock(tmp_path: Path) -> None:
    """The race two processes opening a new SQLite file run, made certain: the file is not yet in WAL mode and
    another connection holds its write lock. Switching to WAL needs that lock, and SQLite refuses it at once
    (waiting could deadlock); the open waits for the other connection instead of failing with Contention."""
    from prism_runtime.backends.sqlite import connect_file

    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE first (x)")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    conn = connect_file(str(path), "sqlite (test)")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert time.monotonic() - started >= 0.2  # it waited for the holder's commit
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("first",)]
    finally:
        release.join()
        conn.close()
        holder.close()
