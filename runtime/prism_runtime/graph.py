"""The Graph abstraction: typed nodes and edges, and bounded traversals over them (Netflix Graph).

Nodes are a map from node key to message. Edges are keyed by (source, target) and readable both ways.
Every traversal takes a start node and a maximum depth, and runs one backend query per hop
(`GraphBackend.expand`) with the visited set kept here, so its cost follows the part of the graph it
reaches, never the paths through it. Generated `<Edge>Graph` and `<Node>Nodes` classes subclass these
with their message, key and filter types; see docs/graph.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from itertools import repeat
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypeVar

from google.protobuf.message import Message

from prism_runtime import telemetry
from prism_runtime.inputs import key_check, message_checks
from prism_runtime.keyvalue import KeyValueSource
from prism_runtime.schema import EntitySpec

E = TypeVar("E", bound=Message)
N = TypeVar("N", bound=Message)
# Node keys are what a key field may hold; they sort, which keeps every traversal deterministic.
K = TypeVar("K", str, bytes, int)
S = TypeVar("S", str, bytes, int)
T = TypeVar("T", str, bytes, int)
EF = TypeVar("EF", bound=Mapping[str, Any])
NF = TypeVar("NF", bound=Mapping[str, Any])

DEFAULT_FANOUT = 1000
"""Neighbors followed per node and hop when a call does not say: a traversal stays bounded by default."""


class Direction(StrEnum):
    """Which way a hop follows edges: source to target, target to source, or both."""

    OUT = "out"
    IN = "in"
    BOTH = "both"


DirectionLike = Direction | Literal["out", "in", "both"]


class Visit(NamedTuple, Generic[K]):
    """A node a traversal reached, and in how many hops."""

    node: K
    depth: int


class GraphBackend(Protocol[E]):
    """What a backend implements to serve one edge type; node reads go through its KeyValue backend."""

    async def put_edges(self, edges: Sequence[E]) -> None:
        """Insert or replace edges atomically (an edge is identified by its source and target)."""
        ...

    async def get_edge(self, source: Any, target: Any) -> E | None:
        """Return the edge from `source` to `target`."""
        ...

    async def delete_edge(self, source: Any, target: Any) -> int:
        """Delete the edge from `source` to `target`; return how many went (0 or 1)."""
        ...

    async def expand(
        self,
        frontier: Sequence[Any],
        *,
        direction: Direction,
        edge_filter: Mapping[str, Any],
        node_filter: Mapping[str, Any],
        fanout: int | None,
    ) -> list[tuple[Any, Any]]:
        """Return (node, neighbor) pairs of one hop: per frontier node its first `fanout` distinct neighbors.

        Neighbors are in key order; edges must match `edge_filter` and neighbors `node_filter` (equality
        on fields; a node filter skips neighbors that have no stored node).
        """
        ...

    async def edges(
        self, node: Any, *, direction: Direction, edge_filter: Mapping[str, Any], limit: int | None
    ) -> list[E]:
        """Return the edges at `node` in `direction`, ordered by the key at their other end."""
        ...


class GraphSource(KeyValueSource, Protocol):
    """What a graph's stores call on the Database they are made with: the Graph backend of an edge type, and
    (KeyValueSource) the KeyValue backend of its nodes and what telemetry reads. Stated here, since the
    Database is built over this abstraction."""

    def graph(self, spec: EntitySpec, message: type[E], node_spec: EntitySpec | None) -> GraphBackend[E]:
        """Return the Graph backend serving the edge type `spec` (node_spec: the node type at both ends)."""
        ...


class NodeStore(Generic[N, K]):
    """The nodes of one graph_node message: a map from node key to message."""

    def __init__(self, db: KeyValueSource, spec: EntitySpec, message: type[N]) -> None:
        self.spec = spec
        self.message_type = message
        self._kv = telemetry.keyvalue(db.keyvalue(spec, message), db, spec)
        self._admit, self._admit_all = message_checks(spec, message)
        self._key = key_check(spec.namespace, spec.column(spec.key))

    async def add_node(self, node: N) -> None:
        """Insert `node`, replacing the node with the same key."""
        self._admit(node)
        await self._kv.put((node,))

    async def add_nodes(self, nodes: Iterable[N]) -> None:
        """Insert or replace all `nodes` in one atomic batch."""
        await self._kv.put(self._admit_all(nodes))

    async def get_node(self, key: K) -> N | None:
        """Return the node with `key`, or None."""
        return await self._kv.get((self._key(key),))

    async def get_nodes(self, keys: Sequence[K]) -> list[N | None]:
        """Return the nodes with `keys` in the same order, None where missing."""
        check = self._key
        return await self._kv.get_many([(check(k),) for k in keys])

    async def remove_node(self, key: K) -> bool:
        """Delete the node with `key`; return whether there was one. Its edges stay (see docs/graph.md)."""
        return await self._kv.delete((self._key(key),)) > 0


NM = TypeVar("NM")
"""A node message of either style: a protobuf message, or another class a store converts from (adapted.py)."""
KC = TypeVar("KC", str, bytes, int, contravariant=True)


class NodeCalls(Protocol[NM, KC]):
    """What a graph's node store answers: NodeStore here, adapted.NodeStore for another message class."""

    async def add_node(self, node: NM) -> None: ...
    async def add_nodes(self, nodes: Iterable[NM]) -> None: ...
    async def get_node(self, key: KC) -> NM | None: ...
    async def get_nodes(self, keys: Sequence[KC]) -> list[NM | None]: ...
    async def remove_node(self, key: KC) -> bool: ...


