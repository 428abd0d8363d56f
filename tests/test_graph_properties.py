"""Every traversal against a plain-Python reference, on random graphs: cycles, self-loops, strays.

Each example writes its graph under its own key range, so one database serves every example and no
example sees another's nodes (a traversal only reaches what is connected to its start).
"""

from __future__ import annotations

import importlib
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backends import BACKENDS, fresh_database
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import prism_runtime
from prism_runtime import Direction, Visit

# Key ranges per example (the database is fresh per module and backend, so any start would do).
_RANGES = itertools.count(random.randrange(1 << 20))
_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@dataclass
class RandomGraph:
    """A graph as the reference sees it: stored nodes with a color, edges with a weight."""

    colors: dict[int, int]  # only the nodes that are stored; edges may point at others
    edges: dict[tuple[int, int], int]
    bidirectional: bool

    def neighbors(
        self, node: int, direction: Direction, weight: int | None, color: int | None, fanout: int | None
    ) -> list[int]:
        """Return one hop from `node`, as the Graph contract defines it."""
        if self.bidirectional:
            direction = Direction.BOTH
        found = set()
        for (a, b), w in as_stored(self).items():
            if weight is not None and w != weight:
                continue
            if a == node and direction in (Direction.OUT, Direction.BOTH):
                found.add(b)
            if b == node and direction in (Direction.IN, Direction.BOTH):
                found.add(a)
        if color is not None:
            found = {n for n in found if self.colors.get(n) == color}
        return sorted(found)[:fanout]

    def edge_rows(
        self, node: int, direction: Direction, weight: int | None, limit: int | None
    ) -> list[tuple[int, int, int]]:
        """Return the stored edges at `node` as (source, target, weight), ordered by their other end."""
        if self.bidirectional:
            direction = Direction.BOTH
        rows = {}
        for (a, b), w in as_stored(self).items():
            if weight is not None and w != weight:
                continue
            if a == node and direction in (Direction.OUT, Direction.BOTH):
                rows[(a, b, w)] = b
            if b == node and direction in (Direction.IN, Direction.BOTH):
                rows[(a, b, w)] = a
        return sorted(rows, key=lambda row: rows[row])[:limit]

    def bfs(self, start: int, depth: int, *hop: Any) -> list[tuple[int, int]]:
        """Return (node, depth) in breadth-first order, key order within a depth."""
        out, seen, frontier = [(start, 0)], {start}, [start]
        for d in range(1, depth + 1):
            nxt = sorted({n for f in frontier for n in self.neighbors(f, *hop) if n not in seen})
            seen.update(nxt)
            out += [(n, d) for n in nxt]
            frontier = nxt
        return out

    def dfs(self, start: int, depth: int, *hop: Any) -> list[tuple[int, int]]:
        """Return (node, depth) in depth-first preorder; a node is visited the first time it is reached."""
        out, seen = [], {start}

        def visit(node: int, d: int) -> None:
            out.append((node, d))
            if d == depth:
                return
            for n in self.neighbors(node, *hop):
                if n not in seen:
                    seen.add(n)
                    visit(n, d + 1)

        visit(start, 0)
        return out


