"""The KeyValue contract, through freshly generated stores, on every backend that serves it."""

from __future__ import annotations

import importlib
import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
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


def load(module: str) -> ModuleType:
    return importlib.import_module(module)


@pytest.fixture(params=STYLES)
def style(request: pytest.FixtureRequest) -> Iterator[tuple[str, Twins]]:
    """Each client style (tests/styles.py): the same contract, proven on the async and the blocking clients."""
    twins = Twins()
    yield request.param, twins
    twins.close()


@pytest.fixture
def users(generated: Path, style: tuple[str, Twins]) -> tuple[ModuleType, Any]:
    return load("acme.users.v1.users_pb2"), styled(load("acme.users.v1.users_prism"), *style)


@pytest.fixture
def types(generated: Path, style: tuple[str, Twins]) -> tuple[ModuleType, Any]:
    return load("prismtest.types.v1.types_pb2"), styled(load("prismtest.types.v1.types_prism"), *style)


async def test_put_get_overwrite_delete(db: prism_runtime.Database, users: Any) -> None:
    pb2, prism = users
    store = prism.UserProfileStore(db)
    assert await store.get("u1") is None
    await store.put(pb2.UserProfile(user_id="u1", email="a@example.com", display_name="A"))
    got = await store.get("u1")
    assert got == pb2.UserProfile(user_id="u1", email="a@example.com", display_name="A")
    await store.put(pb2.UserProfile(user_id="u1", display_name="B"))
    assert await store.get("u1") == pb2.UserProfile(user_id="u1", display_name="B")
    assert await store.delete("u1") is True
    assert await store.delete("u1") is False
    assert await store.get("u1") is None


async def test_get_many_keeps_order_and_reports_missing(db: prism_runtime.Database, users: Any) -> None:
    pb2, prism = users
    store = prism.UserProfileStore(db)
    await store.put_many(pb2.UserProfile(user_id=f"u{i:04d}") for i in range(1200))
    keys = ["u0005", "nope", "u1199", "u0005", "u0600"]
    got = await store.get_many(keys)
    assert [m.user_id if m else None for m in got] == ["u0005", None, "u1199", "u0005", "u0600"]
    assert len(await store.get_many([f"u{i:04d}" for i in range(1200)])) == 1200
    assert await store.get_many([]) == []


async def test_scan_is_in_key_order_across_pages(db: prism_runtime.Database, users: Any) -> None:
    pb2, prism = users
    store = prism.UserProfileStore(db)
    ids = [f"k{n:03d}" for n in (7, 3, 11, 1, 5, 9, 2)]
    await store.put_many(pb2.UserProfile(user_id=i) for i in ids)
    assert [m.user_id async for m in store.scan(page_size=2)] == sorted(ids)
    assert [m.user_id async for m in store.scan(limit=3, page_size=2)] == sorted(ids)[:3]
    assert [m.user_id async for m in store.scan(after="k005")] == ["k007", "k009", "k011"]
    with pytest.raises(ValueError, match="page_size"):
        [m async for m in store.scan(page_size=0)]


async def test_sorted_map_per_key(db: prism_runtime.Database, generated: Path) -> None:
    pb2, prism = load("prismtest.types.v1.types_pb2"), load("prismtest.types.v1.types_prism")
    store = prism.ReadingStore(db)
    for device in (b"\x00dev", b"dev-b"):
        await store.put_many(pb2.Reading(device=device, seq=s, value=s / 2) for s in (30, -5, 10, 20, 0))
    assert [r.seq async for r in store.scan(b"\x00dev")] == [-5, 0, 10, 20, 30]
    assert [r.seq async for r in store.scan(b"\x00dev", start=0, end=20, page_size=1)] == [0, 10]
    assert [r.seq async for r in store.scan(b"\x00dev", reverse=True, limit=2)] == [30, 20]
    assert [r.seq async for r in store.scan(b"\x00dev", reverse=True, start=10, end=-5)] == [10, 0]
    assert await store.get(b"dev-b", 10) == pb2.Reading(device=b"dev-b", seq=10, value=5.0)
    assert await store.get(b"dev-b", 11) is None
    got = await store.get_many([(b"dev-b", 20), (b"dev-b", 21), (b"\x00dev", -5)])
    assert [r.seq if r else None for r in got] == [20, None, -5]
    assert await store.delete(b"dev-b", 20) is True
    assert await store.delete_all(b"dev-b") == 4
    assert [r async for r in store.scan(b"dev-b")] == []
    assert len([r async for r in store.scan(b"\x00dev")]) == 5


