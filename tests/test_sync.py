"""Blocking clients (`connect_sync`): plain code with no event loop, thread pools, and parity with async.

The KeyValue and PII behaviour suites (test_keyvalue.py, test_pii.py) run on both styles through
tests/styles.py; the tests here are the ones only a blocking program can write.
"""

from __future__ import annotations

import importlib
import inspect
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from backends import BACKENDS, drop_schema, url_for

import prism_runtime
from prism_runtime import sync_clients
from prism_runtime.drive import drive
from prism_runtime.errors import NotOpen
from protoc_gen_prism.pytest_plugin import provisioned


def load(module: str) -> ModuleType:
    return importlib.import_module(module)


@pytest.fixture
def users(generated: Path) -> tuple[ModuleType, ModuleType]:
    return load("acme.users.v1.users_pb2"), load("acme.users.v1.users_prism")


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path, generated: Path) -> Any:
    """An empty, provisioned database on each SQL backend (provisioned once, by the async path)."""
    address = await url_for(request, request.param, tmp_path)
    async with provisioned(address, generated):
        pass
    yield address
    if request.param == "postgres":
        await drop_schema(address)


@pytest.fixture
def sync_db(url: str) -> Iterator[prism_runtime.SyncDatabase]:
    with prism_runtime.connect_sync(url) as db:
        yield db


def test_plain_code_puts_gets_scans_and_deletes(sync_db: prism_runtime.SyncDatabase, users: Any) -> None:
    pb2, prism = users
    store = prism.UserProfileSyncStore(sync_db)
    assert store.get("u1") is None
    store.put(pb2.UserProfile(user_id="u1", email="a@example.com", display_name="A"))
    store.put_many(pb2.UserProfile(user_id=f"u{i}", display_name=str(i)) for i in range(2, 40))
    got = store.get("u1")
    assert got == pb2.UserProfile(user_id="u1", email="a@example.com", display_name="A")
    assert [m.user_id if m else None for m in store.get_many(["u3", "nope", "u1"])] == ["u3", None, "u1"]
    scanned = [m.user_id for m in store.scan(page_size=7)]
    assert scanned == sorted(["u1", *(f"u{i}" for i in range(2, 40))])
    assert [m.user_id for m in store.scan(after="u35", limit=3)] == ["u36", "u37", "u38"]
    assert store.delete("u1") is True
    assert store.delete("u1") is False
    assert store.get("u1") is None


def test_sync_and_async_clients_see_each_others_writes(url: str, users: Any) -> None:
    pb2, prism = users
    with prism_runtime.connect_sync(url) as db:
        prism.UserProfileSyncStore(db).put(pb2.UserProfile(user_id="s1", display_name="sync"))

    async def from_async() -> Any:
        async with prism_runtime.connect(url) as adb:
            store = prism.UserProfileStore(adb)
            await store.put(pb2.UserProfile(user_id="a1", display_name="async"))
            return await store.get("s1")

    import asyncio

    assert asyncio.run(from_async()).display_name == "sync"
    with prism_runtime.connect_sync(url) as db:
        assert prism.UserProfileSyncStore(db).get("a1").display_name == "async"


def test_a_thread_pool_shares_one_database_and_one_store(
    sync_db: prism_runtime.SyncDatabase, users: Any
) -> None:
    pb2, prism = users
    store = prism.UserProfileSyncStore(sync_db)  # one store, prepared by whichever thread comes first
    threads: set[int] = set()

    def work(i: int) -> str:
        threads.add(threading.get_ident())
        store.put(pb2.UserProfile(user_id=f"t{i:03d}", display_name=str(i)))
        got = store.get(f"t{i:03d}")
        assert got is not None
        return got.display_name

    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(work, range(200)))
    assert names == [str(i) for i in range(200)]
    assert len(threads) > 1, "the pool ran the calls on several threads"
    assert len(list(store.scan())) == 200


def test_sqlite_gives_each_thread_its_own_connection_with_the_async_settings(
    tmp_path: Path, generated: Path, users: Any
) -> None:
    pb2, prism = users
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    with prism_runtime.connect_sync(url) as db:
        prism.UserProfileSyncStore(db).put(pb2.UserProfile(user_id="x"))
        driver: Any = db.aio.backend
        seen: list[tuple[int, str, int, int]] = []

        def settings() -> None:
            conn = driver.conn
            seen.append(
                (
                    id(conn),
                    conn.execute("PRAGMA journal_mode").fetchone()[0],
                    conn.execute("PRAGMA synchronous").fetchone()[0],
                    conn.execute("PRAGMA busy_timeout").fetchone()[0],
                )
            )

        threads = [threading.Thread(target=settings) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({s[0] for s in seen}) == 3, "one connection per thread"
        assert {s[1:] for s in seen} == {("wal", 1, 5000)}, "WAL, synchronous=NORMAL, the busy timeout"
    with pytest.raises(NotOpen):
        prism.UserProfileSyncStore(db)


def test_in_memory_sqlite_is_one_database_for_every_thread(generated: Path, users: Any) -> None:
    pb2, prism = users
    with prism_runtime.connect_sync("sqlite://") as db:
        store = prism.UserProfileSyncStore(db)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda i: store.put(pb2.UserProfile(user_id=f"m{i}")), range(20)))
        assert len(list(store.scan())) == 20


