"""SQLite point reads on the event loop's thread: they see every acknowledged write, never wait for the
worker thread or another process's writer, and keep the loop responsive while another process writes."""

from __future__ import annotations

import asyncio
import importlib
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import prism_runtime
from prism_runtime.backends import sqlite as sqlite_backend
from prism_runtime.backends.sqlite import LOOP_READ_MAX_VALUE, SqliteDriver
from protoc_gen_prism.sql.provision import provision


@pytest.fixture
async def db(tmp_path: Path, generated: Path) -> AsyncIterator[prism_runtime.Database]:
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'reads.db'}") as handle:
        await provision(handle, generated, echo=lambda line: None)
        yield handle


@pytest.fixture
def types(generated: Path) -> tuple[ModuleType, ModuleType]:
    return (
        importlib.import_module("prismtest.types.v1.types_pb2"),
        importlib.import_module("prismtest.types.v1.types_prism"),
    )


def driver_of(store: Any) -> SqliteDriver:
    driver = store._backend.driver
    assert isinstance(driver, SqliteDriver)
    return driver


async def test_a_get_after_an_awaited_put_sees_it(db: prism_runtime.Database, types: Any) -> None:
    pb2, prism = types
    store = prism.CounterStore(db)
    for i in range(300):
        await store.put(pb2.Counter(id=i % 7, hits=i))
        assert await store.get(i % 7) == pb2.Counter(id=i % 7, hits=i)
        assert [m.hits if m else None for m in await store.get_many([i % 7, 99])] == [i, None]
        if i % 50 == 0:
            await store.put_many(pb2.Counter(id=k, hits=i + 1) for k in range(7))
            assert [m.hits for m in await store.get_many(list(range(7))) if m] == [i + 1] * 7
            await store.delete(3)
            assert await store.get(3) is None


async def test_concurrent_tasks_each_read_their_own_writes(db: prism_runtime.Database, types: Any) -> None:
    pb2, prism = types
    store = prism.CounterStore(db)

    async def task(key: int) -> None:
        for hits in range(100):
            await store.put(pb2.Counter(id=key, hits=hits))
            got = await store.get(key)
            assert got is not None and got.hits == hits

    await asyncio.gather(*(task(key) for key in range(8)))


async def test_a_point_read_does_not_wait_for_the_worker_thread(
    db: prism_runtime.Database, types: Any
) -> None:
    pb2, prism = types
    store = prism.CounterStore(db)
    await store.put(pb2.Counter(id=1, hits=5))
    driver = driver_of(store)
    release = threading.Event()
    # Occupy the single worker thread: anything routed to it now waits for `release`.
    blocked = asyncio.get_running_loop().run_in_executor(driver._executor, release.wait)
    try:
        got = await asyncio.wait_for(store.get(1), timeout=5)
        many = await asyncio.wait_for(store.get_many([1, 2]), timeout=5)
    finally:
        release.set()
        await blocked
    assert got == pb2.Counter(id=1, hits=5)
    assert [m.hits if m else None for m in many] == [5, None]


_WRITER = """
import sqlite3, sys, time
path, upsert, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
conn = sqlite3.connect(path, isolation_level=None, timeout=10)
end = time.monotonic() + seconds
hits = 0
while time.monotonic() < end:
    hits += 1
    conn.execute("BEGIN IMMEDIATE")
    for key in range(50):
        conn.execute(upsert, (key, hits))
    conn.execute("COMMIT")
    print(hits, flush=True)
    if hits % 20 == 0:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL restarts under the reader's feet
print("done", flush=True)
"""


async def test_reads_under_another_process_writing_are_fresh_and_keep_the_loop_free(
    db: prism_runtime.Database, types: Any, tmp_path: Path
) -> None:
    pb2, prism = types
    store = prism.CounterStore(db)
    await store.put(pb2.Counter(id=0, hits=0))
    driver = driver_of(store)
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        driver.path,
        store._backend.sql.upsert,
        "3",
        stdout=asyncio.subprocess.PIPE,
    )
    assert writer.stdout is not None
    acknowledged = 0  # the last batch the writer reported committed
    lags: list[float] = []
    stop = False

    async def ticker() -> None:
        # How late the loop runs a callback due every millisecond: the lag every other task would see.
        while not stop:
            due = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - due)

    async def follow() -> None:
        nonlocal acknowledged
        assert writer.stdout is not None
        while (line := (await writer.stdout.readline()).decode().strip()) not in ("done", ""):
            acknowledged = int(line)

    ticking = asyncio.create_task(ticker())
    following = asyncio.create_task(follow())
    reads = 0
    try:
        while not following.done():
            floor = acknowledged
            key = reads % 50
            got = await store.get(key)
            # Every batch acknowledged before the read began is visible to it (keys 0..49 move together).
            assert floor == 0 or (got is not None and got.hits >= floor)
            reads += 1
            await asyncio.sleep(0)
    finally:
        stop = True
        await ticking
        await following
        assert await writer.wait() == 0
    assert acknowledged > 10 and reads > 100
    lags.sort()
    # A loose bound for a shared machine (bench/bench_sqlite_kv.py measures the real figure): what it rules
    # out is a read that waits on the writer's lock, for which the busy timeout is seconds.
    assert lags[int(0.99 * len(lags))] < 0.05, lags[-10:]


