"""What callers hand the API, and rows another tool wrote: the same typed errors on every backend.

Messages of the wrong type, keys of the wrong type or outside the key rule, messages nested deeper than a
backend reads back, and stored rows that cannot be decoded (docs/type-mapping.md, "Keys" and "Rows that
cannot be read").
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from backends import BACKENDS as SQL_BACKENDS
from backends import drop_schema, url_for

import prism_runtime
from prism_runtime.backends.kafka import KafkaTimeSeries, partition_of
from prism_runtime.backends.nats import subject_of
from prism_runtime.errors import CorruptRow, InvalidKey, MessageTooDeep, PrismError, WrongType
from prism_runtime.inputs import MAX_KEY_BYTES, MAX_MESSAGE_DEPTH
from protoc_gen_prism.sql.provision import provision

STREAM_BACKENDS = ["kafka", "nats"]
T0 = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)


@dataclass
class Sql:
    """A fresh, provisioned SQL database and the URL to reach its tables behind Prism's back."""

    db: prism_runtime.Database
    url: str
    kind: str

    async def run(self, sql: str, *args: Any) -> None:
        """Run one statement directly on the database (as another tool would), `?` placeholders."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                conn.execute(sql, args)
                conn.commit()
            finally:
                conn.close()
            return
        numbered = sql
        for i in range(1, len(args) + 1):
            numbered = numbered.replace("?", f"${i}", 1)
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(numbered, *args)
        finally:
            await conn.close()


@pytest.fixture(params=SQL_BACKENDS)
async def sql(request: pytest.FixtureRequest, tmp_path: Path, generated: Path) -> AsyncIterator[Sql]:
    url = await url_for(request, request.param, tmp_path)
    try:
        async with prism_runtime.connect(url) as db:
            await provision(db, generated, echo=lambda line: None)
            yield Sql(db, url, request.param)
    finally:
        if request.param == "postgres":
            await drop_schema(url)


@pytest.fixture(params=SQL_BACKENDS + STREAM_BACKENDS)
async def series_db(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path
) -> AsyncIterator[prism_runtime.Database]:
    kind = request.param
    if kind in SQL_BACKENDS:
        url = await url_for(request, kind, tmp_path)
    elif kind == "kafka":
        url = f"kafka://{request.getfixturevalue('kafka_bootstrap')}?idempotence=false"
    else:
        url = request.getfixturevalue("nats_url")
    try:
        async with prism_runtime.connect(url) as db:
            if kind in SQL_BACKENDS:
                await provision(db, generated, echo=lambda line: None)
            yield db
    finally:
        if kind == "postgres":
            await drop_schema(url)


def load(name: str) -> tuple[Any, Any]:
    return importlib.import_module(f"{name}_pb2"), importlib.import_module(f"{name}_prism")


@pytest.fixture
def edges(generated: Path) -> tuple[Any, Any]:
    return load("prismtest.edges.v1.edges")


@pytest.fixture
def users(generated: Path) -> tuple[Any, Any]:
    return load("acme.users.v1.users")


@pytest.fixture
def social(generated: Path) -> tuple[Any, Any]:
    return load("acme.social.v1.social")


def unique(prefix: str) -> str:
    """Return a key no other test uses: stream backends keep data for the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


# --- Nesting: whatever put accepts, get returns --------------------------------------------------------


def nest(pb2: Any, top: Any, shape: str, steps: int) -> Any:
    """Fill the Branch `top` with `steps` more Branches (or Structs) nested below it, the given way; return it.

    Built in place: protobuf copies a message given to a constructor through its own (depth-limited) parser.
    """
    top.label = "top"
    here = top
    if shape == "struct":
        node = here.attrs
        for _ in range(steps):
            node = node.fields["k"].struct_value
        node.fields["leaf"].string_value = "x"
        return top
    if shape == "any":
        top.extra.Pack(nest(pb2, pb2.Branch(), "child", steps))
        return top
    for _ in range(steps):
        if shape == "child":
            here = here.child
        elif shape == "kids":
            here = here.kids.add()
        else:
            here = here.named["k"]
        here.label = "x"
    return top


def tree(pb2: Any, key: str, shape: str, steps: int) -> Any:
    """Return a Tree whose root has `steps` levels nested below it."""
    made = pb2.Tree(tree_id=key)
    nest(pb2, made.root, shape, steps)
    return made