def test_a_blocking_call_never_needs_an_event_loop(tmp_path: Path, generated: Path, users: Any) -> None:
    pb2, prism = users
    with prism_runtime.connect_sync(f"sqlite:///{tmp_path / 'noloop.db'}") as db:
        store = prism.UserProfileSyncStore(db)
        store.put(pb2.UserProfile(user_id="n1"))
        assert store.get("n1") is not None
        with pytest.raises(RuntimeError):
            import asyncio

            asyncio.get_running_loop()


def test_drive_refuses_a_coroutine_that_waits_on_a_loop() -> None:
    import asyncio

    async def waits() -> None:
        await asyncio.Future()

    with pytest.raises(RuntimeError):
        drive(waits())


PAIRS = [
    (prism_runtime.KeyValueStore, sync_clients.SyncKeyValueStore),
    (prism_runtime.SortedKeyValueStore, sync_clients.SyncSortedKeyValueStore),
    (prism_runtime.TimeSeries, sync_clients.SyncTimeSeries),
    (prism_runtime.NodeStore, sync_clients.SyncNodeStore),
    (prism_runtime.EdgeStore, sync_clients.SyncEdgeStore),
    (prism_runtime.Graph, sync_clients.SyncGraph),
]


@pytest.mark.parametrize(("aio", "blocking"), PAIRS, ids=[b.__name__ for _, b in PAIRS])
def test_every_async_method_has_a_blocking_twin_with_its_parameters(aio: type, blocking: type) -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(value)
            for name, value in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    wanted, have = public(aio), public(blocking)
    assert sorted(wanted) == sorted(name for name in have if name != "__init__")
    for name, signature in wanted.items():
        assert list(signature.parameters) == list(have[name].parameters), name
        assert not inspect.iscoroutinefunction(getattr(blocking, name)), name


def test_sync_store_reads_what_sqlite3_wrote(tmp_path: Path, generated: Path, users: Any) -> None:
    pb2, prism = users
    path = tmp_path / "raw.db"
    with prism_runtime.connect_sync(f"sqlite:///{path}") as db:
        store = prism.UserProfileSyncStore(db)
        store.put(pb2.UserProfile(user_id="r1", display_name="before"))
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute(f'UPDATE "{store.namespace}" SET display_name = ? WHERE user_id = ?', ("after", "r1"))
        raw.close()
        got = store.get("r1")
        assert got is not None and got.display_name == "after"


def test_a_stream_backend_runs_on_a_loop_thread_the_database_stops_at_close(
    nats_url: str, tmp_path: Path, generated: Path
) -> None:
    pb2 = load("acme.events.v1.events_pb2")
    prism = load("acme.events.v1.events_prism")
    config = {
        "backends": {"nats": nats_url, "sqlite": f"sqlite:///{tmp_path / 'keys.db'}"},
        "namespaces": {"acme_events_v1_click_event": "nats"},
    }

    def loops() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "prism-sync-loop"]

    before = len(loops())
    with prism_runtime.connect_sync(config=config) as db:
        assert len(loops()) == before + 1
        series = prism.ClickEventSyncSeries(db)
        user = f"loop-{uuid.uuid4().hex[:8]}"
        clicks = [pb2.ClickEvent(user_id=user, page=f"/{i}") for i in range(3)]
        for i, click in enumerate(clicks):
            click.at.FromMilliseconds(1_700_000_000_000 + i)
        series.append_many(clicks)
        assert [e.page for e in series.query(user)] == ["/0", "/1", "/2"]
    assert len(loops()) == before
    with pytest.raises(NotOpen, match="closed"):
        series.append(clicks[0])
    with db:  # reopened: a new loop thread, which the clients made before use
        assert [e.page for e in series.query(user)] == ["/0", "/1", "/2"]


