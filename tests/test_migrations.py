"""Moving a namespace between backends with shadow traffic (docs/migrations-between-backends.md), on real
servers: dual write, shadow read, promote and roll back, a backfill killed with SIGKILL and resumed under a
concurrent writer of puts and deletes, `--verify`, and PII (ciphertext copied with its keys, forget on both
sides, audit chains intact)."""

from __future__ import annotations

import asyncio
import importlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from backends import new_schema

import prism_runtime
from prism_runtime import migrations
from prism_runtime.errors import ConfigError
from protoc_gen_prism.sql.provision import provision

NS = "acme_users_v1_user_profile"
CLI = [sys.executable, "-c", "import sys; from protoc_gen_prism.cli import main; sys.exit(main())"]


@pytest.fixture
def users(generated: Path) -> tuple[Any, Any]:
    return importlib.import_module("acme.users.v1.users_pb2"), importlib.import_module(
        "acme.users.v1.users_prism"
    )


async def new_database(dsn: str) -> str:
    """Create a second database on the server and return its DSN (two Postgres databases, not schemas)."""
    name = f"m_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn.rsplit("/", 1)[0] + f"/{name}"


async def provisioned(url: str, generated: Path) -> str:
    async with prism_runtime.connect(url) as db:
        await provision(db, generated, echo=lambda line: None)
    return url


async def ends(kind: str, tmp_path: Path, generated: Path, postgres_dsn: str) -> tuple[str, str]:
    """Return (source URL, target URL) of an empty migration of `kind`: sqlite->postgres or postgres->postgres."""
    target = await provisioned(await new_database(postgres_dsn), generated)
    if kind == "sqlite->postgres":
        return f"sqlite:///{tmp_path / 'source.db'}", target
    return await provisioned(await new_schema(postgres_dsn), generated), target


def config_file(tmp_path: Path, source: str, target: str, phase: str = "dual_write", **more: Any) -> Path:
    path = tmp_path / "prism.yaml"
    body = {
        # The default backend of every other namespace: its own file, not ./prism.db.
        "backends": {"sqlite": f"sqlite:///{tmp_path / 'default.db'}", "old": source, "new": target},
        "namespaces": {NS: "old"},
        "migrations": {
            NS: {"source": "old", "target": "new", "phase": phase, "phase_poll_seconds": 0.1, **more}
        },
    }
    path.write_text(yaml.safe_dump(body))
    return path


def migrating_config(tmp_path: Path, source: str, target: str, *namespaces: str) -> Path:
    """Write prism.yaml moving `namespaces` from `source` ("old") to `target` ("new"), in dual_write."""
    path = tmp_path / "prism.yaml"
    body = {
        "backends": {"sqlite": f"sqlite:///{tmp_path / 'default.db'}", "old": source, "new": target},
        "migrations": {ns: {"source": "old", "target": "new", "phase": "dual_write"} for ns in namespaces},
    }
    path.write_text(yaml.safe_dump(body))
    return path


def profile(pb2: Any, i: int, version: int = 0) -> Any:
    return pb2.UserProfile(
        user_id=f"u{i:05d}",
        email=f"user{i}.v{version}@example.com",
        display_name=f"User {i} v{version}",
        tags=["a", f"t{version}"],
        preferences={"lang": "en", "v": str(version)},
    )