def growth(pb2: Any, key: str, steps: int, shape: str = "child") -> Any:
    """Return a Growth event whose branch has `steps` levels nested below it."""
    made = pb2.Growth(tree_id=key)
    made.at.FromDatetime(T0 + datetime.timedelta(seconds=steps))
    nest(pb2, made.branch, shape, steps)
    return made


# Steps around the limit for each shape: a child adds one level, a map entry two, a Struct three.
SHAPES = {
    "child": range(96, 102),
    "kids": range(96, 102),
    "named": range(46, 52),
    "struct": range(30, 36),
    "any": range(95, 101),
}


async def test_whatever_put_accepts_get_returns(sql: Sql, edges: Any) -> None:
    pb2, prism = edges
    store = prism.TreeStore(sql.db)
    outcomes: dict[str, set[bool]] = {}
    stored = []
    for shape, steps in SHAPES.items():
        for n in steps:
            key = f"{shape}-{n}"
            made = tree(pb2, key, shape, n)
            try:
                await store.put(made)
            except MessageTooDeep as error:
                assert f"deeper than {MAX_MESSAGE_DEPTH} levels" in str(error)
                assert store.namespace in str(error)
                assert await store.get(key) is None
                outcomes.setdefault(shape, set()).add(False)
            else:
                assert await store.get(key) == made
                outcomes.setdefault(shape, set()).add(True)
                stored.append(made)
    # Each range crosses the limit: some nestings were stored and read back, the deeper ones refused.
    assert outcomes == {shape: {True, False} for shape in SHAPES}
    # The deepest chain of single children that every backend reads back is stored.
    deepest = tree(pb2, "deepest", "child", MAX_MESSAGE_DEPTH - 2)
    await store.put(deepest)
    assert await store.get("deepest") == deepest
    # And a scan of the whole namespace reads every stored row.
    assert await collect(store.scan(page_size=7)) == sorted([*stored, deepest], key=lambda t: t.tree_id)


async def test_a_thousand_levels_is_a_typed_error_and_writes_nothing(sql: Sql, edges: Any) -> None:
    pb2, prism = edges
    store = prism.TreeStore(sql.db)
    deep = tree(pb2, "deep", "child", 1000)
    with pytest.raises(MessageTooDeep, match="prismtest_edges_v1_tree"):
        await store.put(deep)
    with pytest.raises(MessageTooDeep):
        await store.put_many([pb2.Tree(tree_id="fine"), deep])
    assert await store.get("fine") is None
    assert await store.get("deep") is None
    sorted_store = prism.LeafStore(sql.db)
    with pytest.raises(MessageTooDeep):
        leaf = pb2.Leaf(tree=b"t", path="p")
        nest(pb2, leaf.branch, "named", 500)
        await sorted_store.put(leaf)


async def test_series_nesting_reads_back_on_every_backend(
    series_db: prism_runtime.Database, edges: Any
) -> None:
    pb2, prism = edges
    series = prism.GrowthSeries(series_db)
    key = unique("tree")
    stored = []
    for n in (MAX_MESSAGE_DEPTH - 3, MAX_MESSAGE_DEPTH - 2, MAX_MESSAGE_DEPTH - 1, MAX_MESSAGE_DEPTH, 1000):
        event = growth(pb2, key, n)
        try:
            await series.append(event)
        except MessageTooDeep:
            assert n >= MAX_MESSAGE_DEPTH - 1
        else:
            stored.append(event)
    assert len(stored) == 2
    assert await collect(series.query(key)) == stored
    with pytest.raises(MessageTooDeep):
        await series.append_many([growth(pb2, key, 1), growth(pb2, key, 200, "kids")])
    assert await collect(series.query(key)) == stored


# --- Rows that cannot be decoded -----------------------------------------------------------------------

SECRET = "s3cret-value@example.com"


async def corrupt_tree(sql: Sql, namespace: str, key: str) -> None:
    """Overwrite one row's JSON column with a document that is no Branch, as a foreign tool might."""
    cast = "" if sql.kind == "sqlite" else "::jsonb"
    await sql.run(
        f'UPDATE "{namespace}" SET "root" = ?{cast} WHERE "tree_id" = ?',
        f'{{"label": {{"x": "{SECRET}"}}}}',
        key,
    )


