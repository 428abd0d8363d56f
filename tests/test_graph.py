"""The Graph contract, through freshly generated clients, on every backend that serves it."""

from __future__ import annotations

import importlib
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from backends import BACKENDS, fresh_database
from conftest import ROOT
from styles import STYLES, Twins, styled

import prism_runtime
from prism_runtime import Direction, Visit


@pytest.fixture(params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path
) -> AsyncIterator[prism_runtime.Database]:
    async with fresh_database(request, tmp_path, generated) as handle:
        yield handle


@pytest.fixture(params=STYLES)
def social(request: pytest.FixtureRequest, generated: Path) -> Iterator[tuple[ModuleType, Any]]:
    """The generated module in each client style (tests/styles.py): one suite proves async and blocking."""
    twins = Twins()
    yield (
        importlib.import_module("acme.social.v1.social_pb2"),
        styled(importlib.import_module("acme.social.v1.social_prism"), request.param, twins),
    )
    twins.close()


async def follows(db: prism_runtime.Database, social: Any, pairs: str, prefix: str) -> Any:
    """Return a FollowsGraph holding person nodes and edges named by letter pairs ("ab bc ...")."""
    pb2, prism = social
    graph = prism.FollowsGraph(db)
    names = sorted({c for pair in pairs.split() for c in pair})
    await graph.add_nodes(pb2.Person(person_id=prefix + n, city="Oslo" if n < "d" else "Rome") for n in names)
    await graph.add_edges(
        pb2.Follows(follower_id=prefix + p[0], followee_id=prefix + p[1], muted=p[0] == "b")
        for p in pairs.split()
    )
    return graph


def strip(prefix: str, keys: list[str]) -> str:
    return "".join(k.removeprefix(prefix) for k in keys)


async def test_nodes_and_edges_round_trip(db: prism_runtime.Database, social: Any) -> None:
    pb2, prism = social
    graph = prism.FollowsGraph(db)
    ada = pb2.Person(person_id="rt-ada", name="Ada", city="London", verified=True)
    await graph.add_node(ada)
    assert await graph.get_node("rt-ada") == ada
    assert await graph.get_nodes(["rt-nobody", "rt-ada"]) == [None, ada]
    edge = pb2.Follows(follower_id="rt-ada", followee_id="rt-bob", muted=True)
    edge.since.FromSeconds(1_700_000_000)
    await graph.add_edge(edge)
    assert await graph.get_edge("rt-ada", "rt-bob") == edge
    assert await graph.get_edge("rt-bob", "rt-ada") is None
    await graph.add_edge(pb2.Follows(follower_id="rt-ada", followee_id="rt-bob"))  # same ends: replaces
    assert await graph.out_edges("rt-ada") == [pb2.Follows(follower_id="rt-ada", followee_id="rt-bob")]
    assert await graph.in_edges("rt-bob") == [pb2.Follows(follower_id="rt-ada", followee_id="rt-bob")]
    assert await graph.remove_edge("rt-ada", "rt-bob") is True
    assert await graph.remove_edge("rt-ada", "rt-bob") is False
    assert await graph.remove_node("rt-ada") is True
    assert await graph.get_node("rt-ada") is None


async def test_neighbors_each_way_with_filters_and_limit(db: prism_runtime.Database, social: Any) -> None:
    graph = await follows(db, social, "ab ac ad ba ca aa be", "n-")
    assert strip("n-", await graph.neighbors("n-a")) == "abcd"
    assert strip("n-", await graph.neighbors("n-a", Direction.IN)) == "abc"
    assert strip("n-", await graph.neighbors("n-a", "both")) == "abcd"
    assert strip("n-", await graph.neighbors("n-a", limit=2)) == "ab"
    assert strip("n-", await graph.neighbors("n-a", "in", edge_filter={"muted": True})) == "b"
    assert strip("n-", await graph.neighbors("n-a", node_filter={"city": "Rome"})) == "d"
    # Edges to a node that was never stored are followed, except when a node filter must look at it.
    assert await graph.remove_node("n-e") is True
    assert strip("n-", await graph.neighbors("n-b")) == "ae"
    assert strip("n-", await graph.neighbors("n-b", node_filter={"city": "Oslo"})) == "a"
    assert await graph.neighbors("n-zz") == []