def test_config_names_two_backends_of_one_kind_and_checks_migrations(tmp_path: Path) -> None:
    from prism_runtime.config import load_config

    config = load_config(
        config={
            "backends": {"postgres": "postgresql://a/x", "pg_new": "postgresql://b/y"},
            "migrations": {"ns": {"source": "postgres", "target": "pg_new", "phase": "shadow_read"}},
        }
    )
    assert config.backends["pg_new"].kind == "postgres"
    assert (
        config.migrations["ns"].phase == "shadow_read" and config.migrations["ns"].shadow_read_sample == 1.0
    )
    bad = [
        ({"ns": {"source": "postgres", "target": "nowhere"}}, "which has no URL"),
        ({"ns": {"source": "postgres", "target": "postgres"}}, "name two backends"),
        ({"ns": {"source": "postgres", "target": "pg_new", "phase": "later"}}, "allowed: dual_write"),
        ({"ns": {"source": "postgres", "target": "pg_new", "shadow_read_sample": 2}}, "0.0..1.0"),
    ]
    for migrations_section, message in bad:
        with pytest.raises(ConfigError, match=message):
            load_config(
                config={
                    "backends": {"postgres": "postgresql://a/x", "pg_new": "postgresql://b/y"},
                    "migrations": migrations_section,
                }
            )
    with pytest.raises(ConfigError, match="is a sqlite URL"):
        load_config(config={"backends": {"postgres": "sqlite:///x.db"}})


async def rows_on(url: str, generated: Path, pb2: Any, prism: Any, keys: list[str]) -> dict[str, Any]:
    """Read `keys` straight from one backend (no migration), decrypting with the keys it holds."""
    async with prism_runtime.connect(url) as db:
        found = await prism.UserProfileStore(db).get_many(keys)
    return {k: v for k, v in zip(keys, found, strict=True) if v is not None}


@pytest.mark.parametrize("kind", ["sqlite->postgres", "postgres->postgres"])
async def test_phases_route_reads_and_writes_and_a_rollback_loses_nothing(
    kind: str, tmp_path: Path, generated: Path, postgres_dsn: str, users: Any
) -> None:
    pb2, prism = users
    source, target = await ends(kind, tmp_path, generated, postgres_dsn)
    path = config_file(tmp_path, source, target)
    async with prism_runtime.connect(config=path) as db:
        store = prism.UserProfileStore(db)
        await store.put(profile(pb2, 1))
        await store.put_many([profile(pb2, 2), profile(pb2, 3)])
        assert await store.delete("u00003")
        assert await store.get("u00001") == profile(pb2, 1)
        # dual_write: both sides hold the writes; the target's copy is the source's ciphertext, opened there.
        assert await rows_on(target, generated, pb2, prism, ["u00001", "u00002", "u00003"]) == {
            "u00001": profile(pb2, 1),
            "u00002": profile(pb2, 2),
        }
        await migrations.set_phase(db, NS, "shadow_read", "tester")
        assert await store.get("u00002") == profile(pb2, 2)
        with pytest.raises(ConfigError, match="done only after promoted"):
            await migrations.set_phase(db, NS, "done", "tester")
        await migrations.set_phase(db, NS, "promoted", "tester")
        assert (await migrations.status(db, NS)).following == "promoted"
        await store.put(profile(pb2, 4))
        await store.put(profile(pb2, 1, version=1))
        assert await store.delete("u00002")
        # Roll back: the source got every write made while the target was primary.
        await migrations.set_phase(db, NS, "dual_write", "tester")
        expected = {"u00001": profile(pb2, 1, version=1), "u00004": profile(pb2, 4)}
        keys = ["u00001", "u00002", "u00004"]
        assert dict(zip(keys, await store.get_many(keys), strict=True)) == {**expected, "u00002": None}
    assert await rows_on(source, generated, pb2, prism, keys) == expected
    assert await rows_on(target, generated, pb2, prism, keys) == expected


SEED = 3000


async def seed(source: str, pb2: Any, prism: Any) -> dict[str, Any]:
    """Write SEED rows on the source before the migration starts (the service bound to it alone)."""
    items = [profile(pb2, i) for i in range(SEED)]
    async with prism_runtime.connect(source) as db:
        await prism.UserProfileStore(db).put_many(items)
    return {m.user_id: m for m in items}


