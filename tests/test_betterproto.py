"""messages=betterproto: one schema generated in both styles stores the same rows, on SQLite and Postgres.

The betterproto tree is imported here; the protobuf-style client of the same schema (the same proto package,
as in a service that moves from one style to the other) runs in tests/betterproto_peer.py, in its own process.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import inspect
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import betterproto
import pytest
from backends import BACKENDS, drop_schema, url_for
from conftest import ROOT, run_protoc, write_proto
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

import prism_runtime
import prism_runtime.betterproto
from protoc_gen_prism.protoc_runner import generate, plugin_args, protoc_command
from protoc_gen_prism.pytest_plugin import provisioned

SCHEMA = ROOT / "tests" / "protos_betterproto"
MODULE = "bpstyle.v1.store"
PEER = Path(__file__).resolve().parent / "betterproto_peer.py"
UTC = datetime.UTC


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """Generate the schema in both styles, each into its own tree; put the betterproto one on sys.path."""
    protobuf = tmp_path_factory.mktemp("protobuf_style")
    betterproto = tmp_path_factory.mktemp("betterproto_style")
    for out, parameter in ((protobuf, ""), (betterproto, "messages=betterproto")):
        done = generate(SCHEMA, out, parameter=parameter)
        assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(betterproto))
    importlib.invalidate_caches()
    yield protobuf, betterproto
    sys.path.remove(str(betterproto))
    for name in [m for m in sys.modules if m == "bpstyle" or m.startswith("bpstyle.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def bp(trees: tuple[Path, Path]) -> ModuleType:
    """The betterproto dataclasses of the schema."""
    return importlib.import_module("bpstyle.v1")


@pytest.fixture(scope="module")
def pb2(trees: tuple[Path, Path]) -> ModuleType:
    """The *_pb2 classes the stores keep (generated in the betterproto tree too)."""
    return importlib.import_module(f"{MODULE}_pb2")


@pytest.fixture(scope="module")
def prism(trees: tuple[Path, Path]) -> ModuleType:
    """The betterproto-style client."""
    return importlib.import_module(f"{MODULE}_prism")


@pytest.fixture(params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, trees: tuple[Path, Path]
) -> AsyncIterator[tuple[prism_runtime.Database, str]]:
    """An empty, provisioned database on each SQL backend, and its URL for the peer process."""
    url = await url_for(request, request.param, tmp_path)
    try:
        async with provisioned(url, trees[1]) as db:
            yield db, url
    finally:
        if request.param == "postgres":
            await drop_schema(url)


def peer(trees: tuple[Path, Path], url: str, commands: list[dict[str, Any]]) -> list[Any]:
    """Run `commands` on the protobuf-style client in its own process; return its reads."""
    done = subprocess.run(
        [sys.executable, str(PEER), str(trees[0]), url, MODULE],
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[Any] = json.loads(done.stdout)
    return results


def encoded(message: Any) -> str:
    """Return the hex of a betterproto message's encoding, as the peer takes it."""
    return bytes(message).hex()


def profile(bp: ModuleType, user_id: str) -> Any:
    return bp.Profile(
        user_id=user_id,
        email=f"{user_id}@example.com",
        display_name="Ann Lee",
        tags=["a", "b"],
        counts={"x": 2, "y": -(2**40)},
        age=0,
        avatar=b"\x00\xff",
        ratio=0.25,
        scores=[1, -5],
        active=True,
        weight=1.5,
        visits=2**63,
    )


def account(bp: ModuleType, account_id: str) -> Any:
    return bp.Account(
        account_id=account_id,
        owner="Ann Lee",
        home=bp.Address(street="1 Main St", city="Paris"),
        opened=datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
        credit_limit=0,
        tier=bp.Tier.GOLD,
        pager="p-1",
        past=[bp.Address(city="Lyon"), bp.Address(street="2 Rue", city="Nice")],
    )


def member(bp: ModuleType, member_id: str) -> Any:
    return bp.Member(
        member_id=member_id,
        home=bp.Address(street="1 Main St", city="Paris"),
        past=[bp.Address(city="Lyon"), bp.Address()],
        tier=bp.Tier.GOLD,
        badges=[bp.Tier.GOLD, bp.Tier.UNSPECIFIED],
        joined=datetime.datetime(1969, 12, 31, 23, 59, 58, 999999, tzinfo=UTC),
        places={"home": bp.Address(city="Paris"), "none": bp.Address()},
        levels={"a": bp.Tier.GOLD, "b": bp.Tier.try_value(7)},
    )


def archive(bp: ModuleType, archive_id: str) -> Any:
    return bp.Archive(
        archive_id=archive_id,
        places={"home": bp.Address(street="1 Main St", city="Paris"), "empty": bp.Address()},
        kept=datetime.timedelta(days=3, microseconds=5),
    )


def reading(bp: ModuleType, sensor: str, at: int) -> Any:
    return bp.Reading(sensor=sensor, at=at, value=at / 3)


def click(bp: ModuleType, user_id: str, minute: int) -> Any:
    return bp.Click(
        user_id=user_id, at=datetime.datetime(2024, 1, 1, 0, minute, tzinfo=UTC), page=f"/p{minute}"
    )


async def test_betterproto_writes_read_back_identically_in_the_protobuf_style(
    database: tuple[prism_runtime.Database, str], trees: tuple[Path, Path], bp: Any, pb2: Any, prism: Any
) -> None:
    db, url = database
    written = {
        "Profile": profile(bp, "u1"),
        "Account": account(bp, "a1"),
        "Member": member(bp, "m1"),
        "Archive": archive(bp, "r1"),
        "Reading": reading(bp, "s1", 7),
    }
    await prism.ProfileStore(db).put(written["Profile"])
    await prism.AccountStore(db).put(written["Account"])
    await prism.MemberStore(db).put(written["Member"])
    await prism.ArchiveStore(db).put(written["Archive"])
    await prism.ReadingStore(db).put(written["Reading"])
    await prism.ClickSeries(db).append_many([click(bp, "u1", 2), click(bp, "u1", 1)])
    got = peer(
        trees,
        url,
        [
            {"op": "get", "store": "ProfileStore", "args": ["u1"]},
            {"op": "get", "store": "AccountStore", "args": ["a1"]},
            {"op": "get", "store": "MemberStore", "args": ["m1"]},
            {"op": "get", "store": "ArchiveStore", "args": ["r1"]},
            {"op": "get", "store": "ReadingStore", "args": ["s1", 7]},
            {"op": "query", "store": "ClickSeries", "args": ["u1"]},
        ],
    )
    for name, hex_message in zip(written, got[:5], strict=True):
        stored = getattr(pb2, name).FromString(bytes.fromhex(hex_message))
        assert stored == getattr(pb2, name).FromString(bytes(written[name])), name
    assert [pb2.Click.FromString(bytes.fromhex(h)).page for h in got[5]] == ["/p1", "/p2"]