async def test_a_row_that_cannot_be_decoded_names_its_key_never_its_value(sql: Sql, edges: Any) -> None:
    pb2, prism = edges
    store = prism.TreeStore(sql.db)
    trees = [pb2.Tree(tree_id=f"t{i}", root=pb2.Branch(label=f"b{i}")) for i in range(5)]
    await store.put_many(trees)
    await corrupt_tree(sql, store.namespace, "t2")
    with pytest.raises(CorruptRow) as caught:
        await store.get("t2")
    text = str(caught.value)
    assert "namespace 'prismtest_edges_v1_tree'" in text and "tree_id='t2'" in text
    assert SECRET not in text and "label" not in text and caught.value.__cause__ is None
    assert caught.value.key == ("t2",)
    assert await store.get("t1") == trees[1]
    with pytest.raises(CorruptRow):
        await store.get_many(["t1", "t2"])
    # A plain scan stops at the bad row; `on_corrupt` reports it and goes on, across pages.
    with pytest.raises(CorruptRow, match="t2"):
        await collect(store.scan())
    for page_size in (1, 2, 3, 256):
        bad: list[CorruptRow] = []
        got = await collect(store.scan(page_size=page_size, on_corrupt=bad.append))
        assert got == [t for t in trees if t.tree_id != "t2"]
        assert [e.key for e in bad] == [("t2",)]
    # `limit` counts the items yielded, not the rows skipped.
    got = await collect(store.scan(limit=3, page_size=2, on_corrupt=lambda error: None))
    assert [t.tree_id for t in got] == ["t0", "t1", "t3"]
    # The error's key is where a scan that stopped can pick up again.
    assert await collect(store.scan(after=caught.value.key[0])) == trees[3:]


async def test_a_corrupt_row_in_a_sorted_map_is_skipped_in_either_direction(sql: Sql, edges: Any) -> None:
    pb2, prism = edges
    store = prism.LeafStore(sql.db)
    leaves = [pb2.Leaf(tree=b"oak", path=f"p{i}", branch=pb2.Branch(label="x")) for i in range(4)]
    await store.put_many(leaves)
    cast = "" if sql.kind == "sqlite" else "::jsonb"
    await sql.run(f'UPDATE "{store.namespace}" SET "branch" = ?{cast} WHERE "path" = ?', '{"kids": 7}', "p3")
    with pytest.raises(CorruptRow, match="path='p3'"):
        await store.get(b"oak", "p3")
    bad: list[CorruptRow] = []
    got = await collect(store.scan(b"oak", reverse=True, page_size=1, on_corrupt=bad.append))
    assert [m.path for m in got] == ["p2", "p1", "p0"]
    assert [e.key for e in bad] == [(b"oak", "p3")]


async def test_text_that_is_not_utf8_is_a_corrupt_row_not_a_quoted_value(
    tmp_path: Path, generated: Path, edges: Any
) -> None:
    # Only SQLite stores such text: Postgres checks the encoding of every value it is sent.
    pb2, prism = edges
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    async with prism_runtime.connect(url) as db:
        store = prism.TreeStore(db)
        await store.put_many(pb2.Tree(tree_id=f"t{i}", note="fine") for i in range(3))
        conn = sqlite3.connect(tmp_path / "bad.db")
        raw = b"\xff" + SECRET.encode()
        conn.execute(
            f'UPDATE "{store.namespace}" SET "note" = CAST(? AS TEXT) WHERE "tree_id" = ?', (raw, "t1")
        )
        conn.commit()
        conn.close()
        with pytest.raises(CorruptRow) as caught:
            await store.get("t1")
        assert "tree_id='t1'" in str(caught.value) and SECRET not in str(caught.value)
        bad: list[CorruptRow] = []
        assert [t.tree_id for t in await collect(store.scan(on_corrupt=bad.append))] == ["t0", "t2"]
        assert [e.key for e in bad] == [("t1",)]
        # A row whose key itself is not UTF-8 is still reported, without a key to show.
        conn = sqlite3.connect(tmp_path / "bad.db")
        conn.execute(
            f'UPDATE "{store.namespace}" SET "tree_id" = CAST(? AS TEXT) WHERE "tree_id" = ?', (raw, "t2")
        )
        conn.commit()
        conn.close()
        bad.clear()
        assert [t.tree_id for t in await collect(store.scan(on_corrupt=bad.append))] == ["t0"]
        assert [e.key for e in bad] == [("t1",), ()]
        assert "a row whose key cannot be read" in str(bad[1]) and SECRET not in str(bad[1])
        # With no key to continue after, a scan cannot page past such a row: it raises there.
        with pytest.raises(CorruptRow, match="a row whose key cannot be read"):
            await collect(store.scan(page_size=1, on_corrupt=bad.append))