async def writer(store: Any, pb2: Any, ledger: dict[str, Any], stop: asyncio.Event) -> int:
    """Put and delete seed keys (and new ones) until told to stop; record every acknowledged outcome."""
    rng = random.Random(7)
    ops = 0
    while not stop.is_set():
        i = rng.randrange(SEED + 200)
        key = f"u{i:05d}"
        if rng.random() < 0.5:
            item = profile(pb2, i, version=ops + 1)
            await store.put(item)
            ledger[key] = item
        else:
            await store.delete(key)
            ledger[key] = None
        ops += 1
        await asyncio.sleep(0.002)
    return ops


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["sqlite->postgres", "postgres->postgres"])
async def test_backfill_killed_and_resumed_under_writes_loses_and_resurrects_nothing(
    kind: str, tmp_path: Path, generated: Path, postgres_dsn: str, users: Any
) -> None:
    pb2, prism = users
    source, target = await ends(kind, tmp_path, generated, postgres_dsn)
    expected = await seed(source, pb2, prism)
    path = config_file(tmp_path, source, target)
    ledger: dict[str, Any] = {}
    stop = asyncio.Event()
    async with prism_runtime.connect(config=path) as db:
        store = prism.UserProfileStore(db)
        writes = asyncio.create_task(writer(store, pb2, ledger, stop))
        await asyncio.sleep(0.3)  # the service writes (and records the entity's spec) before the backfill
        command = [*CLI, "backfill", NS, "--config", str(path), "--rate", "2500", "--page-size", "100"]
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while (await migrations.progress(db, NS)).rows < SEED // 3:
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL
        stopped = await migrations.progress(db, NS)
        assert stopped.state == "running" and SEED // 3 <= stopped.rows < SEED
        resumed = await asyncio.to_thread(
            run_cli, "backfill", NS, "--config", str(path), "--page-size", "100"
        )
        assert resumed.returncode == 0, resumed.stderr
        assert "done" in resumed.stderr
        done = await migrations.progress(db, NS)
        # The total is the count when the backfill started, the writer having deleted some rows already.
        assert done.state == "done" and SEED * 0.9 < done.total <= SEED + 200
        # It resumed after the checkpoint: a run from the first key again would have read over SEED + 200 rows.
        assert done.rows <= SEED + 200
        # The resumed run started after the checkpoint: it did not read the whole table again.
        await asyncio.sleep(0.3)
        stop.set()
        ops = await writes
        assert ops > 100 and any(v is None for v in ledger.values())
    verified = await asyncio.to_thread(run_cli, "backfill", NS, "--config", str(path), "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "missing 0, extra 0, different 0" in verified.stdout
    for key, value in ledger.items():
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
    keys = [f"u{i:05d}" for i in range(SEED + 200)]
    assert await rows_on(target, generated, pb2, prism, keys) == expected
    assert await rows_on(source, generated, pb2, prism, keys) == expected


async def test_a_stale_backfill_page_neither_overwrites_nor_resurrects(
    tmp_path: Path, generated: Path, postgres_dsn: str, users: Any
) -> None:
    from prism_runtime.migrations.rows import RowCopier
    from prism_runtime.migrations.tables import CHECKPOINTS
    from prism_runtime.migrations.transfer import Progress, _copy_page, ends_of, read_page
    from prism_runtime.pii.tables import prepare

    pb2, prism = users
    source, target = await ends("sqlite->postgres", tmp_path, generated, postgres_dsn)
    await seed(source, pb2, prism)
    async with prism_runtime.connect(config=config_file(tmp_path, source, target)) as db:
        store = prism.UserProfileStore(db)
        await store.put(profile(pb2, 9999))  # the service's first write records the spec
        found = await ends_of(db, NS)
        copier = RowCopier(found.spec, found.source, found.target)
        await prepare(found.target, CHECKPOINTS)
        page = await read_page(copier.layout, found.source, None, 10)  # read before the writes below
        assert [copier.key_of(r)[0] for r in page[:3]] == ["u00000", "u00001", "u00002"]
        await store.delete("u00000")
        await store.put(profile(pb2, 1, version=5))
        state = await _copy_page(copier, Progress(NS, state="running"), page)
        assert state.skipped == 1 and state.copied == 9
        # The tombstone names the deleted key by a pseudonym: the subject's id is not kept in clear.
        stones = await found.target.fetch('SELECT "key" FROM "prism_tombstones"', (), namespace=NS)
        assert len(stones) == 1 and "u00000" not in stones[0][0]
    got = await rows_on(target, generated, pb2, prism, ["u00000", "u00001", "u00002"])
    assert got == {"u00001": profile(pb2, 1, version=5), "u00002": profile(pb2, 2)}


async def test_pii_moves_as_ciphertext_and_forget_erases_both_sides(
    tmp_path: Path, generated: Path, postgres_dsn: str, users: Any
) -> None:
    from prism_runtime.pii.vault import vault_for

    pb2, prism = users
    source, target = await ends("sqlite->postgres", tmp_path, generated, postgres_dsn)
    await seed(source, pb2, prism)
    path = config_file(tmp_path, source, target)
    async with prism_runtime.connect(config=path) as db:
        store = prism.UserProfileStore(db)
        await store.put(profile(pb2, 1, version=2))
        progress = await migrations.backfill(db, NS, page_size=1000)
        assert progress.state == "done" and progress.rows == SEED
        old, new = (db.named_backend(name) for name in ("old", "new"))
        # The target holds the source's ciphertext byte for byte, never the plaintext.
        for driver in (old, new):
            rows = await driver.fetch(  # type: ignore[attr-defined]
                f'SELECT "email" FROM "{NS}" WHERE "user_id" = {driver.dialect.placeholder(1)}',  # type: ignore[attr-defined]
                ("u00005",),
                namespace=NS,
            )
            assert b"user5" not in bytes(rows[0][0])
        assert (await migrations.verify(db, NS)).total == 0
        await migrations.set_phase(db, NS, "shadow_read", "operator-7")
        receipt = await prism_runtime.forget(db, "u00005")
        assert receipt
        assert await store.get("u00005") is None
        for driver in (old, new):
            chain = vault_for(driver).audit  # type: ignore[arg-type]
            assert (await chain.verify()).ok
        entries = [e async for e in vault_for(old).audit.entries()]  # type: ignore[arg-type]
        assert any(e.action == "migrate" and e.actor == "operator-7" for e in entries)
    for url in (source, target):
        assert await rows_on(url, generated, pb2, prism, ["u00005", "u00006"]) == {"u00006": profile(pb2, 6)}
    # The command line reaches both sides through the config.
    forgot = await asyncio.to_thread(run_cli, "forget", "u00006", "--config", str(path))
    assert forgot.returncode == 0, forgot.stderr
    for url in (source, target):
        assert await rows_on(url, generated, pb2, prism, ["u00006", "u00007"]) == {"u00007": profile(pb2, 7)}


async def test_a_time_series_moves_by_event_time_while_the_service_appends(
    tmp_path: Path, generated: Path, postgres_dsn: str
) -> None:
    import datetime

    pb2 = importlib.import_module("acme.events.v1.events_pb2")
    prism = importlib.import_module("acme.events.v1.events_prism")
    ns = "acme_events_v1_click_event"
    source, target = await ends("sqlite->postgres", tmp_path, generated, postgres_dsn)
    start = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)

    def click(i: int) -> Any:
        event = pb2.ClickEvent(user_id=f"u{i % 7}", page=f"/p/{i}", dwell_ms=i)
        event.at.FromDatetime(start + datetime.timedelta(minutes=7 * i, microseconds=i))
        return event

    async with prism_runtime.connect(source) as db:
        await prism.ClickEventSeries(db).append_many([click(i) for i in range(1200)])
    path = migrating_config(tmp_path, source, target, ns)
    async with prism_runtime.connect(config=path) as db:
        series = prism.ClickEventSeries(db)
        await series.append(click(1200))
        await series.append(click(5))  # a retry of a seeded event: stored once on each side
        copy = asyncio.create_task(migrations.backfill(db, ns, page_size=100))
        for i in range(1201, 1300):
            await series.append(click(i))
            await asyncio.sleep(0)
        done = await copy
        assert done.state == "done" and done.rows >= 1201
        assert (await migrations.verify(db, ns)).total == 0
        await migrations.set_phase(db, ns, "shadow_read", "tester")
        on_source = [e async for e in series.query("u3")]
        await migrations.set_phase(db, ns, "promoted", "tester")
        assert [e async for e in series.query("u3")] == on_source
        assert len(on_source) == len([i for i in range(1300) if i % 7 == 3])