async def test_protobuf_writes_read_back_identically_in_the_betterproto_style(
    database: tuple[prism_runtime.Database, str], trees: tuple[Path, Path], bp: Any, prism: Any
) -> None:
    db, url = database
    peer(
        trees,
        url,
        [
            {"op": "put", "store": "ProfileStore", "message": "Profile", "data": encoded(profile(bp, "u2"))},
            {"op": "put", "store": "AccountStore", "message": "Account", "data": encoded(account(bp, "a2"))},
            {"op": "put", "store": "MemberStore", "message": "Member", "data": encoded(member(bp, "m2"))},
            {"op": "put", "store": "ArchiveStore", "message": "Archive", "data": encoded(archive(bp, "r2"))},
            {
                "op": "put",
                "store": "ReadingStore",
                "message": "Reading",
                "data": encoded(reading(bp, "s2", 9)),
            },
            {"op": "append", "store": "ClickSeries", "message": "Click", "data": encoded(click(bp, "u2", 3))},
        ],
    )
    assert await prism.ProfileStore(db).get("u2") == profile(bp, "u2")
    assert await prism.AccountStore(db).get("a2") == account(bp, "a2")
    assert await prism.MemberStore(db).get("m2") == member(bp, "m2")
    assert await prism.ArchiveStore(db).get("r2") == archive(bp, "r2")
    assert await prism.ReadingStore(db).get("s2", 9) == reading(bp, "s2", 9)
    assert [c async for c in prism.ClickSeries(db).query("u2")] == [click(bp, "u2", 3)]
    # The searchable encrypted field finds the row the other style wrote.
    assert await prism.ProfileStore(db).find_by_email("u2@example.com") == [profile(bp, "u2")]


async def test_both_styles_write_the_same_row(
    database: tuple[prism_runtime.Database, str], trees: tuple[Path, Path], bp: Any, prism: Any
) -> None:
    db, url = database
    await prism.ProfileStore(db).put(profile(bp, "same"))
    await prism.AccountStore(db).put(account(bp, "same"))
    await prism.MemberStore(db).put(member(bp, "same"))
    await prism.ArchiveStore(db).put(archive(bp, "same"))
    # The peer writes the same messages under other keys: every column but the key and the ciphertexts (a
    # fresh nonce each time) must be equal.
    other_profile, other_account, other_member = profile(bp, "same"), account(bp, "same"), member(bp, "same")
    other_profile.user_id, other_account.account_id, other_member.member_id = "other", "other", "other"
    other_archive = archive(bp, "other")
    peer(
        trees,
        url,
        [
            {"op": "put", "store": "ProfileStore", "message": "Profile", "data": encoded(other_profile)},
            {"op": "put", "store": "AccountStore", "message": "Account", "data": encoded(other_account)},
            {"op": "put", "store": "MemberStore", "message": "Member", "data": encoded(other_member)},
            {"op": "put", "store": "ArchiveStore", "message": "Archive", "data": encoded(other_archive)},
        ],
    )
    for table, key, encrypted in (
        ("bpstyle_profiles", "user_id", {"email"}),
        ("bpstyle_accounts", "account_id", {"owner"}),
        ("bpstyle_members", "member_id", set()),
        ("bpstyle_archives", "archive_id", set()),
    ):
        rows = await raw_rows(url, table, key, ["same", "other"])
        assert set(rows) == {"same", "other"}
        ours, theirs = rows["same"], rows["other"]
        assert set(ours) == set(theirs)
        for column in set(ours) - {key} - encrypted:
            assert comparable(ours[column]) == comparable(theirs[column]), (table, column)