async def test_integer_keys_order_numerically(db: prism_runtime.Database, types: Any) -> None:
    pb2, prism = types
    store = prism.CounterStore(db)
    await store.put_many(pb2.Counter(id=i, hits=2**64 - 1) for i in (10, -3, 2, -100, 0))
    assert [c.id async for c in store.scan()] == [-100, -3, 0, 2, 10]
    assert (await store.get(-3)) == pb2.Counter(id=-3, hits=2**64 - 1)


async def test_unicode_and_empty_values(db: prism_runtime.Database, users: Any) -> None:
    pb2, prism = users
    store = prism.UserProfileStore(db)
    odd = pb2.UserProfile(user_id="ключ-🔑-'\";--\\", display_name="名前 ✓ \n\t", tags=["", "é"])
    await store.put(odd)
    assert await store.get(odd.user_id) == odd
    # An empty key is what protobuf gives an unset key field: refused, not stored (docs/type-mapping.md).
    with pytest.raises(prism_runtime.InvalidKey, match="key field user_id is empty"):
        await store.put(pb2.UserProfile(user_id="", display_name="no key"))


def full_message(pb2: Any) -> Any:
    m = pb2.AllTypes(
        id="all",
        i32=-(2**31),
        i64=-(2**63),
        u32=2**32 - 1,
        u64=2**64 - 1,
        s32=-7,
        s64=-(2**62),
        f32=2**32 - 1,
        f64=2**63 + 12345,
        sf32=-(2**31),
        sf64=2**63 - 1,
        fl=1.5,
        db=-1e308,
        flag=True,
        text="héllo",
        blob=b"\x00\xff\x10",
        color=pb2.COLOR_GREEN,
        maybe_int=0,
        maybe_text="",
        names=["a", "b"],
        ratios=[0.5, math.inf, -math.inf],
        chunks=[b"\x00", b""],
        colors=[1, 2, 77],
        counts={"x": 2**62, "y": -1},
        inner=pb2.Inner(label="in", values=[1, -(2**63)]),
        inners=[pb2.Inner(label="a"), pb2.Inner()],
        choice_inner=pb2.Inner(label="chosen"),
    )
    m.by_id[-4].label = "neg"
    m.at.FromNanoseconds(1_700_000_000_123_456_000)  # Postgres keeps microseconds: see test_postgres.py
    m.took.FromNanoseconds(-1_500_000_001)
    m.wrapped.value = 0
    m.attrs.update({"k": [1, "two", None, True]})
    return m


async def test_every_field_type_round_trips(db: prism_runtime.Database, types: Any) -> None:
    pb2, prism = types
    store = prism.AllTypesStore(db)
    message = full_message(pb2)
    message.color = 99  # an enum number this schema does not know survives too
    await store.put(message)
    assert await store.get("all") == message


async def test_presence_is_kept(db: prism_runtime.Database, types: Any) -> None:
    pb2, prism = types
    store = prism.AllTypesStore(db)
    await store.put(pb2.AllTypes(id="bare"))
    bare = await store.get("bare")
    assert bare is not None
    for name in ("maybe_int", "maybe_text", "inner", "at", "took", "wrapped", "attrs"):
        assert not bare.HasField(name), name
    assert bare.WhichOneof("choice") is None
    await store.put(pb2.AllTypes(id="zeros", maybe_int=0, choice_number=0))
    zeros = await store.get("zeros")
    assert zeros is not None and zeros.HasField("maybe_int") and zeros.WhichOneof("choice") == "choice_number"