async def test_a_running_service_follows_a_phase_changed_from_the_command_line(
    tmp_path: Path, generated: Path, postgres_dsn: str, users: Any
) -> None:
    pb2, prism = users
    source, target = await ends("sqlite->postgres", tmp_path, generated, postgres_dsn)
    path = config_file(tmp_path, source, target)
    async with prism_runtime.connect(config=path) as db:
        await prism.UserProfileStore(db).put(profile(pb2, 1))
        assert db.watcher is not None and db.watcher.cells[NS].phase == "dual_write"
        changed = await asyncio.to_thread(
            run_cli, "migration", "phase", NS, "shadow_read", "--config", str(path), "--actor", "ops-1"
        )
        assert changed.returncode == 0, changed.stderr
        assert "phase shadow_read" in changed.stdout and "by ops-1" in changed.stdout
        deadline = time.monotonic() + 5
        while db.watcher.cells[NS].phase != "shadow_read":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        refused = await asyncio.to_thread(run_cli, "migration", "phase", NS, "done", "--config", str(path))
        assert refused.returncode == 1 and "done only after promoted" in refused.stderr
        assert [(m.namespace, m.phase, m.updated_by) for m in await migrations.statuses(db)] == [
            (NS, "shadow_read", "ops-1")
        ]
        shown = await asyncio.to_thread(run_cli, "migration", "status", NS, "--config", str(path))
        assert "old -> new, phase shadow_read" in shown.stdout and "backfill: not started" in shown.stdout