def comparable(value: Any) -> Any:
    """Return a column value to compare: JSON text parsed (a map's entries come in no fixed order)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        return json.loads(value)
    return value


async def raw_rows(url: str, table: str, key: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Return the stored rows of `keys` by key, column by column, read with the database's own driver."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.row_factory = sqlite3.Row
            found = conn.execute(f'SELECT * FROM "{table}" WHERE "{key}" IN (?, ?)', keys).fetchall()
            return {row[key]: dict(row) for row in found}
    conn = await asyncpg.connect(url)
    try:
        records = await conn.fetch(f'SELECT * FROM "{table}" WHERE "{key}" = ANY($1::text[])', keys)
        return {r[key]: dict(r) for r in records}
    finally:
        await conn.close()


async def test_betterproto_store_api(
    database: tuple[prism_runtime.Database, str], bp: Any, prism: Any
) -> None:
    db, _ = database
    profiles = prism.ProfileStore(db)
    await profiles.put_many([profile(bp, f"u{i}") for i in range(5)])
    assert [p.user_id async for p in profiles.scan(after="u1", page_size=2)] == ["u2", "u3", "u4"]
    assert await profiles.get_many(["u3", "nope"]) == [profile(bp, "u3"), None]
    assert await profiles.delete("u3") is True
    assert await profiles.get("u3") is None
    readings = prism.ReadingStore(db)
    await readings.put_many([reading(bp, "s", at) for at in (3, 1, 2)])
    assert [r.at async for r in readings.scan("s", start=2)] == [2, 3]
    assert [r.at async for r in readings.scan("s", reverse=True, limit=2)] == [3, 2]
    assert await readings.get_many([("s", 1), ("s", 5)]) == [reading(bp, "s", 1), None]
    assert await readings.delete_all("s") == 3
    clicks = prism.ClickSeries(db)
    async with clicks.tail("t") as tail:
        await clicks.append(click(bp, "t", 4))
        assert await anext(aiter(tail)) == click(bp, "t", 4)


async def test_blocking_betterproto_stores_round_trip(
    database: tuple[prism_runtime.Database, str], trees: tuple[Path, Path], bp: Any, pb2: Any, prism: Any
) -> None:
    db, url = database

    def blocking() -> None:
        with prism_runtime.connect_sync(url) as sync_db:
            profiles = prism.ProfileSyncStore(sync_db)
            profiles.put_many([profile(bp, f"u{i}") for i in range(4)])
            profiles.put(profile(bp, "u9"))
            assert profiles.get("u2") == profile(bp, "u2")
            assert type(profiles.get("u2")) is bp.Profile
            assert profiles.get_many(["u3", "nope"]) == [profile(bp, "u3"), None]
            assert [p.user_id for p in profiles.scan(after="u1", page_size=2)] == ["u2", "u3", "u9"]
            assert profiles.find_by_email("u1@example.com") == [profile(bp, "u1")]
            assert profiles.delete("u3") is True
            assert profiles.get("u3") is None
            with pytest.raises(prism_runtime.WrongType):
                profiles.put(pb2.Profile(user_id="u5"))
            readings = prism.ReadingSyncStore(sync_db)
            readings.put_many([reading(bp, "s", at) for at in (3, 1, 2)])
            assert [r.at for r in readings.scan("s", reverse=True, limit=2)] == [3, 2]
            assert readings.get("s", 1) == reading(bp, "s", 1)
            clicks = prism.ClickSyncSeries(sync_db)
            clicks.append_many([click(bp, "u1", 2), click(bp, "u1", 1)])
            assert list(clicks.query("u1")) == [click(bp, "u1", 1), click(bp, "u1", 2)]
            knows = prism.KnowsSyncGraph(sync_db)
            knows.add_nodes([person(bp, f"p{i}") for i in range(1, 4)])
            knows.add_edges(
                [
                    bp.Knows(from_id="p1", to_id="p2", strength=3, tier=bp.Tier.GOLD),
                    bp.Knows(from_id="p2", to_id="p3", strength=1),
                ]
            )
            assert knows.get_node("p1") == person(bp, "p1")
            assert knows.out_edges("p1") == [
                bp.Knows(from_id="p1", to_id="p2", strength=3, tier=bp.Tier.GOLD)
            ]
            assert knows.shortest_path("p1", "p3", 3) == ["p1", "p2", "p3"]
            assert knows.neighbors("p2", "both", node_filter={"tier": bp.Tier.GOLD}) == ["p1"]
            visited = prism.VisitedSyncEdges(sync_db)
            visited.add_edge(bp.Visited(person_id="p1", place_id="rome", times=4))
            assert visited.get_edge("p1", "rome") == bp.Visited(person_id="p1", place_id="rome", times=4)
            assert prism.PersonSyncNodes(sync_db).get_node("p2") == person(bp, "p2")

    await asyncio.to_thread(blocking)
    # The async stores of this style, and the protobuf style's in its own process, read what it wrote.
    assert await prism.ProfileStore(db).get("u1") == profile(bp, "u1")
    assert await prism.KnowsGraph(db).get_edge("p2", "p3") == bp.Knows(from_id="p2", to_id="p3", strength=1)
    got = peer(
        trees,
        url,
        [
            {"op": "get", "store": "ProfileStore", "args": ["u2"]},
            {"op": "get", "store": "ReadingStore", "args": ["s", 3]},
            {"op": "query", "store": "ClickSeries", "args": ["u1"]},
            {"op": "get_edge", "store": "KnowsGraph", "args": ["p1", "p2"]},
            {"op": "get_edge", "store": "VisitedEdges", "args": ["p1", "rome"]},
        ],
    )
    assert pb2.Profile.FromString(bytes.fromhex(got[0])) == pb2.Profile.FromString(bytes(profile(bp, "u2")))
    assert pb2.Reading.FromString(bytes.fromhex(got[1])) == pb2.Reading.FromString(bytes(reading(bp, "s", 3)))
    assert [pb2.Click.FromString(bytes.fromhex(h)).page for h in got[2]] == ["/p1", "/p2"]
    assert pb2.Knows.FromString(bytes.fromhex(got[3])) == pb2.Knows(
        from_id="p1", to_id="p2", strength=3, tier=1
    )
    assert pb2.Visited.FromString(bytes.fromhex(got[4])) == pb2.Visited(
        person_id="p1", place_id="rome", times=4
    )


BLOCKING_PAIRS = [
    (prism_runtime.betterproto.KeyValueStore, prism_runtime.betterproto.SyncKeyValueStore),
    (prism_runtime.betterproto.SortedKeyValueStore, prism_runtime.betterproto.SyncSortedKeyValueStore),
    (prism_runtime.betterproto.TimeSeries, prism_runtime.betterproto.SyncTimeSeries),
    (prism_runtime.betterproto.NodeStore, prism_runtime.betterproto.SyncNodeStore),
    (prism_runtime.betterproto.EdgeStore, prism_runtime.betterproto.SyncEdgeStore),
    (prism_runtime.betterproto.Graph, prism_runtime.betterproto.SyncGraph),
]


@pytest.mark.parametrize(("aio", "blocking"), BLOCKING_PAIRS, ids=[b.__name__ for _, b in BLOCKING_PAIRS])
def test_every_betterproto_method_has_a_blocking_twin(aio: type, blocking: type) -> None:
    def methods(cls: type) -> dict[str, inspect.Signature]:
        return {name: inspect.signature(value) for name, value in inspect.getmembers(cls, inspect.isfunction)}

    wanted, have = methods(aio), methods(blocking)
    # The generated methods' helpers too (_find_by, _put_expiring, _find_by_index, _after).
    for name, signature in wanted.items():
        if name.startswith("__") or name == "_out_or_none":
            continue
        assert name in have, name
        assert list(signature.parameters) == list(have[name].parameters), name
        assert not inspect.iscoroutinefunction(have[name]), name
    assert list(inspect.signature(aio.__init__).parameters) == list(
        inspect.signature(blocking.__init__).parameters
    )


async def test_wrong_messages_are_refused_without_their_values(
    database: tuple[prism_runtime.Database, str], bp: Any, pb2: Any, prism: Any
) -> None:
    db, _ = database
    profiles = prism.ProfileStore(db)
    with pytest.raises(prism_runtime.WrongType, match=r"expected a bpstyle\.v1\.Profile betterproto message"):
        await profiles.put(pb2.Profile(user_id="u1"))
    secret = "ann@example.com"
    bad = profile(bp, "u1")
    bad.age = secret  # a str in an int32 field
    with pytest.raises(prism_runtime.WrongType) as refused:
        await profiles.put(bad)
    assert secret not in str(refused.value)
    accounts = prism.AccountStore(db)
    wrong = account(bp, "a1")
    wrong.credit_limit = secret  # the wire path refuses it too
    with pytest.raises(prism_runtime.WrongType) as refused:
        await accounts.put(wrong)
    assert secret not in str(refused.value)


def test_repr_and_str_mask_pii(bp: Any, prism: Any) -> None:
    item = account(bp, "a1")
    item.owner = "Zed Quux"
    item.phone = "+1 415 555 0199"
    for text in (repr(item), str(item), f"{item}", repr(item.home), repr([item])):
        assert "1 Main St" not in text and "2 Rue" not in text, text
    assert "Zed Quux" not in repr(item)  # a name is masked unless mask_in_logs = false
    assert repr(item).startswith("Account(account_id: ")
    assert "Paris" in repr(item)  # fields without pii stay readable
    assert "u1@example.com" not in repr(profile(bp, "u1"))
    assert "u***@example.com" in repr(profile(bp, "u1"))
    assert repr(bp.Reading(sensor="s")) == "Reading(sensor='s')"  # no pii: betterproto's own repr


def test_conversion_paths(bp: Any, pb2: Any, prism: Any) -> None:
    from prism_runtime.betterproto import BetterprotoAdapter

    spec = prism._PROFILE_SPEC
    assert BetterprotoAdapter(spec, bp.Profile, pb2.Profile).by_fields
    assert BetterprotoAdapter(prism._ACCOUNT_SPEC, bp.Account, pb2.Account).by_fields
    assert not BetterprotoAdapter(prism._ARCHIVE_SPEC, bp.Archive, pb2.Archive).by_fields
    assert BetterprotoAdapter(prism._READING_SPEC, bp.Reading, pb2.Reading).by_fields
    assert BetterprotoAdapter(prism._MEMBER_SPEC, bp.Member, pb2.Member).by_fields
    assert BetterprotoAdapter(prism._CLICK_SPEC, bp.Click, pb2.Click).by_fields
    # A Timestamp at the epoch is kept, as the protobuf style keeps it (betterproto's encoder drops it).
    at_epoch = bp.Click(user_id="u", at=datetime.datetime(1970, 1, 1, tzinfo=UTC))
    assert BetterprotoAdapter(prism._CLICK_SPEC, bp.Click, pb2.Click).to_stored(at_epoch).HasField("at")
    assert (
        not BetterprotoAdapter(prism._CLICK_SPEC, bp.Click, pb2.Click, wire=True)
        .to_stored(at_epoch)
        .HasField("at")
    )
    # So is a map entry with an empty key and an empty message.
    empty_entry = bp.Member(member_id="m", places={"": bp.Address()})
    assert dict(
        BetterprotoAdapter(prism._MEMBER_SPEC, bp.Member, pb2.Member).to_stored(empty_entry).places
    ) == {"": pb2.Address()}
    # A naive datetime is refused as betterproto refuses it.
    with pytest.raises(prism_runtime.WrongType):
        BetterprotoAdapter(prism._CLICK_SPEC, bp.Click, pb2.Click).to_stored(
            bp.Click(at=datetime.datetime(2024, 1, 1))
        )


_INT64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=150, deadline=None)
@given(
    user_id=st.text(max_size=8),
    email=st.text(max_size=8),
    tags=st.lists(st.text(max_size=4), max_size=3),
    counts=st.dictionaries(st.text(max_size=4), _INT64, max_size=3),
    age=st.none() | st.integers(-(2**31), 2**31 - 1),
    avatar=st.binary(max_size=6),
    ratio=st.floats(allow_nan=False),
    scores=st.lists(_INT64, max_size=3),
    active=st.booleans(),
    weight=st.floats(width=32, allow_nan=False),
    visits=st.integers(0, 2**64 - 1),
)
def test_field_by_field_matches_the_wire_format(trees: Any, **values: Any) -> None:
    from prism_runtime.betterproto import BetterprotoAdapter

    bp, pb2, prism = (importlib.import_module(m) for m in ("bpstyle.v1", f"{MODULE}_pb2", f"{MODULE}_prism"))
    adapter = BetterprotoAdapter(prism._PROFILE_SPEC, bp.Profile, pb2.Profile)
    message = bp.Profile(**values)
    stored = adapter.to_stored(message)
    # What the protobuf style stores for the same values (it keeps -0.0, which betterproto's encoder drops).
    assert stored == pb2.Profile(**values)
    assert stored.HasField("age") is (values["age"] is not None)
    back = adapter.from_stored(stored)
    assert back == message
    assert back == bp.Profile.FromString(stored.SerializeToString())


_ADDRESS = st.builds(dict, street=st.text(max_size=4), city=st.text(max_size=4))
_TIER = st.integers(
    0, 3
)  # 2 and 3 are numbers the enum does not name: kept, as betterproto's parser keeps them


@settings(max_examples=150, deadline=None)
@given(
    home=st.none() | _ADDRESS,
    past=st.lists(_ADDRESS, max_size=3),
    tier=_TIER,
    badges=st.lists(_TIER, max_size=3),
    # betterproto's encoder drops a map entry whose key and value are both defaults; tested apart below.
    places=st.dictionaries(st.text(min_size=1, max_size=3), _ADDRESS, max_size=3),
    levels=st.dictionaries(st.text(max_size=3), _TIER, max_size=3),
    joined=st.none()
    | st.datetimes(
        min_value=datetime.datetime(1, 1, 1),
        max_value=datetime.datetime(9999, 12, 31),
        timezones=st.just(UTC),
    ).filter(lambda d: d != datetime.datetime(1970, 1, 1, tzinfo=UTC)),
)
def test_nested_enums_and_timestamps_match_the_wire_format(trees: Any, **values: Any) -> None:
    from prism_runtime.betterproto import BetterprotoAdapter

    bp, pb2, prism = (importlib.import_module(m) for m in ("bpstyle.v1", f"{MODULE}_pb2", f"{MODULE}_prism"))
    fields = BetterprotoAdapter(prism._MEMBER_SPEC, bp.Member, pb2.Member)
    wire = BetterprotoAdapter(prism._MEMBER_SPEC, bp.Member, pb2.Member, wire=True)
    arguments = {
        "member_id": "m",
        "home": None if values["home"] is None else bp.Address(**values["home"]),
        "past": [bp.Address(**a) for a in values["past"]],
        "tier": bp.Tier.try_value(values["tier"]),
        "badges": [bp.Tier.try_value(b) for b in values["badges"]],
        "places": {k: bp.Address(**a) for k, a in values["places"].items()},
        "levels": {k: bp.Tier.try_value(v) for k, v in values["levels"].items()},
    }
    if values["joined"] is not None:
        arguments["joined"] = values["joined"]
    if arguments["home"] is None:
        del arguments["home"]
    message = bp.Member(**arguments)
    stored = fields.to_stored(message)
    assert stored == wire.to_stored(message)
    back = fields.from_stored(stored)
    assert back == wire.from_stored(stored)
    assert repr(back) == repr(wire.from_stored(stored))


@settings(max_examples=150, deadline=None)
@given(
    contact=st.sampled_from(["phone", "pager", None]),
    contact_value=st.text(max_size=3),
    credit_limit=st.none() | _INT64,
    tier=_TIER,
    reset_to=st.sampled_from(["phone", "pager", None]),
)
def test_oneofs_and_wrappers_match_the_wire_format(trees: Any, **values: Any) -> None:
    from prism_runtime.betterproto import BetterprotoAdapter

    bp, pb2, prism = (importlib.import_module(m) for m in ("bpstyle.v1", f"{MODULE}_pb2", f"{MODULE}_prism"))
    fields = BetterprotoAdapter(prism._ACCOUNT_SPEC, bp.Account, pb2.Account)
    wire = BetterprotoAdapter(prism._ACCOUNT_SPEC, bp.Account, pb2.Account, wire=True)
    arguments: dict[str, Any] = {"account_id": "a", "tier": bp.Tier.try_value(values["tier"])}
    if values["contact"] is not None:
        arguments[values["contact"]] = values["contact_value"]
    if values["credit_limit"] is not None:
        arguments["credit_limit"] = values["credit_limit"]
    message = bp.Account(**arguments)
    if values["reset_to"] is not None:
        setattr(message, values["reset_to"], "x")  # betterproto moves the oneof to the member set last
    stored = fields.to_stored(message)
    assert stored == wire.to_stored(message)
    assert stored.WhichOneof("contact") == wire.to_stored(message).WhichOneof("contact")
    back = fields.from_stored(stored)
    assert back == wire.from_stored(stored)
    assert bytes(back) == bytes(wire.from_stored(stored))
    assert betterproto.which_one_of(back, "contact") == betterproto.which_one_of(
        wire.from_stored(stored), "contact"
    )


def test_generated_betterproto_client(trees: tuple[Path, Path], snapshot: SnapshotAssertion) -> None:
    betterproto = trees[1]
    for name in ("bpstyle/v1/store_prism.py", "bpstyle/v1/__init__.py"):
        assert (betterproto / name).read_text() == snapshot(name=name)
    # Nothing of betterproto's own beside the package modules: no root __init__.py, no prism/ package that
    # would hide the runtime's prism.options_pb2.
    assert not (betterproto / "__init__.py").exists()
    assert not (betterproto / "prism").exists()


USER_PROGRAM = """
from __future__ import annotations