@st.composite
def random_graphs(draw: st.DrawFn, bidirectional: bool) -> RandomGraph:
    size = draw(st.integers(1, 9))
    nodes = st.integers(0, size - 1)
    stored = draw(st.sets(nodes, min_size=size // 2))
    edges = draw(st.dictionaries(st.tuples(nodes, nodes), st.integers(0, 2), max_size=size * 3))
    if bidirectional:
        # The same undirected edge written both ways, often with another weight: one edge, the later wins.
        for a, b in draw(st.lists(st.sampled_from(sorted(edges)))) if edges else []:
            edges[(b, a)] = draw(st.integers(0, 2))
    colors = {n: draw(st.integers(0, 1)) for n in sorted(stored)}
    return RandomGraph(colors, edges, bidirectional)


def as_stored(graph: RandomGraph) -> dict[tuple[int, int], int]:
    """Return the edges as the store keeps them: an undirected (b, a) is (a, b), the later write wins."""
    if not graph.bidirectional:
        return graph.edges
    return {(min(a, b), max(a, b)): w for (a, b), w in graph.edges.items()}


@dataclass
class Query:
    """One traversal's arguments."""

    start: int
    other: int
    depth: int
    direction: Direction
    weight: int | None
    color: int | None
    fanout: int | None


queries = st.builds(
    Query,
    start=st.integers(0, 8),
    other=st.integers(0, 9),
    depth=st.integers(0, 4),
    direction=st.sampled_from(list(Direction)),
    weight=st.none() | st.integers(0, 2),
    color=st.none() | st.integers(0, 1),
    fanout=st.none() | st.integers(1, 3),
)


@pytest.fixture(params=BACKENDS, scope="module")
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, generated: Path
) -> AsyncIterator[prism_runtime.Database]:
    async with fresh_database(request, tmp_path_factory.mktemp("graph"), generated) as handle:
        yield handle


async def check(db: prism_runtime.Database, edge_name: str, graph: RandomGraph, query: Query) -> None:
    """Store `graph` under a fresh key range and compare every traversal with the reference."""
    pb2 = importlib.import_module("prismtest.graph.v1.graph_pb2")
    prism = importlib.import_module("prismtest.graph.v1.graph_prism")
    base = next(_RANGES) * 10 * (-1 if query.start % 2 else 1)  # negative keys too

    def key(n: int) -> int:
        return base + n

    client = getattr(prism, f"{edge_name}Graph")(db)
    message = getattr(pb2, edge_name)
    ends = ("src", "dst") if edge_name == "Arc" else ("a", "b")
    await client.add_nodes(pb2.Vertex(id=key(n), color=c) for n, c in graph.colors.items())
    await client.add_edges(
        message(**{ends[0]: key(a), ends[1]: key(b)}, weight=w) for (a, b), w in graph.edges.items()
    )
    hop = (query.direction, query.weight, query.color, query.fanout)
    kwargs: dict[str, Any] = {
        "direction": query.direction,
        "edge_filter": None if query.weight is None else {"weight": query.weight},
        "node_filter": None if query.color is None else {"color": query.color},
        "fanout": query.fanout,
    }
    start = key(query.start)

    def keys(pairs: list[tuple[int, int]]) -> list[Visit[int]]:
        return [Visit(key(n), d) for n, d in pairs]

    limit = kwargs.pop("fanout")
    expected_neighbors = [key(n) for n in graph.neighbors(query.start, *hop)]
    assert await client.neighbors(start, **kwargs, limit=limit) == expected_neighbors
    for direction, read in ((Direction.OUT, client.out_edges), (Direction.IN, client.in_edges)):
        got = [
            (getattr(e, ends[0]) - base, getattr(e, ends[1]) - base, e.weight)
            for e in await read(start, edge_filter=kwargs["edge_filter"], limit=limit)
        ]
        assert got == graph.edge_rows(query.start, direction, query.weight, limit)
    kwargs["fanout"] = limit
    assert await client.bfs(start, query.depth, **kwargs) == keys(graph.bfs(query.start, query.depth, *hop))
    assert await client.dfs(start, query.depth, **kwargs) == keys(graph.dfs(query.start, query.depth, *hop))
    reach = graph.bfs(query.start, query.depth, *hop)
    assert await client.k_hop_count(start, query.depth, **kwargs) == len(reach) - 1
    distance = dict(reach).get(query.other)
    path = await client.shortest_path(start, key(query.other), query.depth, **kwargs)
    if distance is None:
        assert path is None
    else:
        assert path is not None and len(path) == distance + 1
        assert path[0] == start and path[-1] == key(query.other)
        for a, b in itertools.pairwise(path):
            assert b - base in graph.neighbors(a - base, *hop)


@_SETTINGS
@given(graph=random_graphs(bidirectional=False), query=queries)
async def test_directed_traversals_match_the_reference(
    db: prism_runtime.Database, graph: RandomGraph, query: Query
) -> None:
    await check(db, "Arc", graph, query)


@_SETTINGS
@given(graph=random_graphs(bidirectional=True), query=queries)
@example(
    graph=RandomGraph({0: 0, 1: 0}, {(0, 1): 0, (1, 0): 1}, bidirectional=True),
    query=Query(start=0, other=1, depth=1, direction=Direction.OUT, weight=0, color=None, fanout=None),
)
async def test_undirected_traversals_match_the_reference(
    db: prism_runtime.Database, graph: RandomGraph, query: Query
) -> None:
    await check(db, "Link", graph, query)