async def test_a_graph_moves_with_its_nodes(tmp_path: Path, generated: Path, postgres_dsn: str) -> None:
    pb2 = importlib.import_module("acme.social.v1.social_pb2")
    prism = importlib.import_module("acme.social.v1.social_prism")
    nodes, edges = "acme_social_v1_person", "acme_social_v1_follows"
    source, target = await ends("sqlite->postgres", tmp_path, generated, postgres_dsn)
    names = [f"p{i:03d}" for i in range(60)]
    async with prism_runtime.connect(source) as db:
        graph = prism.FollowsGraph(db)
        await graph.add_nodes(pb2.Person(person_id=n, city="Oslo") for n in names)
        await graph.add_edges(
            pb2.Follows(follower_id=names[i], followee_id=names[(i * 7 + k) % 60])
            for i in range(60)
            for k in (1, 2)
        )
    path = migrating_config(tmp_path, source, target, nodes, edges)
    async with prism_runtime.connect(config=path) as db:
        graph = prism.FollowsGraph(db)
        await graph.add_node(pb2.Person(person_id="p999", city="Rome"))
        await graph.add_edge(pb2.Follows(follower_id="p000", followee_id="p999"))
        assert await graph.remove_edge("p000", "p001")
        for namespace in (nodes, edges):
            assert (await migrations.backfill(db, namespace)).state == "done"
            assert (await migrations.verify(db, namespace)).total == 0
        before = await graph.bfs("p000", 3)
        for namespace in (nodes, edges):
            await migrations.set_phase(db, namespace, "shadow_read", "tester")
        assert await graph.bfs("p000", 3) == before  # each hop also read from the target and compared
        for namespace in (nodes, edges):
            await migrations.set_phase(db, namespace, "promoted", "tester")
        assert await graph.bfs("p000", 3) == before
        assert await graph.get_edge("p000", "p001") is None
        assert await graph.get_edge("p000", "p999") is not None