import bpstyle.v1 as bp
import prism_runtime
from bpstyle.v1 import store_prism


async def main(db: prism_runtime.Database) -> None:
    profiles = store_prism.ProfileStore(db)
    await profiles.put(bp.Profile(user_id="u1"))
    got: bp.Profile | None = await profiles.get("u1")
    found: list[bp.Profile] = await profiles.find_by_email("a@b.c")
    async for p in profiles.scan(limit=3):
        print(p.display_name.upper(), got, found)
    readings = store_prism.ReadingStore(db)
    async for r in readings.scan("s", start=1, reverse=True):
        print(r.value + 1)
    clicks = store_prism.ClickSeries(db)
    await clicks.append(bp.Click(user_id="u1"))
    async with clicks.tail("u1") as tail:
        async for c in tail:
            print(c.page.upper())
    knows = store_prism.KnowsGraph(db)
    await knows.add_node(bp.Person(person_id="p1", tier=bp.Tier.try_value(1)))
    person: bp.Person | None = await knows.get_node("p1")
    edges: list[bp.Knows] = await knows.out_edges("p1", edge_filter={"strength": 3})
    path: list[str] | None = await knows.shortest_path("p1", "p2", 3, node_filter={"tier": bp.Tier.GOLD})
    print(person, edges, path)