def test_postgres_url_parameters_libpq_does_not_know_become_server_settings() -> None:
    from prism_runtime.backends.postgres_sync import PostgresSyncDriver
    from prism_runtime.config import resolve_url

    url = "postgresql://u:pw@h:5432/db?search_path=t_1&lock_timeout=100&sslmode=disable&pool_size=4"
    driver = PostgresSyncDriver(resolve_url(url))
    assert driver.pool_size == 4
    assert driver.conninfo == (
        "postgresql://u:pw@h:5432/db?sslmode=disable&options=-c%20search_path%3Dt_1%20-c%20lock_timeout%3D100"
    )
    assert "pw" not in driver.name


def test_a_missing_psycopg_names_the_postgres_sync_extra() -> None:
    from prism_runtime.extras import missing_extra

    for module in ("psycopg", "psycopg_pool"):
        missing = missing_extra(ModuleNotFoundError(name=module), "the postgres backend")
        assert missing is not None and "prism-runtime[postgres-sync]" in str(missing)


def test_audited_writes_from_a_thread_pool_keep_one_intact_chain_naming_each_actor(
    url: str, tmp_path: Path, generated: Path
) -> None:
    from prism_runtime.pii import LocalKeyWrapper
    from prism_runtime.pii.vault import vault_for

    pb2 = load("prismtest.pii.v1.pii_pb2")
    prism = load("prismtest.pii.v1.pii_prism")
    with prism_runtime.connect_sync(url, key_wrapper=LocalKeyWrapper(tmp_path / "master.key")) as db:
        store = prism.PatientSyncStore(db)

        def work(i: int) -> None:
            with prism_runtime.actor(f"worker-{i % 4}", purpose="sync test"):
                store.put(pb2.Patient(patient_id=f"t{i:02d}", ssn="078-05-1120", email=f"p{i}@example.com"))
                got = store.get(f"t{i:02d}")
                assert got is not None and got.email == f"p{i}@example.com"

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(work, range(40)))
        vault: Any = vault_for(db.aio.backend)  # type: ignore[arg-type]
        result = drive(vault.audit.verify())
        assert result.ok, result.reason
        actors = {
            row[0] for row in drive(db.aio.backend.fetch("SELECT actor FROM prism_audit", (), namespace=""))
        }  # type: ignore[attr-defined]
        assert actors == {f"worker-{n}" for n in range(4)}


def test_the_loop_thread_runs_a_call_in_the_callers_context() -> None:
    import contextvars

    from prism_runtime.drive import LoopThread

    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")

    async def read() -> str:
        return who.get()

    loop = LoopThread()
    try:
        who.set("caller")
        assert loop.run(read()) == "caller"
    finally:
        loop.stop()


def test_every_blocking_driver_meets_its_kinds_contract() -> None:
    from prism_runtime.backends import loader, registry

    blocking = [e for e in registry.entries() if e.blocking is not None]
    assert {e.kind for e in blocking} == {"sqlite", "postgres"}
    for entry in blocking:
        cls = loader.load_class(entry, f"the {entry.kind} backend", blocking=True)
        assert cls.__name__ == entry.blocking[1] and cls.kind == entry.kind  # type: ignore[index]


def test_a_migrating_namespace_dual_writes_shadow_reads_and_rolls_back_from_blocking_code(
    tmp_path: Path, generated: Path, postgres_dsn: str, users: Any
) -> None:
    """The shadow routing layer (dual writes, shadow reads compared) runs driven too; phases follow on the loop."""
    import asyncio

    from test_migrations import NS, config_file, ends, profile, rows_on

    from prism_runtime import migrations

    pb2, prism = users
    source, target = asyncio.run(ends("sqlite->postgres", tmp_path, generated, postgres_dsn))
    with prism_runtime.connect_sync(config=config_file(tmp_path, source, target)) as db:
        store = prism.UserProfileSyncStore(db)
        store.put(profile(pb2, 1))
        store.put_many([profile(pb2, 2), profile(pb2, 3)])
        assert store.delete("u00003")
        db.run(migrations.set_phase(db.aio, NS, "shadow_read", "tester"))
        assert store.get("u00002") == profile(pb2, 2)  # read from both sides, compared
        assert [m.user_id for m in store.scan()] == ["u00001", "u00002"]
        db.run(migrations.set_phase(db.aio, NS, "promoted", "tester"))
        store.put(profile(pb2, 4))
        assert store.delete("u00002")
        db.run(migrations.set_phase(db.aio, NS, "dual_write", "tester"))
        keys = ["u00001", "u00002", "u00004"]
        assert [m.user_id if m else None for m in store.get_many(keys)] == ["u00001", None, "u00004"]
    expected = {"u00001": profile(pb2, 1), "u00004": profile(pb2, 4)}
    assert asyncio.run(rows_on(source, generated, pb2, prism, keys)) == expected
    assert asyncio.run(rows_on(target, generated, pb2, prism, keys)) == expected