async def test_an_encrypted_time_series_moves_as_ciphertext(
    tmp_path: Path, generated: Path, postgres_dsn: str
) -> None:
    pb2 = importlib.import_module("prismtest.pii.v1.pii_pb2")
    prism = importlib.import_module("prismtest.pii.v1.pii_prism")
    ns = "prismtest_pii_v1_sign_in"
    source, target = await ends("sqlite->postgres", tmp_path, generated, postgres_dsn)

    def sign_in(i: int) -> Any:
        return pb2.SignIn(
            patient_id=f"pt{i % 5}", at_ms=1_700_000_000_000 + i * 1000, ip=f"198.51.100.{i % 250}"
        )

    async with prism_runtime.connect(source) as db:
        await prism.SignInSeries(db).append_many([sign_in(i) for i in range(300)])
    path = migrating_config(tmp_path, source, target, ns)
    async with prism_runtime.connect(config=path) as db:
        series = prism.SignInSeries(db)
        await series.append_many([sign_in(i) for i in range(300, 320)])
        assert (await migrations.backfill(db, ns, page_size=64)).state == "done"
        assert (await migrations.verify(db, ns)).total == 0
        expected = [e async for e in series.query("pt2")]
        await migrations.set_phase(db, ns, "promoted", "tester")
        await series.append(sign_in(322))
        assert [e async for e in series.query("pt2")] == [*expected, sign_in(322)]
        await migrations.set_phase(db, ns, "shadow_read", "tester")  # a rollback: the source got it too
        assert (await migrations.verify(db, ns)).total == 0
        assert len(expected) == 64


async def test_a_strict_migration_fails_the_caller_when_the_target_refuses(
    tmp_path: Path, users: Any
) -> None:
    import sqlite3

    pb2, prism = users
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    body = {
        "backends": {"sqlite": f"sqlite:///{old}", "new": f"sqlite:///{new}"},
        "migrations": {NS: {"source": "sqlite", "target": "new", "strict": True}},
    }
    async with prism_runtime.connect(config=body) as db:
        store = prism.UserProfileStore(db)
        await store.put(profile(pb2, 1))
        with sqlite3.connect(new) as conn:
            conn.execute(f'DROP TABLE "{NS}"')
        with pytest.raises(prism_runtime.BackendError):
            await store.put(profile(pb2, 2))
        assert await store.get("u00002") == profile(pb2, 2)  # the source, written first, has it


async def test_on_postgres_a_claim_and_a_tombstone_of_one_key_wait_for_each_other(
    tmp_path: Path, generated: Path, postgres_dsn: str, users: Any
) -> None:
    """The two orders of a backfill page and a delete of the same key, each held open by hand on the target."""
    from prism_runtime.migrations.rows import RowCopier
    from prism_runtime.migrations.tables import CHECKPOINTS, CLAIM, DELETED, TOMBSTONES
    from prism_runtime.migrations.transfer import Progress, _copy_page, ends_of, read_page
    from prism_runtime.pii.tables import prepare

    pb2, prism = users
    source, target = await ends("sqlite->postgres", tmp_path, generated, postgres_dsn)
    await seed(source, pb2, prism)
    async with prism_runtime.connect(config=config_file(tmp_path, source, target)) as db:
        store = prism.UserProfileStore(db)
        await store.put(profile(pb2, 9999))
        found = await ends_of(db, NS)
        copier = RowCopier(found.spec, found.source, found.target)
        for table in (CHECKPOINTS, TOMBSTONES):
            await prepare(found.target, table)
        page = await read_page(copier.layout, found.source, None, 5)
        first, second = await copier.names.of([copier.key_of(page[0]), copier.key_of(page[1])])
        conn = await asyncpg.connect(target)
        try:
            # 1. A delete's tombstone is in flight: the page's claim of that key waits, then skips the key.
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute(
                'INSERT INTO "prism_tombstones" VALUES ($1, $2, $3, $4)', NS, first, DELETED, "now"
            )
            copying = asyncio.create_task(_copy_page(copier, Progress(NS, state="running"), page[:1]))
            await asyncio.sleep(0.5)
            assert not copying.done()
            await transaction.commit()
            assert (await copying).skipped == 1
            # 2. A page's claim and copy are in flight: the delete waits, then deletes the copied row.
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute(
                'INSERT INTO "prism_tombstones" VALUES ($1, $2, $3, $4)', NS, second, CLAIM, ""
            )
            staged = await copier.staged(page[1:2])
            await conn.execute(copier.insert_if_absent, *staged[0])
            deleting = asyncio.create_task(store.delete("u00001"))
            await asyncio.sleep(0.5)
            assert not deleting.done()
            await conn.execute('DELETE FROM "prism_tombstones" WHERE "state" = $1', CLAIM)
            await transaction.commit()
            assert await deleting
        finally:
            await conn.close()
    assert await rows_on(target, generated, pb2, prism, ["u00000", "u00001"]) == {}