def blocking(db: prism_runtime.SyncDatabase) -> None:
    profiles = store_prism.ProfileSyncStore(db)
    profiles.put(bp.Profile(user_id="u1"))
    got: bp.Profile | None = profiles.get("u1")
    found: list[bp.Profile] = profiles.find_by_email("a@b.c")
    for p in profiles.scan(limit=3):
        print(p.display_name.upper(), got, found)
    for r in store_prism.ReadingSyncStore(db).scan("s", start=1, reverse=True):
        print(r.value + 1)
    clicks = store_prism.ClickSyncSeries(db)
    clicks.append(bp.Click(user_id="u1"))
    with clicks.tail("u1") as tail:
        for c in tail:
            print(c.page.upper())
    knows = store_prism.KnowsSyncGraph(db)
    knows.add_node(bp.Person(person_id="p1"))
    person: bp.Person | None = knows.nodes.get_node("p1")
    edges: list[bp.Knows] = knows.out_edges("p1", edge_filter={"strength": 3})
    path: list[str] | None = knows.shortest_path("p1", "p2", 3, node_filter={"tier": bp.Tier.GOLD})
    visit: bp.Visited | None = store_prism.VisitedSyncEdges(db).get_edge("p1", "paris")
    print(person, edges, path, visit)
"""

WRONG_PROGRAM = """
import prism_runtime
from bpstyle.v1 import store_pb2, store_prism


async def main(db: prism_runtime.Database) -> None:
    await store_prism.ProfileStore(db).put(store_pb2.Profile(user_id="u1"))


def blocking(db: prism_runtime.SyncDatabase) -> None:
    store_prism.ProfileSyncStore(db).put(store_pb2.Profile(user_id="u1"))