async def test_the_loop_reader_never_waits_for_a_lock(db: prism_runtime.Database, types: Any) -> None:
    pb2, prism = types
    store = prism.CounterStore(db)
    await store.put(pb2.Counter(id=1, hits=1))
    reader = driver_of(store)._reader
    assert reader is not None
    # Busy timeout 0: a read that finds a lock taken fails at once (and runs on the worker) instead of
    # sleeping on the loop; query_only: nothing run on it can take the write lock.
    assert reader.execute("PRAGMA busy_timeout").fetchone() == (0,)
    assert reader.execute("PRAGMA query_only").fetchone() == (1,)


async def test_a_read_that_finds_a_lock_on_the_loop_runs_on_the_worker_at_once(
    db: prism_runtime.Database, types: Any, tmp_path: Path
) -> None:
    pb2, prism = types
    store = prism.CounterStore(db)
    await store.put(pb2.Counter(id=1, hits=5))
    driver = driver_of(store)
    backend = store._backend
    # WAL readers take no lock a writer holds, so SQLITE_BUSY on a read is rare (WAL recovery after a crash,
    # a connection in exclusive locking mode) and cannot be made on demand while this process holds the file
    # open. So the loop's connection, opened as the driver opens it (busy timeout 0), is pointed at a decoy
    # file in rollback-journal mode, same tables but another value, that a second connection keeps locked
    # exclusively: each read on the loop meets a real SQLITE_BUSY and must go to the worker, which reads the
    # real file. With any busy timeout on the loop's connection, the get would sleep on the loop instead.
    decoy = tmp_path / "decoy.db"
    holder = sqlite3.connect(decoy, isolation_level=None)
    for (ddl,) in sqlite3.connect(driver.path).execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"):
        holder.execute(ddl)
    holder.execute(backend.sql.upsert, backend.codec.encode(pb2.Counter(id=1, hits=666)))
    holder.execute("BEGIN EXCLUSIVE")
    real_reader = driver._reader
    driver._reader = sqlite3.connect(decoy, timeout=0, isolation_level=None, check_same_thread=False)
    before = dict(driver.loop_read_fallbacks)
    try:
        start = time.perf_counter()
        got = await store.get(1)
        many = await store.get_many([1, 2])
        took = time.perf_counter() - start
    finally:
        driver._reader.close()
        driver._reader = real_reader
        holder.execute("ROLLBACK")
        holder.close()
    assert got == pb2.Counter(id=1, hits=5)
    assert [m.hits if m else None for m in many] == [5, None]
    assert driver.loop_read_fallbacks.get("busy", 0) - before.get("busy", 0) == 2
    assert took < 1.0  # two hops to the worker; a busy timeout on the loop would be seconds


async def test_a_value_longer_than_the_loop_cap_is_read_on_the_worker(
    db: prism_runtime.Database, types: Any
) -> None:
    pb2, prism = types
    store = prism.AllTypesStore(db)
    driver = driver_of(store)
    big_text = "t" * (LOOP_READ_MAX_VALUE + 1)
    big = pb2.AllTypes(id="big", text=big_text, blob=b"\x00" * (3 * LOOP_READ_MAX_VALUE))
    small = pb2.AllTypes(id="small", text="s" * (LOOP_READ_MAX_VALUE // 2))
    await store.put_many([big, small])
    before = dict(driver.loop_read_fallbacks)
    assert await store.get("small") == small
    assert driver.loop_read_fallbacks == before  # under the cap: read on the loop
    assert await store.get("big") == big
    assert await store.get_many(["small", "big", "none"]) == [small, big, None]
    assert driver.loop_read_fallbacks.get("too_big", 0) - before.get("too_big", 0) == 2


async def test_a_read_over_its_budget_on_the_loop_is_run_again_on_the_worker(
    tmp_path: Path, generated: Path, types: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pb2, prism = types
    # Every statement on the loop's connection is past its budget at its first progress check, made at
    # every virtual machine step: each read is abandoned by SQLite (SQLITE_INTERRUPT) and runs on the worker.
    monkeypatch.setattr(sqlite_backend, "_PROGRESS_STEPS", 1)
    monkeypatch.setattr(sqlite_backend, "LOOP_READ_BUDGET", -1.0)
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'budget.db'}") as handle:
        await provision(handle, generated, echo=lambda line: None)
        store = prism.CounterStore(handle)
        driver = driver_of(store)
        for i in range(20):
            await store.put(pb2.Counter(id=i % 4, hits=i))
            assert await store.get(i % 4) == pb2.Counter(id=i % 4, hits=i)
            assert [m.hits if m else None for m in await store.get_many([i % 4, 9])] == [i, None]
        assert driver.loop_read_fallbacks == {"budget": 40}