@pytest.mark.parametrize("stream", ["nats", "kafka"])
async def test_a_time_series_moves_from_sqlite_to_a_stream(
    stream: str, request: pytest.FixtureRequest, tmp_path: Path, generated: Path
) -> None:
    import datetime

    pb2 = importlib.import_module("acme.events.v1.events_pb2")
    prism = importlib.import_module("acme.events.v1.events_prism")
    ns = "acme_events_v1_click_event"
    if stream == "nats":
        target = request.getfixturevalue("nats_url")
    else:  # Tansu refuses idempotent producers (docs/backends-notes.md)
        target = f"kafka://{request.getfixturevalue('kafka_bootstrap')}?idempotence=false"
    source = f"sqlite:///{tmp_path / 'source.db'}"
    users = [f"m-{uuid.uuid4().hex[:10]}-{i}" for i in range(3)]  # streams keep other tests' events
    start = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)

    def click(i: int) -> Any:
        event = pb2.ClickEvent(user_id=users[i % 3], page=f"/p/{i}", dwell_ms=i)
        event.at.FromDatetime(start + datetime.timedelta(seconds=i))
        return event

    async with prism_runtime.connect(source) as db:
        await prism.ClickEventSeries(db).append_many([click(i) for i in range(150)])
    path = migrating_config(tmp_path, source, target, ns)
    async with prism_runtime.connect(config=path) as db:
        series = prism.ClickEventSeries(db)
        await series.append_many([click(i) for i in range(150, 160)])
        assert (await migrations.backfill(db, ns, page_size=40)).state == "done"
        assert (await migrations.backfill(db, ns, page_size=40, restart=True)).rows == 160  # repeats: dropped
        found = await migrations.verify(db, ns)
        assert (found.compared, found.total) == (160, 0)
        expected = [e async for e in series.query(users[1])]
        await migrations.set_phase(db, ns, "promoted", "tester")
        await series.append(click(160))
        assert [e async for e in series.query(users[1])] == [*expected, click(160)]
        await migrations.set_phase(db, ns, "dual_write", "tester")  # a rollback: the source got it too
        assert [e async for e in series.query(users[1])] == [*expected, click(160)]