"""


def test_generated_tree_passes_mypy_strict_and_ruff_format(trees: tuple[Path, Path]) -> None:
    tree = trees[1]
    (tree / "user_program.py").write_text(USER_PROGRAM)
    (tree / "wrong_program.py").write_text(WRONG_PROGRAM)
    try:
        mypy = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull]
        done = subprocess.run(
            [*mypy, "user_program.py", "bpstyle"], cwd=tree, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout
        wrong = subprocess.run(
            [*mypy, "wrong_program.py"], cwd=tree, capture_output=True, text=True, timeout=600
        )
        assert wrong.returncode == 1
        assert (
            'Argument 1 to "put" of "KeyValueStore" has incompatible type "bpstyle.v1.store_pb2.Profile"; '
            'expected "bpstyle.v1.Profile"'
        ) in wrong.stdout
        assert (
            'Argument 1 to "put" of "_SyncStore" has incompatible type "bpstyle.v1.store_pb2.Profile"; '
            'expected "bpstyle.v1.Profile"'
        ) in wrong.stdout
    finally:
        (tree / "user_program.py").unlink()
        (tree / "wrong_program.py").unlink()
    ruff = [
        sys.executable,
        "-m",
        "ruff",
        "format",
        "--check",
        "--no-cache",
        "--isolated",
        "--line-length",
        "110",
    ]
    done = subprocess.run([*ruff, str(tree / "bpstyle/v1/store_prism.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# -- (prism.index) finders and (prism.ttl_seconds) in the betterproto style ------------------------------

FINDERS = """syntax = "proto3";
package bpfind.v1;
import "prism/options.proto";

enum Channel {
  CHANNEL_UNSPECIFIED = 0;
  CHANNEL_EMAIL = 1;
}

message Session {
  option (prism.access_pattern) = "key_value";
  option (prism.ttl_seconds) = "60";
  string session_id = 1 [(prism.key) = true];
  string user_id = 2 [(prism.index) = true];
  Channel channel = 3 [(prism.index) = true];
}

message Reminder {
  option (prism.access_pattern) = "read_heavy";
  option (prism.ttl_seconds) = "3600";
  string owner = 1 [(prism.key) = true];
  int64 due_ms = 2 [(prism.sort_key) = true];
  Channel channel = 3 [(prism.index) = true];
}
"""

FINDERS_PROGRAM = """
from __future__ import annotations

from datetime import timedelta

import bpfind.v1 as bp
import prism_runtime
from bpfind.v1 import finders_prism


async def main(db: prism_runtime.Database) -> None:
    sessions = finders_prism.SessionStore(db)
    await sessions.put(bp.Session(session_id="s"), ttl=timedelta(minutes=1))
    await sessions.put_many([bp.Session(session_id="t")], ttl=None)
    found: list[bp.Session] = await sessions.find_by_channel(bp.Channel.EMAIL, limit=5, after="s")
    reminders = finders_prism.ReminderStore(db)
    due: list[bp.Reminder] = await reminders.find_by_channel(1, after=("amy", 3))
    print(found, due)


def blocking(db: prism_runtime.SyncDatabase) -> None:
    sessions = finders_prism.SessionSyncStore(db)
    sessions.put(bp.Session(session_id="s"), ttl=timedelta(minutes=1))
    sessions.put_many([bp.Session(session_id="t")])
    found: list[bp.Session] = sessions.find_by_channel(bp.Channel.EMAIL, limit=5, after="s")
    due: list[bp.Reminder] = finders_prism.ReminderSyncStore(db).find_by_channel(1, after=("amy", 3))
    print(found, due)
"""


@pytest.fixture(scope="module")
def finders_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A schema with indexed fields and TTLs, generated in the betterproto style and put on sys.path."""
    schema = tmp_path_factory.mktemp("bpfind_schema")
    write_proto(schema, "bpfind/v1/finders.proto", FINDERS)
    out = tmp_path_factory.mktemp("bpfind_tree")
    done = generate(schema, out, parameter="messages=betterproto")
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    yield out
    sys.path.remove(str(out))
    for name in [m for m in sys.modules if m == "bpfind" or m.startswith("bpfind.")]:
        del sys.modules[name]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_betterproto_finders_and_ttl(
    request: pytest.FixtureRequest, tmp_path: Path, finders_tree: Path, backend: str
) -> None:
    bp = importlib.import_module("bpfind.v1")
    pb2 = importlib.import_module("bpfind.v1.finders_pb2")
    prism = importlib.import_module("bpfind.v1.finders_prism")
    url = await url_for(request, backend, tmp_path)
    try:
        async with provisioned(url, finders_tree) as db:
            sessions = prism.SessionStore(db)
            email = bp.Channel.EMAIL
            await sessions.put_many(
                [
                    bp.Session(session_id=f"s{i}", user_id="ann", channel=email if i % 2 else 0)
                    for i in range(6)
                ]
            )
            await sessions.put(
                bp.Session(session_id="brief", user_id="ann"), ttl=datetime.timedelta(milliseconds=300)
            )
            page = await sessions.find_by_channel(email, limit=2)
            assert page == [bp.Session(session_id=s, user_id="ann", channel=email) for s in ("s1", "s3")]
            assert all(type(s) is bp.Session for s in page)
            assert [s.session_id for s in await sessions.find_by_channel(1, after="s3")] == ["s5"]
            await asyncio.sleep(0.6)
            assert await sessions.get("brief") is None
            assert [s.session_id for s in await sessions.find_by_user_id("ann")] == [
                f"s{i}" for i in range(6)
            ]
            reminders = prism.ReminderStore(db)
            await reminders.put_many(
                [bp.Reminder(owner="amy", due_ms=d, channel=email) for d in (3, 1, 2)],
                ttl=datetime.timedelta(hours=1),
            )
            after = await reminders.find_by_channel(email, after=("amy", 1))
            assert [(r.owner, r.due_ms) for r in after] == [("amy", 2), ("amy", 3)]
            with pytest.raises(prism_runtime.WrongType):
                await reminders.put(pb2.Reminder(owner="amy"), ttl=datetime.timedelta(hours=1))
    finally:
        if backend == "postgres":
            await drop_schema(url)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_blocking_betterproto_finders_and_ttl(
    request: pytest.FixtureRequest, tmp_path: Path, finders_tree: Path, backend: str
) -> None:
    bp = importlib.import_module("bpfind.v1")
    prism = importlib.import_module("bpfind.v1.finders_prism")
    email = bp.Channel.EMAIL

    def blocking(url: str) -> None:
        with prism_runtime.connect_sync(url) as db:
            sessions = prism.SessionSyncStore(db)
            sessions.put_many(
                [
                    bp.Session(session_id=f"s{i}", user_id="bob", channel=email if i % 2 else 0)
                    for i in range(4)
                ]
            )
            sessions.put(
                bp.Session(session_id="brief", user_id="bob"), ttl=datetime.timedelta(milliseconds=300)
            )
            page = sessions.find_by_channel(email, limit=1)
            assert page == [bp.Session(session_id="s1", user_id="bob", channel=email)]
            assert type(page[0]) is bp.Session
            assert [s.session_id for s in sessions.find_by_channel(email, after="s1")] == ["s3"]
            assert sessions.get("brief") == bp.Session(session_id="brief", user_id="bob")
            time.sleep(0.6)
            assert sessions.get("brief") is None
            assert [s.session_id for s in sessions.find_by_user_id("bob")] == [f"s{i}" for i in range(4)]
            reminders = prism.ReminderSyncStore(db)
            reminders.put_many([bp.Reminder(owner="amy", due_ms=d, channel=email) for d in (2, 1)])
            after = reminders.find_by_channel(email, after=("amy", 1))
            assert [(r.owner, r.due_ms) for r in after] == [("amy", 2)]

    url = await url_for(request, backend, tmp_path)
    try:
        async with provisioned(url, finders_tree) as db:
            await asyncio.to_thread(blocking, url)
            # The async store of the same style reads what the blocking one wrote.
            assert [s.session_id for s in await prism.SessionStore(db).find_by_channel(email)] == ["s1", "s3"]
    finally:
        if backend == "postgres":
            await drop_schema(url)