class GraphNodes(Generic[NM, K]):
    """A graph's node operations, each its node store's (`nodes`): one object holds a graph's nodes and edges."""

    nodes: NodeCalls[NM, K]

    async def add_node(self, node: NM) -> None:
        """Insert `node`, replacing the node with the same key."""
        await self.nodes.add_node(node)

    async def add_nodes(self, nodes: Iterable[NM]) -> None:
        """Insert or replace all `nodes` in one atomic batch."""
        await self.nodes.add_nodes(nodes)

    async def get_node(self, key: K) -> NM | None:
        """Return the node with `key`, or None."""
        return await self.nodes.get_node(key)

    async def get_nodes(self, keys: Sequence[K]) -> list[NM | None]:
        """Return the nodes with `keys` in the same order, None where missing."""
        return await self.nodes.get_nodes(keys)

    async def remove_node(self, key: K) -> bool:
        """Delete the node with `key`; return whether there was one. Its edges stay (see docs/graph.md)."""
        return await self.nodes.remove_node(key)


class EdgeStore(Generic[E, S, T, EF]):
    """The edges of one graph_edge message between source nodes keyed by S and target nodes keyed by T."""

    def __init__(
        self, db: GraphSource, spec: EntitySpec, message: type[E], node_spec: EntitySpec | None = None
    ) -> None:
        self.spec = spec
        self.message_type = message
        self._graph: GraphBackend[E] = telemetry.graph(db.graph(spec, message, node_spec), db, spec, self)
        self._admit, self._admit_all = message_checks(spec, message)
        assert spec.edge_source is not None and spec.edge_target is not None, "an edge names both its ends"
        self._source = key_check(spec.namespace, spec.column(spec.edge_source))
        self._target = key_check(spec.namespace, spec.column(spec.edge_target))

    @property
    def namespace(self) -> str:
        """Return the namespace the edges live in."""
        return self.spec.namespace

    async def add_edge(self, edge: E) -> None:
        """Insert `edge`, replacing the edge with the same source and target."""
        self._admit(edge)
        await self._graph.put_edges((self._stored(edge),))

    async def add_edges(self, edges: Iterable[E]) -> None:
        """Insert or replace all `edges` in one atomic batch."""
        await self._graph.put_edges([self._stored(e) for e in self._admit_all(edges)])

    async def get_edge(self, source: S, target: T) -> E | None:
        """Return the edge from `source` to `target`, or None."""
        return await self._graph.get_edge(*self._ends(source, target))

    async def remove_edge(self, source: S, target: T) -> bool:
        """Delete the edge from `source` to `target`; return whether there was one."""
        return await self._graph.delete_edge(*self._ends(source, target)) > 0

    def _way(self, direction: Direction) -> Direction:
        # An undirected edge has no in or out: every read follows it both ways.
        return Direction.BOTH if self.spec.bidirectional else direction

    def _ends(self, source: Any, target: Any) -> tuple[Any, Any]:
        source, target = self._source(source), self._target(target)
        # An undirected edge is stored once, smaller key first, so (a, b) and (b, a) name the same edge.
        if self.spec.bidirectional and target < source:
            return target, source
        return source, target

    def _stored(self, edge: E) -> E:
        """Return `edge` as it is stored: undirected edges with the smaller key as the source."""
        source, target = self.spec.edge_source or "", self.spec.edge_target or ""
        if not self.spec.bidirectional or getattr(edge, source) <= getattr(edge, target):
            return edge
        flipped = self.message_type()
        flipped.CopyFrom(edge)
        setattr(flipped, source, getattr(edge, target))
        setattr(flipped, target, getattr(edge, source))
        return flipped

    async def targets(
        self, source: S, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[T]:
        """Return the keys `source`'s edges lead to, in key order, at most `limit`."""
        return [
            t for _, t in await self._hop([self._source(source)], Direction.OUT, edge_filter, None, limit)
        ]

    async def sources(
        self, target: T, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[S]:
        """Return the keys whose edges lead to `target`, in key order, at most `limit`."""
        return [s for _, s in await self._hop([self._target(target)], Direction.IN, edge_filter, None, limit)]

    async def out_edges(
        self, source: S, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[E]:
        """Return the edges from `source`, ordered by target, at most `limit`."""
        return await self._edges(self._source(source), Direction.OUT, edge_filter, limit)

    async def in_edges(
        self, target: T, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[E]:
        """Return the edges to `target`, ordered by source, at most `limit`."""
        return await self._edges(self._target(target), Direction.IN, edge_filter, limit)

    async def _edges(
        self, key: Any, direction: Direction, edge_filter: EF | None, limit: int | None
    ) -> list[E]:
        return await self._graph.edges(
            key, direction=self._way(direction), edge_filter=edge_filter or {}, limit=_limit(limit)
        )

    async def _hop(
        self,
        frontier: Sequence[Any],
        direction: Direction,
        edge_filter: Mapping[str, Any] | None,
        node_filter: Mapping[str, Any] | None,
        fanout: int | None,
    ) -> list[tuple[Any, Any]]:
        return await self._graph.expand(
            frontier,
            direction=self._way(direction),
            edge_filter=edge_filter or {},
            node_filter=node_filter or {},
            fanout=_limit(fanout),
        )


class Graph(EdgeStore[E, K, K, EF], GraphNodes[N, K], Generic[E, N, K, EF, NF]):
    """One edge type between nodes of one type: the nodes, the edges, and traversals over them."""

    def __init__(
        self,
        db: GraphSource,
        spec: EntitySpec,
        message: type[E],
        node_spec: EntitySpec,
        node_message: type[N],
    ) -> None:
        super().__init__(db, spec, message, node_spec)
        self.nodes: NodeStore[N, K] = NodeStore(db, node_spec, node_message)

    async def neighbors(
        self,
        node: K,
        direction: DirectionLike = Direction.OUT,
        *,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        limit: int | None = DEFAULT_FANOUT,
    ) -> list[K]:
        """Return the distinct neighbors of `node` one hop away in `direction`, in key order, at most `limit`."""
        start = self._source(node)
        return [
            n for _, n in await self._hop([start], _direction(direction), edge_filter, node_filter, limit)
        ]

    async def bfs(
        self,
        start: K,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[Visit[K]]:
        """Return every node within `max_depth` hops of `start`, nearest first, in key order within a depth."""
        visits, _ = await self._breadth_first(
            start, max_depth, direction, edge_filter, node_filter, fanout, keep_adjacency=False
        )
        return visits

    async def dfs(
        self,
        start: K,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[Visit[K]]:
        """Return the nodes within `max_depth` hops of `start` in depth-first preorder (neighbors in key order)."""
        _, adjacency = await self._breadth_first(
            start, max_depth, direction, edge_filter, node_filter, fanout
        )
        # The hops above fetched the adjacency of every node closer than max_depth: all a depth-limited
        # walk can expand, since a walk reaches no node in fewer hops than its distance.
        order = [Visit(start, 0)]
        seen = {start}
        stack = [(0, iter(adjacency.get(start, ())))]
        while stack:
            depth, pending = stack[-1]
            for node in pending:
                if node not in seen:
                    seen.add(node)
                    order.append(Visit(node, depth + 1))
                    if depth + 1 < max_depth:
                        stack.append((depth + 1, iter(adjacency.get(node, ()))))
                    break
            else:
                stack.pop()
        return order

    async def shortest_path(
        self,
        source: K,
        target: K,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[K] | None:
        """Return a shortest path [source, ..., target] of at most `max_depth` hops, or None if there is none."""
        _check_depth(max_depth)
        source, target = self._source(source), self._source(target)
        if source == target:
            return [source]
        parent: dict[K, K] = {}
        seen = {source}
        frontier = [source]
        for _ in range(max_depth):
            if not frontier:
                break
            found: dict[K, K] = {}
            for node, neighbor in await self._hop(
                frontier, _direction(direction), edge_filter, node_filter, fanout
            ):
                if neighbor not in seen and (neighbor not in found or node < found[neighbor]):
                    found[neighbor] = node
            parent.update(found)
            if target in found:
                # Stop at the hop that reaches the target: nothing further can be shorter.
                path = [target]
                while path[-1] != source:
                    path.append(parent[path[-1]])
                return path[::-1]
            seen.update(found)
            frontier = sorted(found)
        return None

    async def k_hop_count(
        self,
        start: K,
        k: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> int:
        """Return how many distinct nodes other than `start` are within `k` hops of it."""
        visits, _ = await self._breadth_first(
            start, k, direction, edge_filter, node_filter, fanout, keep_adjacency=False
        )
        return len(visits) - 1

    async def _breadth_first(
        self,
        start: K,
        max_depth: int,
        direction: DirectionLike,
        edge_filter: EF | None,
        node_filter: NF | None,
        fanout: int | None,
        *,
        keep_adjacency: bool = True,
    ) -> tuple[list[Visit[K]], dict[K, list[K]]]:
        _check_depth(max_depth)
        start = self._source(start)
        visits = [Visit(start, 0)]
        adjacency: dict[K, list[K]] = {}
        seen = {start}
        frontier = [start]
        for depth in range(1, max_depth + 1):
            if not frontier:
                break
            pairs = await self._hop(frontier, _direction(direction), edge_filter, node_filter, fanout)
            if keep_adjacency:
                for node, neighbor in pairs:
                    adjacency.setdefault(node, []).append(neighbor)
            found = sorted({n for _, n in pairs if n not in seen})
            seen.update(found)
            # _make skips the per-call argument handling of a NamedTuple's __new__: a bfs builds many.
            visits.extend(map(Visit._make, zip(found, repeat(depth))))
            frontier = found
        for neighbors in adjacency.values():
            neighbors.sort()
        return visits, adjacency


def _direction(value: DirectionLike) -> Direction:
    try:
        return Direction(value)
    except ValueError:
        raise ValueError(f"direction {value!r} is not one of: {', '.join(Direction)}") from None


def _check_depth(max_depth: int) -> None:
    if max_depth < 0:
        raise ValueError(f"max_depth must be 0 or more, got {max_depth}")


def _limit(limit: int | None) -> int | None:
    if limit is not None and limit < 1:
        raise ValueError(f"a fan-out limit must be at least 1 (or None for no limit), got {limit}")
    return limit