# --- Messages of the wrong type --------------------------------------------------------------------------


async def test_a_message_of_the_wrong_type_is_refused_before_anything_is_written(
    sql: Sql, users: Any, social: Any
) -> None:
    pb2, prism = users
    social_pb2, social_prism = social
    store = prism.UserProfileStore(sql.db)
    good = pb2.UserProfile(user_id="u1", email="a@example.com")
    for wrong, named in (
        ({"user_id": "u1", "ssn": "123"}, "got dict"),
        (social_pb2.Person(person_id="u1"), "got a acme.social.v1.Person message"),
        (None, "got NoneType"),
    ):
        with pytest.raises(WrongType) as caught:
            await store.put(wrong)
        assert isinstance(caught.value, TypeError)
        text = str(caught.value)
        assert "expected a acme.users.v1.UserProfile message" in text and named in text
        assert "123" not in text
        with pytest.raises(TypeError, match="UserProfile"):
            await store.put_many([good, wrong])
    assert await store.get("u1") is None
    graph = social_prism.FollowsGraph(sql.db)
    with pytest.raises(TypeError, match=r"expected a acme\.social\.v1\.Person message, got dict"):
        await graph.add_node({"person_id": "p1"})
    with pytest.raises(TypeError, match=r"expected a acme\.social\.v1\.Person message"):
        await graph.add_nodes([social_pb2.Person(person_id="p1"), good])
    with pytest.raises(TypeError, match=r"expected a acme\.social\.v1\.Follows message"):
        await graph.add_edge(social_pb2.Person(person_id="p1"))
    with pytest.raises(TypeError, match=r"expected a acme\.social\.v1\.Follows message"):
        await graph.add_edges([social_pb2.Follows(follower_id="p1", followee_id="p2"), {"x": 1}])
    assert await graph.get_node("p1") is None
    assert await graph.get_edge("p1", "p2") is None


async def test_a_series_refuses_an_event_of_the_wrong_type_on_every_backend(
    series_db: prism_runtime.Database, edges: Any
) -> None:
    pb2, prism = edges
    series = prism.GrowthSeries(series_db)
    tree = unique("tree")
    good = pb2.Growth(tree_id=tree)
    good.at.FromDatetime(T0)
    with pytest.raises(TypeError, match=r"expected a prismtest\.edges\.v1\.Growth message, got dict"):
        await series.append({"tree_id": tree})
    with pytest.raises(WrongType, match=r"got a prismtest\.edges\.v1\.Tree message"):
        await series.append_many([good, pb2.Tree(tree_id=tree)])
    assert await collect(series.query(tree)) == []


# --- Keys: one type per key field, one rule for values ---------------------------------------------------


async def refused(kind: type[Exception], call: Callable[[], Any], *needles: str) -> str:
    """Assert that `call()` (awaited when it returns an awaitable) raises `kind`; return the message."""
    with pytest.raises(kind) as caught:
        result = call()
        if asyncio.iscoroutine(result) or hasattr(result, "__anext__"):
            await (result if asyncio.iscoroutine(result) else collect(result))
    assert isinstance(caught.value, PrismError)
    text = str(caught.value)
    for needle in needles:
        assert needle in text
    return text