def test_betterproto_finders_pass_mypy_strict(finders_tree: Path) -> None:
    (finders_tree / "finders_program.py").write_text(FINDERS_PROGRAM)
    try:
        mypy = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull]
        done = subprocess.run(
            [*mypy, "finders_program.py", "bpfind"],
            cwd=finders_tree,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout
    finally:
        (finders_tree / "finders_program.py").unlink()
    ruff = [
        sys.executable,
        "-m",
        "ruff",
        "format",
        "--check",
        "--no-cache",
        "--isolated",
        "--line-length",
        "110",
    ]
    done = subprocess.run(
        [*ruff, str(finders_tree / "bpfind/v1/finders_prism.py")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- what betterproto lacks: located errors, no files ----------------------------------------------------

PROTO2 = """syntax = "proto2";
package bpgroups.v1;
import "prism/options.proto";

message Order {
  option (prism.access_pattern) = "key_value";
  optional string order_id = 1 [(prism.key) = true];
  optional int32 quantity = 2 [default = 1];
  optional group Shipping = 3 {
    optional string city = 4;
  }
}
"""


def test_proto2_groups_and_defaults_are_located_errors(tmp_path: Path) -> None:
    name = write_proto(tmp_path / "proto", "bpgroups/v1/orders.proto", PROTO2)
    run = run_protoc(tmp_path / "proto", [name], tmp_path / "out", parameter="messages=betterproto")
    assert run.returncode != 0
    assert run.errors.splitlines() == [
        "--prism_out: bpgroups/v1/orders.proto:8:3: bpgroups.v1.Order.quantity: betterproto 2.0.0b7 ignores "
        "proto2 default values, so the two styles would read this field differently; remove [default = ...], "
        "or use messages=protobuf",
        "bpgroups/v1/orders.proto:9:3: bpgroups.v1.Order.shipping: betterproto 2.0.0b7 has no proto2 groups; "
        "make it a message field (the same data, a different wire format), or use messages=protobuf",
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.py"))
    # The protobuf style takes the same file.
    assert run_protoc(tmp_path / "proto", [name], tmp_path / "ok").returncode == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'edition = "2023";\npackage bped.v1;\nimport "prism/options.proto";\nmessage M {\n'
            '  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n}\n',
            "bped/v1/m.proto:1:1: bped/v1/m.proto: betterproto 2.0.0b7 does not read editions files; use "
            'messages=protobuf, or syntax = "proto3"',
        ),
        (
            'syntax = "proto3";\nimport "prism/options.proto";\nmessage M {\n'
            '  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n}\n',
            "bped/v1/m.proto: bped/v1/m.proto: messages=betterproto needs a package statement: betterproto "
            "writes one module per package",
        ),
    ],
    ids=["editions", "no_package"],
)
def test_what_the_betterproto_style_refuses(tmp_path: Path, body: str, expected: str) -> None:
    name = write_proto(tmp_path / "proto", "bped/v1/m.proto", body)
    run = run_protoc(tmp_path / "proto", [name], tmp_path / "out", parameter="messages=betterproto")
    assert run.returncode != 0
    assert run.errors.removeprefix("--prism_out: ") == expected


def test_a_misspelt_style_names_the_allowed_ones(tmp_path: Path) -> None:
    name = write_proto(tmp_path / "proto", "bped/v1/m.proto", PROTO2.replace("bpgroups", "bped"))
    run = run_protoc(tmp_path / "proto", [name], tmp_path / "out", parameter="messages=betterprot")
    assert (
        "messages='betterprot' is not supported; allowed: protobuf, betterproto; did you mean 'betterproto'?"
        in (run.errors)
    )


def _without_betterproto(tmp_path: Path) -> dict[str, str]:
    """Return an environment whose Python finds no betterproto: a package of that name that is not there."""
    shadow = tmp_path / "shadow" / "betterproto"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'betterproto'\", name='betterproto')\n"
    )
    return {**os.environ, "PYTHONPATH": str(shadow.parent)}


def test_without_betterproto_generation_says_what_to_install(tmp_path: Path) -> None:
    name = write_proto(
        tmp_path / "proto",
        "bpstyle/v1/store.proto",
        (SCHEMA / MODULE.replace(".", "/")).with_suffix(".proto").read_text(),
    )
    args = protoc_command(
        tmp_path / "proto", [name], plugin_args(tmp_path / "out", parameter="messages=betterproto")
    )
    done = subprocess.run(
        args, capture_output=True, text=True, env=_without_betterproto(tmp_path), timeout=120
    )
    assert done.returncode != 0
    assert (
        "--prism_out: messages=betterproto needs betterproto 2.0.0b7 and its generator; "
        "pip install 'protoc-gen-prism[betterproto]'" in done.stderr
    )