async def test_nan_round_trips(db: prism_runtime.Database, types: Any) -> None:
    pb2, prism = types
    store = prism.AllTypesStore(db)
    await store.put(pb2.AllTypes(id="nan", fl=math.nan, db=math.nan, ratios=[math.nan]))
    got = await store.get("nan")
    assert got is not None and math.isnan(got.fl) and math.isnan(got.db) and math.isnan(got.ratios[0])


async def test_use_before_open_is_a_typed_error(users: Any, tmp_path: Path) -> None:
    _, prism = users
    with pytest.raises(prism_runtime.NotOpen, match="acme_users_v1_user_profile"):
        prism.UserProfileStore(prism_runtime.connect(f"sqlite:///{tmp_path / 'x.db'}"))


async def test_missing_directory_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(prism_runtime.BackendUnavailable, match="does not exist"):
        await prism_runtime.connect(f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}").open()


def test_unknown_scheme_names_the_allowed_ones() -> None:
    with pytest.raises(prism_runtime.ConfigError, match=r"allowed: sqlite://, postgresql://"):
        prism_runtime.connect("mysql://root:secret@localhost/db")


async def test_connect_defaults_to_prism_db_and_honours_prism_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, users: Any
) -> None:
    pb2, prism = users
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PRISM_URL", raising=False)
    async with prism_runtime.connect() as db:
        await prism.UserProfileStore(db).put(pb2.UserProfile(user_id="here"))
    assert (tmp_path / "prism.db").exists()
    monkeypatch.setenv("PRISM_URL", f"sqlite:///{tmp_path / 'env.db'}")
    async with prism_runtime.connect() as db:
        await prism.UserProfileStore(db).put(pb2.UserProfile(user_id="there"))
    assert (tmp_path / "env.db").exists()


async def test_event_loop_keeps_running_during_a_slow_write(db: prism_runtime.Database, users: Any) -> None:
    import asyncio

    pb2, prism = users
    store = prism.UserProfileStore(db)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await store.put_many(pb2.UserProfile(user_id=f"bulk{i}", tags=["t"] * 20) for i in range(20000))
    task.cancel()
    assert ticks > 10  # the loop ran other tasks while SQLite worked on its own thread


async def test_sqlite_table_is_readable_by_a_person(tmp_path: Path, users: Any) -> None:
    import sqlite3

    pb2, prism = users
    path = tmp_path / "readable.db"
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        user = pb2.UserProfile(user_id="u1", display_name="Ada", tier=pb2.TIER_PRO, tags=["x"], age=36)
        user.created_at.FromSeconds(1_700_000_000)
        await prism.UserProfileStore(db).put(user)
    conn = sqlite3.connect(path)
    row = conn.execute(
        "SELECT user_id, display_name, tier, typeof(tier), created_at, tags, age FROM acme_users_v1_user_profile"
    ).fetchone()
    conn.close()
    assert row == ("u1", "Ada", 2, "integer", "2023-11-14T22:13:20.000000000Z", '["x"]', 36)