async def test_traversals_handle_cycles_self_loops_and_unreachable_targets(
    db: prism_runtime.Database, social: Any
) -> None:
    graph = await follows(db, social, "ab bc ca cc cd xy", "t-")
    bfs = await graph.bfs("t-a", 5)
    assert [(v.node.removeprefix("t-"), v.depth) for v in bfs] == [("a", 0), ("b", 1), ("c", 2), ("d", 3)]
    assert isinstance(bfs[0], Visit)
    assert [v.node for v in await graph.bfs("t-a", 1)] == ["t-a", "t-b"]
    assert await graph.bfs("t-a", 0) == [Visit("t-a", 0)]
    both = [(v.node.removeprefix("t-"), v.depth) for v in await graph.bfs("t-a", 5, direction="both")]
    assert both == [("a", 0), ("b", 1), ("c", 1), ("d", 2)]
    deep = [(v.node.removeprefix("t-"), v.depth) for v in await graph.dfs("t-a", 5, direction="both")]
    assert deep == [("a", 0), ("b", 1), ("c", 2), ("d", 3)]
    assert [v.node for v in await graph.dfs("t-a", 2, direction="both")] == ["t-a", "t-b", "t-c"]
    assert strip("t-", await graph.shortest_path("t-a", "t-d", 5)) == "abcd"
    assert await graph.shortest_path("t-a", "t-d", 2) is None
    assert await graph.shortest_path("t-a", "t-y", 10) is None
    assert await graph.shortest_path("t-d", "t-a", 10, direction=Direction.IN) == ["t-d", "t-c", "t-b", "t-a"]
    assert await graph.shortest_path("t-a", "t-a", 0) == ["t-a"]
    assert await graph.k_hop_count("t-a", 2) == 2
    assert await graph.k_hop_count("t-x", 3) == 1
    assert await graph.bfs("t-a", 5, edge_filter={"muted": False}) == [Visit("t-a", 0), Visit("t-b", 1)]


async def test_bidirectional_edges_are_followed_both_ways(db: prism_runtime.Database, social: Any) -> None:
    pb2, prism = social
    knows = prism.KnowsGraph(db)
    await knows.add_edges(
        [
            pb2.Knows(a_id="k-a", b_id="k-b", context="school"),
            pb2.Knows(a_id="k-c", b_id="k-a", context="work"),
        ]
    )
    assert await knows.neighbors("k-a") == ["k-b", "k-c"]
    assert await knows.neighbors("k-a", Direction.OUT) == await knows.neighbors("k-a", Direction.IN)
    assert await knows.shortest_path("k-b", "k-c", 2) == ["k-b", "k-a", "k-c"]
    assert await knows.neighbors("k-a", edge_filter={"context": "work"}) == ["k-c"]
    # Stored once, smaller key first: either order names the same edge.
    stored = pb2.Knows(a_id="k-a", b_id="k-c", context="work")
    assert await knows.get_edge("k-c", "k-a") == stored
    assert await knows.get_edge("k-a", "k-c") == stored
    await knows.add_edge(pb2.Knows(a_id="k-b", b_id="k-a", context="club"))
    assert await knows.out_edges("k-a") == [pb2.Knows(a_id="k-a", b_id="k-b", context="club"), stored]
    assert await knows.in_edges("k-c") == await knows.out_edges("k-c") == [stored]
    assert await knows.remove_edge("k-c", "k-a") is True
    assert await knows.get_edge("k-a", "k-c") is None


