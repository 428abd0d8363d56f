"""TTL on KeyValue entities: an expired item is never read, and is purged in the background and by the CLI.

The store's clock is `prism_runtime.sql.keyvalue.now_ms`; most tests move it forward instead of sleeping
(`clock`), and one checks the wall clock with a TTL of a few hundred milliseconds.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from backends import BACKENDS, drop_schema, fresh_database, new_schema, url_for
from checks_support import prism, write_schema
from conftest import run_protoc, write_proto
from styles import STYLES, Twins, styled

import prism_runtime
from prism_runtime.sql import keyvalue as sql_keyvalue
from protoc_gen_prism.images import compile_image
from protoc_gen_prism.migrations import plan_migration, render
from protoc_gen_prism.pytest_plugin import provisioned

SESSIONS = "prismtest_expiry_v1_session"


@pytest.fixture(params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path
) -> AsyncIterator[prism_runtime.Database]:
    async with fresh_database(request, tmp_path, generated) as handle:
        yield handle


@pytest.fixture
def expiry(generated: Path) -> tuple[Any, Any]:
    return (
        importlib.import_module("prismtest.expiry.v1.expiry_pb2"),
        importlib.import_module("prismtest.expiry.v1.expiry_prism"),
    )


@pytest.fixture(params=STYLES)
def styled_expiry(request: pytest.FixtureRequest, generated: Path) -> Iterator[tuple[Any, Any]]:
    """The generated module as each client style uses it (tests/styles.py)."""
    twins = Twins()
    yield (
        importlib.import_module("prismtest.expiry.v1.expiry_pb2"),
        styled(importlib.import_module("prismtest.expiry.v1.expiry_prism"), request.param, twins),
    )
    twins.close()


class Clock:
    """The stores' clock, moved by hand."""

    def __init__(self) -> None:
        self.ms = sql_keyvalue.now_ms()

    def __call__(self) -> int:
        return self.ms

    def advance(self, **delta: float) -> None:
        self.ms += int(timedelta(**delta) / timedelta(milliseconds=1))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(sql_keyvalue, "now_ms", clock)
    return clock


async def rows(db: prism_runtime.Database, table: str) -> int:
    driver: Any = db.backend
    found = await driver.fetch(f'SELECT count(*) FROM "{table}"', [], namespace=table)
    return int(found[0][0])


async def test_an_expired_item_is_never_read(
    db: prism_runtime.Database, styled_expiry: Any, clock: Clock
) -> None:
    pb2, prism_module = styled_expiry
    store = prism_module.SessionStore(db)
    await store.put(pb2.Session(session_id="short", user_id="ann"))  # the entity's TTL: 60 s
    await store.put_many([pb2.Session(session_id="long", user_id="ann")], ttl=timedelta(hours=1))
    await store.put(pb2.Session(session_id="brief", user_id="ann"), ttl=timedelta(seconds=5))
    assert await store.get("short") is not None
    clock.advance(seconds=6)
    assert await store.get("brief") is None
    assert await store.get("short") is not None
    clock.advance(seconds=55)
    assert await store.get("short") is None
    assert [s.session_id if s else None for s in await store.get_many(["short", "long", "brief"])] == [
        None,
        "long",
        None,
    ]
    assert [s.session_id async for s in store.scan()] == ["long"]
    assert [s.session_id for s in await store.find_by_user_id("ann")] == ["long"]
    assert await rows(db, SESSIONS) == 3  # hidden, not yet purged
    await store.put(pb2.Session(session_id="short", user_id="ann"))  # a put starts a new life
    assert [s.session_id for s in await store.find_by_user_id("ann")] == ["long", "short"]


async def test_expiry_on_a_sorted_store_and_an_encrypted_one(
    db: prism_runtime.Database, styled_expiry: Any, clock: Clock
) -> None:
    pb2, prism_module = styled_expiry
    reminders = prism_module.ReminderStore(db)
    await reminders.put_many(pb2.Reminder(owner="amy", due_ms=d) for d in range(4))
    await reminders.put(pb2.Reminder(owner="amy", due_ms=9), ttl=timedelta(days=3))
    contacts = prism_module.ContactStore(db)
    await contacts.put(pb2.Contact(contact_id="c1", country="NZ", email="p@example.com"))
    clock.advance(days=1, seconds=1)
    assert [r.due_ms async for r in reminders.scan("amy")] == [9]
    assert await reminders.get("amy", 0) is None
    assert await reminders.get_many([("amy", 1), ("amy", 9)]) == [None, pb2.Reminder(owner="amy", due_ms=9)]
    assert await contacts.get("c1") is None
    assert await contacts.find_by_email("p@example.com") == []
    assert await contacts.find_by_country("NZ") == []