def test_without_betterproto_the_runtime_says_what_to_install(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import prism_runtime.betterproto"],
        capture_output=True,
        text=True,
        env=_without_betterproto(tmp_path),
        timeout=60,
    )
    assert done.returncode != 0
    assert (
        "MissingExtra: a client generated with messages=betterproto needs the 'betterproto' driver"
        in done.stderr
    )
    assert "pip install 'prism-runtime[betterproto]'" in done.stderr


BUF_GEN = """version: v2
inputs:
  - directory: proto
plugins:
  - protoc_builtin: python
    protoc_path: [python3, -m, grpc_tools.protoc]
    out: gen
  - local: protoc-gen-mypy
    out: gen
  - local: protoc-gen-prism
    out: gen
    strategy: all
    opt: messages=betterproto
"""


def test_buf_generate_writes_the_same_tree(tmp_path: Path, trees: tuple[Path, Path]) -> None:
    work = tmp_path / "repo"
    shutil.copytree(SCHEMA, work / "proto")
    shutil.copytree(ROOT / "proto" / "prism", work / "proto" / "prism")
    (work / "buf.yaml").write_text("version: v2\nmodules:\n  - path: proto\n")
    (work / "buf.gen.yaml").write_text(BUF_GEN)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    buf = shutil.which("buf", path=env["PATH"])
    assert buf is not None, "buf-bin is a test dependency"
    done = subprocess.run([buf, "generate"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ours = {
        str(p.relative_to(trees[1])): p for p in trees[1].rglob("*") if p.is_file() and p.suffix != ".pyc"
    }
    theirs = {str(p.relative_to(work / "gen")): p for p in (work / "gen").rglob("*") if p.is_file()}
    # buf generates the vendored prism/options.proto too (its *_pb2 only: Prism keeps no module of it).
    theirs = {name: p for name, p in theirs.items() if not name.startswith("prism/")}
    assert set(theirs) == set(ours)
    for name in ("bpstyle/v1/__init__.py", "bpstyle/v1/store_prism.py", "prism.plan.json"):
        assert theirs[name].read_text() == ours[name].read_text(), name


@pytest.mark.parametrize("scheme", ["nats", "kafka"])
async def test_stream_events_cross_styles(
    request: pytest.FixtureRequest, scheme: str, trees: tuple[Path, Path], bp: Any, pb2: Any, prism: Any
) -> None:
    # Tansu refuses idempotent producers (docs/backends-notes.md).
    url = (
        request.getfixturevalue("nats_url")
        if scheme == "nats"
        else f"kafka://{request.getfixturevalue('kafka_bootstrap')}?idempotence=false"
    )
    ours, theirs = f"bp-{uuid.uuid4().hex[:8]}", f"pb-{uuid.uuid4().hex[:8]}"
    async with prism_runtime.connect(url) as db:
        clicks = prism.ClickSeries(db)
        await clicks.append_many([click(bp, ours, 2), click(bp, ours, 1)])
        [read] = peer(
            trees,
            url,
            [
                {
                    "op": "append",
                    "store": "ClickSeries",
                    "message": "Click",
                    "data": encoded(click(bp, theirs, 5)),
                },
                {"op": "query", "store": "ClickSeries", "args": [ours]},
            ],
        )
        assert [pb2.Click.FromString(bytes.fromhex(h)) for h in read] == [
            pb2.Click.FromString(bytes(click(bp, ours, m))) for m in (1, 2)
        ]
        assert [c async for c in clicks.query(theirs)] == [click(bp, theirs, 5)]


def person(bp: ModuleType, person_id: str) -> Any:
    return bp.Person(
        person_id=person_id,
        name=f"name of {person_id}",
        tier=bp.Tier.GOLD if person_id < "p3" else bp.Tier.UNSPECIFIED,
        joined=datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


async def test_graph_cross_styles_and_traversals(
    database: tuple[prism_runtime.Database, str], trees: tuple[Path, Path], bp: Any, pb2: Any, prism: Any
) -> None:
    db, url = database
    knows = prism.KnowsGraph(db)
    await knows.add_nodes([person(bp, f"p{i}") for i in range(1, 4)])
    await knows.add_edges([bp.Knows(from_id="p1", to_id="p2", strength=3, tier=bp.Tier.GOLD)])
    # The peer reads what this style wrote, and adds a node and an edge of its own.
    got = peer(
        trees,
        url,
        [
            {"store": "KnowsGraph", "op": "get_node", "args": ["p1"]},
            {"store": "KnowsGraph", "op": "get_edge", "args": ["p1", "p2"]},
            {"store": "KnowsGraph", "op": "add_node", "message": "Person", "data": encoded(person(bp, "p4"))},
            {
                "store": "KnowsGraph",
                "op": "add_edge",
                "message": "Knows",
                "data": encoded(bp.Knows(from_id="p2", to_id="p4", strength=1)),
            },
            {
                "store": "VisitedEdges",
                "op": "add_edge",
                "message": "Visited",
                "data": encoded(bp.Visited(person_id="p4", place_id="paris", times=2)),
            },
        ],
    )
    assert pb2.Person.FromString(bytes.fromhex(got[0])) == pb2.Person.FromString(bytes(person(bp, "p1")))
    assert pb2.Knows.FromString(bytes.fromhex(got[1])) == pb2.Knows(
        from_id="p1", to_id="p2", strength=3, tier=1
    )
    assert await knows.get_node("p4") == person(bp, "p4")
    assert await knows.get_nodes(["p4", "nope"]) == [person(bp, "p4"), None]
    assert await knows.out_edges("p2") == [bp.Knows(from_id="p2", to_id="p4", strength=1)]
    assert await knows.in_edges("p2") == [bp.Knows(from_id="p1", to_id="p2", strength=3, tier=bp.Tier.GOLD)]
    assert await knows.shortest_path("p1", "p4", 3) == ["p1", "p2", "p4"]
    assert [v.node for v in await knows.bfs("p1", 2)] == ["p1", "p2", "p4"]
    assert await knows.neighbors("p1", node_filter={"tier": bp.Tier.GOLD}) == ["p2"]
    assert await knows.targets("p1", edge_filter={"strength": 3}) == ["p2"]
    assert await knows.k_hop_count("p1", 2) == 2
    visited = prism.VisitedEdges(db)
    assert await visited.get_edge("p4", "paris") == bp.Visited(person_id="p4", place_id="paris", times=2)
    assert await visited.sources("paris") == ["p4"]
    assert await knows.remove_edge("p1", "p2") is True
    assert await knows.nodes.remove_node("p3") is True