async def test_a_key_of_the_wrong_type_is_a_type_error_on_every_backend(
    sql: Sql, edges: Any, social: Any
) -> None:
    _, prism = edges
    trees = prism.TreeStore(sql.db)
    leaves = prism.LeafStore(sql.db)
    counters = importlib.import_module("prismtest.types.v1.types_prism").CounterStore(sql.db)
    await refused(TypeError, lambda: trees.get(1), "key field tree_id takes str, got int")
    await refused(TypeError, lambda: trees.get(b"t"), "takes str, got bytes")
    await refused(TypeError, lambda: trees.get_many(["t", None]), "got NoneType")
    await refused(TypeError, lambda: trees.delete(1.5), "got float")
    await refused(TypeError, lambda: trees.scan(after=3), "got int")
    await refused(TypeError, lambda: counters.get("7"), "key field id takes int, got str")
    await refused(TypeError, lambda: counters.get(True), "takes int, got bool")
    await refused(TypeError, lambda: leaves.get("oak", "p"), "key field tree takes bytes, got str")
    await refused(TypeError, lambda: leaves.get(b"oak", 1), "key field path takes str, got int")
    await refused(TypeError, lambda: leaves.scan(b"oak", start=b"p"), "got bytes")
    await refused(TypeError, lambda: leaves.delete_all(7), "got int")
    _, social_prism = social
    graph = social_prism.FollowsGraph(sql.db)
    likes = social_prism.LikesEdges(sql.db)
    await refused(TypeError, lambda: graph.get_node(1), "key field person_id takes str, got int")
    await refused(TypeError, lambda: graph.neighbors(1), "key field follower_id takes str, got int")
    await refused(TypeError, lambda: graph.bfs(b"a", 2), "got bytes")
    await refused(TypeError, lambda: graph.shortest_path("a", 2, 3), "got int")
    await refused(TypeError, lambda: likes.get_edge("p", "7"), "key field post_id takes int, got str")
    await refused(TypeError, lambda: likes.sources("7"), "got str")
    await refused(TypeError, lambda: social_prism.KnowsGraph(sql.db).get_edge("b", 1), "got int")
    # An int key out of its column's range is not found anywhere: refused as a key no item can have.
    await refused(
        InvalidKey, lambda: counters.get(2**63), "must be within -9223372036854775808..9223372036854775807"
    )
    await refused(
        InvalidKey, lambda: social_prism.PostNodes(sql.db).get_node(-(2**63) - 1), "key field post_id"
    )