async def test_a_ttl_must_be_positive_and_needs_the_option(db: prism_runtime.Database, expiry: Any) -> None:
    pb2, prism_module = expiry
    with pytest.raises(ValueError, match="ttl must be positive"):
        await prism_module.SessionStore(db).put(pb2.Session(session_id="s"), ttl=timedelta(0))
    flags: Any = prism_module.FlagStore(db)  # no (prism.ttl_seconds): its put has no ttl parameter
    with pytest.raises(TypeError, match="ttl"):
        await flags.put(pb2.Flag(flag_id=1), ttl=timedelta(seconds=1))
    with pytest.raises(TypeError, match=r"has no \(prism\.ttl_seconds\)"):
        await flags._put_expiring([pb2.Flag(flag_id=1)], timedelta(seconds=1))


async def test_items_expire_by_the_wall_clock(db: prism_runtime.Database, styled_expiry: Any) -> None:
    pb2, prism_module = styled_expiry
    store = prism_module.SessionStore(db)
    await store.put(pb2.Session(session_id="s", user_id="ann"), ttl=timedelta(milliseconds=300))
    await store.put(pb2.Session(session_id="t", user_id="ann"))
    await asyncio.sleep(0.6)
    assert await store.get("s") is None
    assert [s.session_id for s in await store.find_by_user_id("ann")] == ["t"]


async def test_a_put_purges_expired_rows_in_the_background(
    db: prism_runtime.Database, styled_expiry: Any, clock: Clock
) -> None:
    pb2, prism_module = styled_expiry
    await prism_module.SessionStore(db).put_many(pb2.Session(session_id=f"s{i}") for i in range(5))
    clock.advance(minutes=2)
    # A new store has purged nothing yet: its first put starts a purge without waiting for it.
    await prism_module.SessionStore(db).put(pb2.Session(session_id="fresh"))
    for _ in range(100):  # bounded: 2 s
        if await rows(db, SESSIONS) == 1:
            break
        await asyncio.sleep(0.02)
    assert await rows(db, SESSIONS) == 1


async def test_purge_deletes_in_bounded_batches(
    db: prism_runtime.Database, expiry: Any, clock: Clock
) -> None:
    pb2, prism_module = expiry
    await prism_module.SessionStore(db).put_many(pb2.Session(session_id=f"s{i:03d}") for i in range(25))
    await prism_module.SessionStore(db).put(pb2.Session(session_id="kept"), ttl=timedelta(hours=1))
    clock.advance(minutes=2)
    driver: Any = db.backend
    assert await sql_keyvalue.purge_expired_rows(driver, SESSIONS, batch=10) == 25
    assert await rows(db, SESSIONS) == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_provision_purge_expired_prints_counts(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path, expiry: Any, backend: str
) -> None:
    pb2, prism_module = expiry
    url = await url_for(request, backend, tmp_path)
    try:
        async with provisioned(url, generated) as db:
            store = prism_module.SessionStore(db)
            await store.put_many(
                [pb2.Session(session_id=f"s{i}") for i in range(3)], ttl=timedelta(milliseconds=800)
            )
            await store.put(pb2.Session(session_id="kept"))
        await asyncio.sleep(1.0)
        run = await asyncio.to_thread(prism, "provision", generated, "--url", url, "--purge-expired")
        assert run.returncode == 0, run.stderr
        assert f"{backend}: purged 3 expired item(s) from {SESSIONS}" in run.stdout.splitlines()
        async with prism_runtime.connect(url) as db:
            assert await rows(db, SESSIONS) == 1
    finally:
        if backend == "postgres":
            await drop_schema(url)


def test_the_plan_shows_the_ttl(tmp_path: Path) -> None:
    body = (
        'syntax = "proto3";\npackage acme.ttlplan.v1;\nimport "prism/options.proto";\n'
        'message Session {\n  option (prism.access_pattern) = "key_value";\n'
        '  option (prism.ttl_seconds) = "86400";\n  string id = 1 [(prism.key) = true];\n}\n'
    )
    proto = write_proto(tmp_path / "src", "acme/ttlplan/v1/plan.proto", body)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode == 0, run.stderr
    (entity,) = json.loads((tmp_path / "out" / "prism.plan.json").read_text())["entities"]
    assert entity["settings"] == {"table": "acme_ttlplan_v1_session", "ttl_seconds": 86400}
    reason = (
        "ttl 86400 s (1 day): expired items are never read; they are purged in batches in the background and "
        "by prism provision --purge-expired"
    )
    assert reason in entity["rationale"]
    shown = prism("plan", tmp_path / "src")
    assert shown.returncode == 0, shown.stderr
    assert "table, items expire after 86400s" in shown.stdout
    assert f"  - {reason}" in shown.stdout