class PageCounter:
    """Wraps a store's backend to record the size of every page it is asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.limits: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def scan_page(self, prefix: Any, **kwargs: Any) -> Any:
        self.limits.append(kwargs["limit"])
        return await self.inner.scan_page(prefix, **kwargs)


async def test_scan_pages_are_bounded_by_bytes(db: prism_runtime.Database, users: Any) -> None:
    pb2, prism = users
    store = prism.UserProfileStore(db)
    await store.put_many(pb2.UserProfile(user_id=f"b{i:03d}", display_name="x" * 1000) for i in range(100))
    counter = PageCounter(store._backend)
    store._backend = counter
    got = [m.user_id async for m in store.scan(page_size=50, page_bytes=10_000)]
    assert got == [f"b{i:03d}" for i in range(100)]
    assert counter.limits[0] == 50 and max(counter.limits[1:]) <= 10


# Below and above the Postgres COPY threshold, and over more than one piece of asyncpg's COPY data.
@pytest.mark.parametrize("count", [3, 600, 4500])
async def test_put_many_overwrites_and_last_write_wins(
    db: prism_runtime.Database, users: Any, count: int
) -> None:
    pb2, prism = users
    store = prism.UserProfileStore(db)
    await store.put_many(pb2.UserProfile(user_id=f"w{i:04d}", display_name="old") for i in range(count))
    batch = [pb2.UserProfile(user_id=f"w{i:04d}", display_name="new") for i in range(count)]
    batch.append(pb2.UserProfile(user_id="w0000", display_name="newest"))
    await store.put_many(batch)
    got = await store.get_many([f"w{i:04d}" for i in range(count)])
    assert [m.display_name if m else None for m in got] == ["newest"] + ["new"] * (count - 1)


async def test_a_batch_failing_at_its_last_row_stores_none_of_it(
    db: prism_runtime.Database, users: Any
) -> None:
    from prism_runtime.errors import BackendError

    pb2, prism = users
    store = prism.UserProfileStore(db)
    batch = [pb2.UserProfile(user_id=f"c{i:04d}", display_name="x") for i in range(4500)]
    # Postgres text cannot hold U+0000: the COPY fails at the last row, after the first ones were sent.
    batch[-1].display_name = "nul\x00"
    if db.url.kind == "sqlite":
        await store.put_many(batch)  # SQLite stores it
        assert (await store.get("c4499")) == batch[-1]
        return
    with pytest.raises(BackendError, match="U\\+0000"):
        await store.put_many(batch)
    assert await store.get_many(["c0000", "c2500", "c4499"]) == [None, None, None]
    await store.put(pb2.UserProfile(user_id="after"))  # the pooled connection is usable again
    assert (await store.get("after")) is not None


@pytest.mark.parametrize("bad", ["in a statement of many rows", "in the rows after them"])
async def test_a_sqlite_batch_failing_at_one_row_stores_none_of_it(
    tmp_path: Path, users: Any, bad: str
) -> None:
    """SQLite upserts a batch many rows per statement, then the rest one by one: all in one transaction."""
    from prism_runtime.backends.sqlite import MAX_VARIABLES
    from prism_runtime.errors import BackendError

    pb2, prism = users
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'atomic.db'}") as db:
        store = prism.UserProfileStore(db)
        await store.put(pb2.UserProfile(user_id="before"))
        kv = store._backend
        per = MAX_VARIABLES // len(kv.sql.columns)
        count = per * 5 + per // 2  # five statements of `per` rows, then the rest by executemany
        rows = [list(kv.codec.encode(pb2.UserProfile(user_id=f"a{i:04d}"))) for i in range(count)]
        rows[per * 4 + 1 if bad.startswith("in a") else count - 1][1] = object()  # no SQLite type binds it
        with pytest.raises(BackendError, match=r"InterfaceError|ProgrammingError"):
            await kv.driver.upsert_many(kv.sql, rows, namespace=kv.spec.namespace)
        keys = [f"a{i:04d}" for i in (0, per, per * 4, count - 2)]
        assert await store.get_many(keys) == [None] * len(keys)
        await store.put_many(pb2.UserProfile(user_id=f"a{i:04d}") for i in range(count))  # usable again
        assert len([m async for m in store.scan()]) == count + 1


@pytest.mark.parametrize("count", [3, 600, 4500])
async def test_put_many_of_plain_messages_keeps_the_last_write_of_a_key(
    db: prism_runtime.Database, types: Any, count: int
) -> None:
    pb2, prism = types
    store = prism.CounterStore(db)
    # Keys repeat across the batch: the last write of each wins.
    batch = [pb2.Counter(id=i % (count // 3 or 1) - 7, hits=i) for i in range(count)]
    await store.put_many(batch)
    expected = {m.id: m.hits for m in batch}
    got = await store.get_many(sorted(expected))
    assert {m.id: m.hits for m in got if m} == expected
    assert len([m async for m in store.scan()]) == len(expected)