def long_keys() -> list[tuple[str, bool]]:
    """Return string keys at and over the byte limit, and whether each is allowed."""
    return [
        ("k" * MAX_KEY_BYTES, True),
        ("é" * (MAX_KEY_BYTES // 2), True),
        ("k" * (MAX_KEY_BYTES + 1), False),
        ("é" * (MAX_KEY_BYTES // 2) + "k", False),
        ("🔑" * (MAX_KEY_BYTES // 4 + 1), False),
    ]


async def test_one_key_rule_on_every_sql_backend(sql: Sql, edges: Any, users: Any) -> None:
    pb2, prism = edges
    trees = prism.TreeStore(sql.db)
    for bad, needle in (
        ("", "is empty"),
        ("a\x00b", "holds U+0000"),
        ("k" * (MAX_KEY_BYTES + 1), f"is {MAX_KEY_BYTES + 1} bytes long; the limit is {MAX_KEY_BYTES} bytes"),
    ):
        text = await refused(InvalidKey, lambda bad=bad: trees.put(pb2.Tree(tree_id=bad)), needle, "tree_id")
        assert isinstance(await refused(ValueError, lambda bad=bad: trees.get(bad)), str)
        assert "a\x00b" not in text
    await refused(InvalidKey, lambda: trees.get("\ud800"), "lone surrogate")
    await refused(InvalidKey, lambda: trees.put_many([pb2.Tree(tree_id="ok"), pb2.Tree()]), "is empty")
    assert await trees.get("ok") is None
    for key, allowed in long_keys():
        if allowed:
            await trees.put(pb2.Tree(tree_id=key))
            assert await trees.get(key) == pb2.Tree(tree_id=key)
        else:
            await refused(
                InvalidKey, lambda key=key: trees.put(pb2.Tree(tree_id=key)), "the limit is 1024 bytes"
            )
            await refused(InvalidKey, lambda key=key: trees.get(key), "the limit is 1024 bytes")
    # A key and a sort key both at the limit fit one primary-key entry (Postgres' B-tree holds ~2,700 bytes).
    leaves = prism.LeafStore(sql.db)
    widest = pb2.Leaf(tree=b"\x00" * MAX_KEY_BYTES, path="é" * (MAX_KEY_BYTES // 2))
    await leaves.put(widest)
    assert await leaves.get(widest.tree, widest.path) == widest
    await refused(InvalidKey, lambda: leaves.put(pb2.Leaf(tree=b"", path="p")), "key field tree is empty")
    await refused(InvalidKey, lambda: leaves.put(pb2.Leaf(tree=b"t", path="")), "key field path is empty")
    await refused(InvalidKey, lambda: leaves.get(b"x" * (MAX_KEY_BYTES + 1), "p"), "the limit is 1024 bytes")
    # Bytes keys may hold NUL: only text keys may not, because Postgres text cannot.
    await leaves.put(pb2.Leaf(tree=b"\x00", path="p"))
    assert await leaves.get(b"\x00", "p") == pb2.Leaf(tree=b"\x00", path="p")
    # The same rule on an entity whose writes go through the PII layer.
    upb2, uprism = users
    profiles = uprism.UserProfileStore(sql.db)
    await refused(
        InvalidKey, lambda: profiles.put(upb2.UserProfile(user_id="", email="a@example.com")), "is empty"
    )
    await refused(InvalidKey, lambda: profiles.get("a\x00"), "holds U+0000")


async def test_one_key_rule_on_every_series_backend(series_db: prism_runtime.Database, edges: Any) -> None:
    pb2, prism = edges
    series = prism.GrowthSeries(series_db)
    ticks = prism.TickSeries(series_db)
    tree = unique("tree")
    for bad, needle in (
        ("", "is empty"),
        ("a\x00", "holds U+0000"),
        ("k" * (MAX_KEY_BYTES + 1), "the limit"),
    ):
        event = pb2.Growth(tree_id=bad)
        event.at.FromDatetime(T0)
        await refused(InvalidKey, lambda event=event: series.append(event), needle)
        await refused(InvalidKey, lambda bad=bad: series.query(bad), needle)
    await refused(InvalidKey, lambda: series.query("\udfff"), "lone surrogate")
    await refused(TypeError, lambda: series.query(7), "key field tree_id takes str, got int")
    await refused(TypeError, lambda: series.tail(b"t"), "got bytes")
    await refused(TypeError, lambda: ticks.query("7"), "key field sensor takes int, got str")
    await refused(InvalidKey, lambda: ticks.query(2**31), "must be within -2147483648..2147483647")
    widest = tree + "é" * ((MAX_KEY_BYTES - len(tree)) // 2)
    event = pb2.Growth(tree_id=widest)
    event.at.FromDatetime(T0)
    await series.append(event)
    assert event in await collect(series.query(widest))
    tick = pb2.Tick(sensor=0)
    tick.at.FromDatetime(T0)
    await ticks.append(tick)  # 0 is a key like any other integer
    assert tick in await collect(ticks.query(0))


@pytest.fixture(params=STREAM_BACKENDS)
async def stream_db(request: pytest.FixtureRequest) -> AsyncIterator[prism_runtime.Database]:
    if request.param == "kafka":
        url = f"kafka://{request.getfixturevalue('kafka_bootstrap')}?idempotence=false"
    else:
        url = request.getfixturevalue("nats_url")
    async with prism_runtime.connect(url) as db:
        yield db


async def test_a_stream_record_another_producer_wrote_is_a_corrupt_row(
    stream_db: prism_runtime.Database, edges: Any
) -> None:
    pb2, prism = edges
    series = prism.GrowthSeries(stream_db)
    key = unique("tree")
    good = growth(pb2, key, 1)
    await series.append(good)
    junk = b"\x0a\xff" + SECRET.encode()  # a length-delimited field longer than the record
    backend = series._backend
    if isinstance(backend, KafkaTimeSeries):
        producer = await backend.backend.producer(series.namespace)
        partitions = await backend.backend.partitions(backend.topic, series.namespace)
        raw = key.encode()
        sent = await producer.send(
            backend.topic, value=junk, key=raw, partition=partition_of(raw, partitions)
        )
        await sent
    else:
        js = await backend.backend.jetstream(series.spec)
        await js.publish(subject_of(series.namespace, key), junk)
    with pytest.raises(CorruptRow) as caught:
        await collect(series.query(key))
    text = str(caught.value)
    assert f"tree_id={key!r}" in text and series.namespace in text and SECRET not in text
    assert caught.value.key == (key,)


def random_keys(seed: int, count: int) -> list[str]:
    """Return `count` text keys of mixed lengths from an alphabet with the awkward characters in it."""
    rng = random.Random(seed)
    alphabet = [
        "a",
        "Z",
        "0",
        " ",
        "'",
        '"',
        "\\",
        "\x00",
        "\x01",
        "\x7f",
        "é",
        "\u200b",
        "\uffff",
        "🔑",
        "\U0010ffff",
    ]
    keys = []
    for _ in range(count):
        size = rng.choice([0, 1, 2, 8, 100, 255, 256, 257, 511, 512, 1023, 1024, 1025, 1100])
        keys.append("".join(rng.choice(alphabet) for _ in range(size)))
    return keys


async def test_every_key_the_rule_accepts_round_trips_and_the_rest_are_refused(sql: Sql, edges: Any) -> None:
    pb2, prism = edges
    trees = prism.TreeStore(sql.db)
    leaves = prism.LeafStore(sql.db)
    accepted: set[str] = set()
    for key in random_keys(11, 150):
        allowed = 0 < len(key.encode()) <= MAX_KEY_BYTES and "\x00" not in key
        try:
            await trees.put(pb2.Tree(tree_id=key))
        except InvalidKey:
            assert not allowed
            with pytest.raises(InvalidKey):
                await trees.get(key)
        else:
            assert allowed
            accepted.add(key)
            assert await trees.get(key) == pb2.Tree(tree_id=key)
    assert 20 < len(accepted) < 130  # both outcomes, many times each
    # Every backend orders text keys by code point, as Python does.
    assert [t.tree_id for t in await collect(trees.scan())] == sorted(accepted)
    rng = random.Random(12)
    stored: set[bytes] = set()
    for _ in range(60):
        raw = rng.randbytes(rng.choice([0, 1, 3, 1023, 1024, 1025]))
        if 0 < len(raw) <= MAX_KEY_BYTES:
            await leaves.put(pb2.Leaf(tree=raw, path="p"))
            stored.add(raw)
            assert await leaves.get(raw, "p") == pb2.Leaf(tree=raw, path="p")
        else:
            with pytest.raises(InvalidKey):
                await leaves.put(pb2.Leaf(tree=raw, path="p"))
    assert len(stored) > 10


def random_branch(pb2: Any, rng: random.Random, here: Any) -> None:
    """Fill the Branch `here` with a random mix of children, list items, map values and a Struct or an Any."""
    for _ in range(rng.randrange(30, 100)):
        step = rng.choice(["child", "kids", "named", "named"])
        here = here.child if step == "child" else here.kids.add() if step == "kids" else here.named["k"]
        here.label = "x"
    end = rng.choice(["none", "struct", "any"])
    if end == "struct":
        node = here.attrs
        for _ in range(rng.randrange(1, 30)):
            node = node.fields["k"].struct_value
        node.fields["leaf"].string_value = "x"  # a Value with no kind set would read back as null
    elif end == "any":
        here.extra.Pack(nest(pb2, pb2.Branch(), "child", rng.randrange(1, 60)))


async def test_random_nestings_are_read_back_or_refused(sql: Sql, edges: Any) -> None:
    pb2, prism = edges
    store = prism.TreeStore(sql.db)
    rng = random.Random(7)
    outcomes = []
    for i in range(40):
        made = pb2.Tree(tree_id=f"r{i:02d}")
        random_branch(pb2, rng, made.root)
        try:
            await store.put(made)
        except MessageTooDeep:
            assert await store.get(made.tree_id) is None
            outcomes.append(False)
        else:
            assert await store.get(made.tree_id) == made
            outcomes.append(True)
    assert 5 < sum(outcomes) < 35


async def test_random_nestings_of_events_are_read_back_or_refused(
    series_db: prism_runtime.Database, edges: Any
) -> None:
    pb2, prism = edges
    series = prism.GrowthSeries(series_db)
    key = unique("tree")
    rng = random.Random(8)
    stored = []
    for i in range(24):
        event = growth(pb2, key, i)
        random_branch(pb2, rng, event.branch)
        try:
            await series.append(event)
        except MessageTooDeep:
            continue
        stored.append(event)
    assert 3 < len(stored) < 21
    assert await collect(series.query(key)) == stored