def test_check_flags_a_ttl_with_retention_days(tmp_path: Path) -> None:
    body = (
        'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.ttl_seconds) = "60";\n'
        '  option (prism.retention_days) = "30";\n  string id = 1 [(prism.key) = true];\n}'
    )
    run = prism("check", write_schema(tmp_path / "proto", body), "--format", "json")
    assert run.findings() == [("LINT_TTL_WITH_RETENTION", "acme/app/v1/app.proto:8:3")]
    assert run.returncode == 1


def test_migrating_to_a_ttl_adds_the_expiry_column_and_its_index(tmp_path: Path) -> None:
    before = (
        'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.namespace) = "m";\n'
    )
    after = before + '  option (prism.ttl_seconds) = "60";\n'
    field = "  string id = 1 [(prism.key) = true];\n}"
    old, new = (
        compile_image(write_schema(tmp_path / n, b + field)).schema()
        for n, b in (("a", before), ("b", after))
    )
    plan = plan_migration(old, new)
    assert render(plan.steps, "postgres", "t").splitlines()[3:] == [
        "-- add column m.prism_expires_at",
        'ALTER TABLE IF EXISTS "m" ADD COLUMN IF NOT EXISTS "prism_expires_at" BIGINT;',
        "",
        "-- create index on m.prism_expires_at",
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "m__prism_expires_at__idx" ON "m"("prism_expires_at");',
    ]
    removed = plan_migration(new, old)
    assert removed.withheld == (
        "m.prism_expires_at: the expiry column of (prism.ttl_seconds) was removed; --allow-destructive writes the "
        "expand step now and the DROP COLUMN contract step for later",
    )


async def test_a_migrating_namespace_keeps_expiries_and_finders_on_both_sides(
    tmp_path: Path, generated: Path, postgres_dsn: str, expiry: Any, clock: Clock
) -> None:
    pb2, prism_module = expiry
    source = f"sqlite:///{tmp_path / 'source.db'}"
    target = await new_schema(postgres_dsn)
    async with provisioned(target, generated):
        pass
    contacts = "prismtest_expiry_v1_contact"
    moving = {"source": "old", "target": "new", "phase": "shadow_read", "phase_poll_seconds": 0.1}
    config = tmp_path / "prism.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backends": {"sqlite": f"sqlite:///{tmp_path / 'default.db'}", "old": source, "new": target},
                "namespaces": {SESSIONS: "old", contacts: "old"},
                "migrations": {SESSIONS: moving, contacts: moving},
            }
        )
    )
    try:
        async with prism_runtime.connect(config=config) as db:
            sessions, people = prism_module.SessionStore(db), prism_module.ContactStore(db)
            await sessions.put_many(pb2.Session(session_id=f"s{i}", user_id="ann") for i in range(3))
            await sessions.put(pb2.Session(session_id="long", user_id="ann"), ttl=timedelta(hours=1))
            await people.put(pb2.Contact(contact_id="c1", country="NZ", email="p@example.com"))
            assert [s.session_id for s in await sessions.find_by_user_id("ann", limit=2)] == ["long", "s0"]
            clock.advance(hours=2)  # past both TTLs (60 s and 3600 s) and the hour of "long"
            assert await sessions.find_by_user_id("ann") == []
            assert await people.get("c1") is None
            clock.advance(hours=-1, minutes=-1)  # back before "long" expires: the others are still gone
            assert [s.session_id for s in await sessions.find_by_user_id("ann")] == ["long"]
        # Each side alone says the same, a minute before and a minute after the hour: the expiries were copied
        # (the contact's as part of its ciphertext row).
        for url in (source, target):
            async with prism_runtime.connect(url) as db:
                assert [s.session_id async for s in prism_module.SessionStore(db).scan()] == ["long"]
                assert await prism_module.ContactStore(db).get("c1") is not None
        clock.advance(minutes=2)
        for url in (source, target):
            async with prism_runtime.connect(url) as db:
                assert [s.session_id async for s in prism_module.SessionStore(db).scan()] == []
                assert await prism_module.ContactStore(db).get("c1") is None
    finally:
        await drop_schema(target)