async def test_edges_between_two_node_types(db: prism_runtime.Database, social: Any) -> None:
    pb2, prism = social
    likes, posts = prism.LikesEdges(db), prism.PostNodes(db)
    await posts.add_nodes(pb2.Post(post_id=i, title=f"post {i}") for i in (-3, 7, 12))
    love, like = pb2.Likes.REACTION_LOVE, pb2.Likes.REACTION_LIKE
    await likes.add_edges(
        [
            pb2.Likes(person_id="l-ada", post_id=12, reaction=love),
            pb2.Likes(person_id="l-ada", post_id=-3, reaction=like),
            pb2.Likes(person_id="l-bob", post_id=12, reaction=like),
        ]
    )
    assert await likes.targets("l-ada") == [-3, 12]
    assert await likes.sources(12) == ["l-ada", "l-bob"]
    assert await likes.sources(12, edge_filter={"reaction": love}) == ["l-ada"]
    assert [p.title for p in await posts.get_nodes(await likes.targets("l-ada")) if p] == [
        "post -3",
        "post 12",
    ]


async def test_bad_arguments_say_what_is_allowed(db: prism_runtime.Database, social: Any) -> None:
    graph = await follows(db, social, "ab", "e-")
    with pytest.raises(
        ValueError, match="'since' is not a filterable field; allowed: followee_id, follower_id, muted"
    ):
        await graph.neighbors("e-a", edge_filter={"since": 0})
    with pytest.raises(ValueError, match="'joined_at' is not a filterable field"):
        await graph.bfs("e-a", 2, node_filter={"joined_at": 0})
    with pytest.raises(ValueError, match="max_depth must be 0 or more, got -1"):
        await graph.bfs("e-a", -1)
    with pytest.raises(ValueError, match="fan-out limit must be at least 1"):
        await graph.bfs("e-a", 2, fanout=0)
    with pytest.raises(ValueError, match="direction 'sideways' is not one of: out, in, both"):
        await graph.neighbors("e-a", "sideways")


async def test_use_before_open_is_a_typed_error(social: Any) -> None:
    _, prism = social
    with pytest.raises(prism_runtime.NotOpen, match="acme_social_v1_follows"):
        prism.FollowsGraph(prism_runtime.connect("sqlite://"))


async def test_sqlite_hops_read_the_forward_key_and_the_reverse_index(tmp_path: Path, social: Any) -> None:
    pb2, prism = social
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'plan.db'}") as db:
        graph = prism.FollowsGraph(db)
        await graph.add_edge(pb2.Follows(follower_id="a", followee_id="b"))
    conn = sqlite3.connect(tmp_path / "plan.db")
    indexes = {row[1] for row in conn.execute("PRAGMA index_list('acme_social_v1_follows')")}
    assert "acme_social_v1_follows__followee_id__follower_id__idx" in indexes
    plan = " ".join(
        str(row[3])
        for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT follower_id FROM acme_social_v1_follows WHERE followee_id IN (?, ?)",
            ("a", "b"),
        )
    )
    assert "acme_social_v1_follows__followee_id__follower_id__idx" in plan
    conn.close()


def test_example_program_runs(tmp_path: Path, generated: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(generated), "PRISM_URL": f"sqlite:///{tmp_path / 'social.db'}"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "social.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ada -> dee, shortest: ['ada', 'bob', 'cy', 'dee']" in done.stdout.splitlines()
    assert "dee knows: ['ada'] | ada knows: ['dee']" in done.stdout.splitlines()


async def test_down_postgres_is_a_typed_error_naming_the_edge_namespace(social: Any) -> None:
    _, prism = social
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free now, and nothing listens on it
    async with prism_runtime.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres") as db:
        with pytest.raises(prism_runtime.BackendUnavailable) as caught:
            await prism.FollowsGraph(db).bfs("secret-person-key", 2)
    assert caught.value.namespace == "acme_social_v1_follows"
    assert "secret-person-key" not in str(caught.value)