async def test_a_sorted_map_moves_and_a_deleted_prefix_stays_deleted(
    tmp_path: Path, generated: Path, postgres_dsn: str
) -> None:
    from prism_runtime.migrations.rows import RowCopier
    from prism_runtime.migrations.tables import CHECKPOINTS, TOMBSTONES
    from prism_runtime.migrations.transfer import Progress, _copy_page, ends_of, read_page
    from prism_runtime.pii.tables import prepare

    pb2 = importlib.import_module("acme.orders.v1.orders_pb2")
    prism = importlib.import_module("acme.orders.v1.orders_prism")
    ns = "acme_orders_v1_order"
    source, target = await ends("postgres->postgres", tmp_path, generated, postgres_dsn)

    def order(c: int, o: int, cents: int = 100) -> Any:
        return pb2.Order(
            customer_id=f"c{c}", order_ref=f"o{o}", total_cents=cents, status=pb2.Order.STATUS_PLACED
        )

    async with prism_runtime.connect(source) as db:
        await prism.OrderStore(db).put_many([order(c, o) for c in range(10) for o in range(5)])
    path = migrating_config(tmp_path, source, target, ns)
    async with prism_runtime.connect(config=path) as db:
        store = prism.OrderStore(db)
        await store.put(order(9, 9))  # the service's first write records the spec
        found = await ends_of(db, ns)
        copier = RowCopier(found.spec, found.source, found.target)
        for table in (CHECKPOINTS, TOMBSTONES):
            await prepare(found.target, table)
        page = await read_page(copier.layout, found.source, None, 100)  # read before the writes below
        assert await store.delete_all("c1") == 5  # a prefix tombstone
        await store.put(order(1, 9, cents=7))  # written again under the deleted prefix
        assert await store.delete("c2", "o3")  # a key tombstone
        await store.put(order(3, 0, cents=5))  # newer than the page's copy
        state = await _copy_page(copier, Progress(ns, state="running"), page)
        assert (state.skipped, state.copied) == (6, 45)
        assert (await migrations.backfill(db, ns)).state == "done"
        differences = await migrations.verify(db, ns)
        assert differences.total == 0, differences
        await migrations.set_phase(db, ns, "promoted", "tester")
        assert [o.order_ref async for o in store.scan("c1")] == ["o9"]
        assert (await store.get("c1", "o9")).total_cents == 7
        assert await store.get("c2", "o3") is None
        assert (await store.get("c3", "o0")).total_cents == 5


def test_the_progress_line_gives_rows_rate_and_eta() -> None:
    import io

    from prism_runtime.migrations import Progress
    from protoc_gen_prism.cli.ops.backfill import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(out, every=0.0)
    bar.update(Progress(NS, copied=48, skipped=2, total=200, state="running"), 25.0)
    assert out.getvalue() == (
        f"backfill {NS}: 50/200 rows (25%), 25 rows/s, ETA 00:00:06 (skipped as deleted: 2)\n"
    )


async def test_a_series_backfill_to_nats_killed_and_resumed_appends_every_event_once(
    nats_url: str, tmp_path: Path, generated: Path
) -> None:
    import datetime

    pb2 = importlib.import_module("acme.events.v1.events_pb2")
    prism = importlib.import_module("acme.events.v1.events_prism")
    ns = "acme_events_v1_click_event"
    source = f"sqlite:///{tmp_path / 'source.db'}"
    users = [f"k-{uuid.uuid4().hex[:10]}-{i}" for i in range(4)]

    def click(i: int) -> Any:
        event = pb2.ClickEvent(user_id=users[i % 4], page=f"/p/{i}")
        event.at.FromDatetime(
            datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=i)
        )
        return event

    async with prism_runtime.connect(source) as db:
        await prism.ClickEventSeries(db).append_many([click(i) for i in range(2000)])
    path = migrating_config(tmp_path, source, nats_url, ns)
    env = {**os.environ, "PYTHONPATH": str(generated)}
    command = [*CLI, "backfill", ns, "--config", str(path), "--module", "acme.events.v1.events_prism"]
    async with prism_runtime.connect(config=path) as db:
        await prism.ClickEventSeries(db).append(click(2000))  # the service records the spec
        first = subprocess.Popen(
            [*command, "--rate", "1500", "--page-size", "50"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while (await migrations.progress(db, ns)).rows < 500:
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert (await migrations.progress(db, ns)).state == "running"
        resumed = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
        )
        assert resumed.returncode == 0, resumed.stderr
        verified = await asyncio.to_thread(
            subprocess.run, [*command, "--verify"], env=env, capture_output=True, text=True, timeout=120
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "2001 source rows compared; missing 0, extra 0" in verified.stdout
        await migrations.set_phase(db, ns, "promoted", "tester")
        assert len([e async for e in prism.ClickEventSeries(db).query(users[2])]) == 500
