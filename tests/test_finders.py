"""Typed finders on (prism.index) fields: keyset-paged in key order, on every SQL backend that serves KeyValue."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import BACKENDS, fresh_database
from styles import STYLES, Twins, styled

import prism_runtime


@pytest.fixture(params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path
) -> AsyncIterator[prism_runtime.Database]:
    async with fresh_database(request, tmp_path, generated) as handle:
        yield handle


@pytest.fixture(params=STYLES)
def expiry(request: pytest.FixtureRequest, generated: Path) -> Iterator[tuple[Any, Any]]:
    """The generated module as each client style uses it (tests/styles.py)."""
    twins = Twins()
    yield (
        importlib.import_module("prismtest.expiry.v1.expiry_pb2"),
        styled(importlib.import_module("prismtest.expiry.v1.expiry_prism"), request.param, twins),
    )
    twins.close()


async def test_finder_pages_in_key_order(db: prism_runtime.Database, expiry: Any) -> None:
    pb2, prism = expiry
    store = prism.SessionStore(db)
    # Put in an order that is not the key order; one user owns the odd sessions.
    ids = [f"s{i:03d}" for i in range(25)][::-1]
    await store.put_many(pb2.Session(session_id=s, user_id="ann" if int(s[1:]) % 2 else "bob") for s in ids)
    found = await store.find_by_user_id("ann")
    assert [s.session_id for s in found] == [f"s{i:03d}" for i in range(1, 25, 2)]
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await store.find_by_user_id("ann", limit=5, after=after)
        if not page:
            break
        pages.append([s.session_id for s in page])
        after = page[-1].session_id
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [s for page in pages for s in page] == [s.session_id for s in found]
    assert await store.find_by_user_id("nobody") == []
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await store.find_by_user_id("ann", limit=0)
    untyped: Any = store
    with pytest.raises(prism_runtime.WrongType, match="find_by_user_id takes str, got int"):
        await untyped.find_by_user_id(7)
    with pytest.raises(prism_runtime.WrongType, match="find_by_device takes int, got bool"):
        await untyped.find_by_device(True)


async def test_finders_take_the_field_type(db: prism_runtime.Database, expiry: Any) -> None:
    pb2, prism = expiry
    sessions = prism.SessionStore(db)
    await sessions.put_many(
        [
            pb2.Session(session_id="a", channel=pb2.CHANNEL_SMS, device=7),
            pb2.Session(session_id="b", channel=pb2.CHANNEL_EMAIL, device=-7),
            pb2.Session(session_id="c", channel=pb2.CHANNEL_SMS, device=2**62),
        ]
    )
    assert [s.session_id for s in await sessions.find_by_channel(pb2.CHANNEL_SMS)] == ["a", "c"]
    assert [s.session_id for s in await sessions.find_by_device(-7)] == ["b"]
    assert [s.session_id for s in await sessions.find_by_device(2**62)] == ["c"]
    flags = prism.FlagStore(db)
    await flags.put_many(
        [
            pb2.Flag(flag_id=3, enabled=True, quota=2**64 - 1, owner="ops"),
            pb2.Flag(flag_id=1, enabled=True, weight={"value": 5}),
            pb2.Flag(flag_id=2, enabled=False, quota=1),
        ]
    )
    assert [f.flag_id for f in await flags.find_by_enabled(True)] == [1, 3]
    assert [f.flag_id for f in await flags.find_by_enabled(False)] == [2]
    assert [f.flag_id for f in await flags.find_by_quota(2**64 - 1)] == [3]
    assert [f.flag_id for f in await flags.find_by_owner("ops")] == [3]
    assert [f.flag_id for f in await flags.find_by_weight(5)] == [1]
    assert [f.flag_id for f in await flags.find_by_enabled(True, after=1)] == [3]


async def test_sorted_store_finder_continues_after_a_full_key(
    db: prism_runtime.Database, expiry: Any
) -> None:
    pb2, prism = expiry
    store = prism.ReminderStore(db)
    await store.put_many(
        pb2.Reminder(owner=o, due_ms=d, channel=pb2.CHANNEL_EMAIL if d % 2 else pb2.CHANNEL_SMS)
        for o in ("zoe", "amy")
        for d in range(1, 6)
    )
    keys = [(r.owner, r.due_ms) for r in await store.find_by_channel(pb2.CHANNEL_EMAIL)]
    assert keys == [("amy", 1), ("amy", 3), ("amy", 5), ("zoe", 1), ("zoe", 3), ("zoe", 5)]
    page = await store.find_by_channel(pb2.CHANNEL_EMAIL, limit=2, after=("amy", 3))
    assert [(r.owner, r.due_ms) for r in page] == [("amy", 5), ("zoe", 1)]


async def test_finder_on_an_entity_with_encrypted_fields_decrypts_and_skips_forgotten(
    db: prism_runtime.Database, expiry: Any
) -> None:
    pb2, prism = expiry
    store = prism.ContactStore(db)
    await store.put_many(
        pb2.Contact(contact_id=f"c{i}", country="NZ", email=f"p{i}@example.com") for i in range(6)
    )
    found = await store.find_by_country("NZ", limit=3)
    assert [(c.contact_id, c.email) for c in found] == [(f"c{i}", f"p{i}@example.com") for i in range(3)]
    # A forgotten subject's rows are skipped; a page short of them is filled from the rows after it.
    for subject in ("c0", "c1", "c2"):
        await prism.forget(db, subject)
    assert [c.contact_id for c in await store.find_by_country("NZ", limit=2)] == ["c3", "c4"]
    assert [c.contact_id for c in await store.find_by_email("p4@example.com")] == ["c4"]
