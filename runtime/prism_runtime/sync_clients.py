"""The blocking twins of the KeyValue, TimeSeries and Graph classes, for a SyncDatabase (`connect_sync`).

Each method makes the async class's coroutine and runs it through the database's runner for its namespace:
`drive` on the caller's thread for a backend with a blocking driver (SQLite, Postgres), the private loop
thread otherwise (Kafka, NATS). The logic itself (input checks, paging, traversals, PII) is the async
class's; nothing here does more than run it. Generated `<Message>SyncStore`, `<Message>SyncSeries`,
`<Node>SyncNodes`, `<Edge>SyncEdges` and `<Edge>SyncGraph` classes subclass these with their types.

Each class builds the protobuf async store itself, or runs the one it is given: a store of prism_runtime.adapted
(same methods, another message class), which is how prism_runtime.betterproto's blocking stores are made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from google.protobuf.message import Message

from prism_runtime import adapted
from prism_runtime.graph import (
    DEFAULT_FANOUT,
    Direction,
    DirectionLike,
    EdgeStore,
    Graph,
    NodeStore,
    Visit,
)
from prism_runtime.keyvalue import (
    DEFAULT_PAGE_BYTES,
    DEFAULT_PAGE_SIZE,
    KeyValueStore,
    OnCorrupt,
    SortedKeyValueStore,
)
from prism_runtime.schema import EntitySpec
from prism_runtime.timeseries import Tail, TimeBound, TimeSeries

if TYPE_CHECKING:
    from prism_runtime.sync_database import Runner, SyncDatabase

# The message classes callers give and get: protobuf classes, or an adapted store's (betterproto dataclasses).
M = TypeVar("M")
E = TypeVar("E")
N = TypeVar("N")
K = TypeVar("K")
S = TypeVar("S")
NK = TypeVar("NK", str, bytes, int)
SK = TypeVar("SK", str, bytes, int)
TK = TypeVar("TK", str, bytes, int)
EF = TypeVar("EF", bound=Mapping[str, Any])
NF = TypeVar("NF", bound=Mapping[str, Any])


class _Client:
    """What every blocking client holds: its spec, the runner of its namespace, and (as `_aio`, set by each
    subclass) the async object whose coroutines it runs."""

    def __init__(self, db: SyncDatabase, spec: EntitySpec, message: type[Any]) -> None:
        self.spec = spec
        self.message_type = message
        self._runner: Runner = db.runner(spec)
        self._run = self._runner.run

    @property
    def namespace(self) -> str:
        """Return the namespace this client reads and writes."""
        return self.spec.namespace


class _SyncStore(_Client, Generic[M]):
    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[M],
        store: KeyValueStore[Any, Any]
        | SortedKeyValueStore[Any, Any, Any]
        | adapted.KeyValueStore[M, Any]
        | adapted.SortedKeyValueStore[M, Any, Any],
    ) -> None:
        super().__init__(db, spec, message)
        self._aio = store

    def put(self, item: M) -> None:
        """Insert `item`, replacing any item with the same key."""
        self._run(self._aio.put(item))

    def put_many(self, items: Iterable[M]) -> None:
        """Insert or replace all `items` in one atomic batch."""
        self._run(self._aio.put_many(items))

    def _find_by(self, field: str, value: str | bytes) -> list[M]:
        """Return the items whose encrypted, searchable `field` equals `value` (generated find_by_<field>)."""
        return self._run(self._aio._find_by(field, value))

    def _put_expiring(self, items: Iterable[M], ttl: timedelta | None) -> None:
        """Put `items` expiring after `ttl`, or the entity's TTL (the generated put and put_many of a TTL entity)."""
        self._run(self._aio._put_expiring(items, ttl))

    def _find_by_index(self, field: str, value: Any, limit: int, after: tuple[Any, ...] | None) -> list[M]:
        """Return up to `limit` items whose indexed `field` equals `value`, after the key `after` (find_by_<field>)."""
        return self._run(self._aio._find_by_index(field, value, limit, after))


class SyncKeyValueStore(_SyncStore[M], Generic[M, K]):
    """A map from key to message, for blocking code."""

    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[M],
        store: adapted.KeyValueStore[M, K] | None = None,
    ) -> None:
        if store is None:
            own: KeyValueStore[Any, K] = KeyValueStore(db.aio, spec, cast("type[Message]", message))
            # The point read calls the async store's own key check and backend method, with no frame of its own
            # between them and this one: a get is the call programs make most.
            self._check_key = own._key
            self._backend_get = own._backend.get
        self._store: KeyValueStore[Any, K] | adapted.KeyValueStore[M, K] = own if store is None else store
        super().__init__(db, spec, message, self._store)

    def _after(self, key: K | None) -> tuple[Any, ...] | None:
        """Return the full key a finder continues after, checked (generated find_by_<field>)."""
        return self._store._after(key)

    def get(self, key: K) -> M | None:
        """Return the item stored at `key`, or None."""
        if isinstance(self._store, adapted.KeyValueStore):
            return self._run(self._store.get(key))
        return self._run(self._backend_get((self._check_key(key),)))

    def get_many(self, keys: Sequence[K]) -> list[M | None]:
        """Return the items at `keys` in the same order, None where a key has no item."""
        return self._run(self._store.get_many(keys))

    def delete(self, key: K) -> bool:
        """Delete the item at `key`; return whether there was one."""
        return self._run(self._store.delete(key))

    def scan(
        self,
        *,
        after: K | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_bytes: int = DEFAULT_PAGE_BYTES,
        on_corrupt: OnCorrupt | None = None,
    ) -> Iterator[M]:
        """Iterate over items in key order after `after`, in pages of at most `page_size` items and about `page_bytes`.

        A row that cannot be decoded raises CorruptRow; with `on_corrupt`, it is passed there and skipped.
        """
        pages = self._store.scan(
            after=after, limit=limit, page_size=page_size, page_bytes=page_bytes, on_corrupt=on_corrupt
        )
        return self._runner.iterate(pages)


class SyncSortedKeyValueStore(_SyncStore[M], Generic[M, K, S]):
    """A map from key to a sorted map from sort key to message, for blocking code."""

    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[M],
        store: adapted.SortedKeyValueStore[M, K, S] | None = None,
    ) -> None:
        self._store: SortedKeyValueStore[Any, K, S] | adapted.SortedKeyValueStore[M, K, S] = (
            SortedKeyValueStore(db.aio, spec, cast("type[Message]", message)) if store is None else store
        )
        super().__init__(db, spec, message, self._store)

    def _after(self, key: tuple[K, S] | None) -> tuple[Any, ...] | None:
        """Return the full key a finder continues after, checked (generated find_by_<field>)."""
        return self._store._after(key)

    def get(self, key: K, sort_key: S) -> M | None:
        """Return the item at (`key`, `sort_key`), or None."""
        return self._run(self._store.get(key, sort_key))

    def get_many(self, keys: Sequence[tuple[K, S]]) -> list[M | None]:
        """Return the items at (key, sort_key) pairs in the same order, None where missing."""
        return self._run(self._store.get_many(keys))

    def delete(self, key: K, sort_key: S) -> bool:
        """Delete the item at (`key`, `sort_key`); return whether there was one."""
        return self._run(self._store.delete(key, sort_key))

    def delete_all(self, key: K) -> int:
        """Delete every item under `key`; return how many there were."""
        return self._run(self._store.delete_all(key))

    def scan(
        self,
        key: K,
        *,
        start: S | None = None,
        end: S | None = None,
        reverse: bool = False,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_bytes: int = DEFAULT_PAGE_BYTES,
        on_corrupt: OnCorrupt | None = None,
    ) -> Iterator[M]:
        """Iterate over the items under `key` in sort-key order, from `start` (inclusive) to `end` (exclusive).

        With `reverse`, iterate from the largest sort key down (`start` then bounds from above). A row that
        cannot be decoded raises CorruptRow; with `on_corrupt`, it is passed there and skipped.
        """
        pages = self._store.scan(
            key,
            start=start,
            end=end,
            reverse=reverse,
            limit=limit,
            page_size=page_size,
            page_bytes=page_bytes,
            on_corrupt=on_corrupt,
        )
        return self._runner.iterate(pages)


class SyncTail(Generic[M]):
    """Follows new events, blocking for each; `with series.tail() as events:` fixes the start first."""

    def __init__(self, tail: Tail[Any] | adapted.Tail[M], runner: Runner) -> None:
        self._tail = tail
        self._run = runner.run

    def start(self) -> SyncTail[M]:
        """Fix the start position; return self."""
        self._run(self._tail.start())
        return self

    def close(self) -> None:
        """Stop following."""
        self._run(self._tail.close())

    def __enter__(self) -> SyncTail[M]:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> SyncTail[M]:
        return self

    def __next__(self) -> M:
        event: M = self._run(self._tail.__anext__())
        return event


class SyncTimeSeries(_Client, Generic[M, K]):
    """A series of events per key, ordered by event time, for blocking code."""

    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[M],
        series: adapted.TimeSeries[M, K] | None = None,
    ) -> None:
        super().__init__(db, spec, message)
        self._series: TimeSeries[Any, K] | adapted.TimeSeries[M, K] = (
            TimeSeries(db.aio, spec, cast("type[Message]", message)) if series is None else series
        )
        self._aio = self._series

    def append(self, event: M) -> None:
        """Append one event; returns once the backend acknowledged it. A retry stores it once."""
        self._run(self._series.append(event))

    def append_many(self, events: Iterable[M]) -> None:
        """Append events, all acknowledged when this returns."""
        self._run(self._series.append_many(events))

    def query(
        self,
        key: K,
        start: TimeBound | None = None,
        end: TimeBound | None = None,
        *,
        limit: int | None = None,
    ) -> Iterator[M]:
        """Iterate over `key`'s events with start <= event time < end, in event-time order."""
        return self._runner.iterate(self._series.query(key, start, end, limit=limit))

    def tail(self, key: K | None = None, *, from_: TimeBound | None = None) -> SyncTail[M]:
        """Follow events of `key` (or every key) as they arrive: from event time `from_`, or new ones only.

        Use `with series.tail() as events:` to fix the start before appending, then iterate.
        """
        return SyncTail(self._series.tail(key, from_=from_), self._runner)


class SyncNodeStore(_Client, Generic[N, NK]):
    """The nodes of one graph_node message, for blocking code."""

    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[N],
        nodes: NodeStore[Any, NK] | adapted.NodeStore[N, NK] | None = None,
    ) -> None:
        super().__init__(db, spec, message)
        self._nodes: NodeStore[Any, NK] | adapted.NodeStore[N, NK] = (
            nodes if nodes is not None else NodeStore(db.aio, spec, cast("type[Message]", message))
        )
        self._aio: NodeStore[Any, NK] | adapted.NodeStore[N, NK] = self._nodes

    def add_node(self, node: N) -> None:
        """Insert `node`, replacing the node with the same key."""
        self._run(self._nodes.add_node(node))

    def add_nodes(self, nodes: Iterable[N]) -> None:
        """Insert or replace all `nodes` in one atomic batch."""
        self._run(self._nodes.add_nodes(nodes))

    def get_node(self, key: NK) -> N | None:
        """Return the node with `key`, or None."""
        return self._run(self._nodes.get_node(key))

    def get_nodes(self, keys: Sequence[NK]) -> list[N | None]:
        """Return the nodes with `keys` in the same order, None where missing."""
        return self._run(self._nodes.get_nodes(keys))

    def remove_node(self, key: NK) -> bool:
        """Delete the node with `key`; return whether there was one. Its edges stay (see docs/graph.md)."""
        return self._run(self._nodes.remove_node(key))


class _SyncEdges(_Client, Generic[E, SK, TK, EF]):
    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[E],
        edges: EdgeStore[Any, SK, TK, EF] | adapted.EdgeStore[E, SK, TK, EF],
    ) -> None:
        super().__init__(db, spec, message)
        self._aio: EdgeStore[Any, SK, TK, EF] | adapted.EdgeStore[E, SK, TK, EF] = edges

    def add_edge(self, edge: E) -> None:
        """Insert `edge`, replacing the edge with the same source and target."""
        self._run(self._aio.add_edge(edge))

    def add_edges(self, edges: Iterable[E]) -> None:
        """Insert or replace all `edges` in one atomic batch."""
        self._run(self._aio.add_edges(edges))

    def get_edge(self, source: SK, target: TK) -> E | None:
        """Return the edge from `source` to `target`, or None."""
        return self._run(self._aio.get_edge(source, target))

    def remove_edge(self, source: SK, target: TK) -> bool:
        """Delete the edge from `source` to `target`; return whether there was one."""
        return self._run(self._aio.remove_edge(source, target))

    def targets(
        self, source: SK, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[TK]:
        """Return the keys `source`'s edges lead to, in key order, at most `limit`."""
        return self._run(self._aio.targets(source, edge_filter=edge_filter, limit=limit))

    def sources(
        self, target: TK, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[SK]:
        """Return the keys whose edges lead to `target`, in key order, at most `limit`."""
        return self._run(self._aio.sources(target, edge_filter=edge_filter, limit=limit))

    def out_edges(
        self, source: SK, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[E]:
        """Return the edges from `source`, ordered by target, at most `limit`."""
        return self._run(self._aio.out_edges(source, edge_filter=edge_filter, limit=limit))

    def in_edges(
        self, target: TK, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[E]:
        """Return the edges to `target`, ordered by source, at most `limit`."""
        return self._run(self._aio.in_edges(target, edge_filter=edge_filter, limit=limit))


class SyncEdgeStore(_SyncEdges[E, SK, TK, EF], Generic[E, SK, TK, EF]):
    """The edges of one graph_edge message between two node types, for blocking code."""

    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[E],
        edges: adapted.EdgeStore[E, SK, TK, EF] | None = None,
    ) -> None:
        aio: EdgeStore[Any, SK, TK, EF] | adapted.EdgeStore[E, SK, TK, EF]
        aio = EdgeStore(db.aio, spec, cast("type[Message]", message)) if edges is None else edges
        # mypy expands the value-restricted keys of `aio` but not of the base: the same types, unseen.
        super().__init__(db, spec, message, cast(Any, aio))


class SyncGraph(_SyncEdges[E, NK, NK, EF], Generic[E, N, NK, EF, NF]):
    """One edge type between nodes of one type, with traversals, for blocking code."""

    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[E],
        node_spec: EntitySpec,
        node_message: type[N],
        graph: adapted.Graph[E, N, NK, EF, NF] | None = None,
    ) -> None:
        self._graph: Graph[Any, Any, NK, EF, NF] | adapted.Graph[E, N, NK, EF, NF] = (
            Graph(
                db.aio, spec, cast("type[Message]", message), node_spec, cast("type[Message]", node_message)
            )
            if graph is None
            else graph
        )
        # A Graph is an EdgeStore whose ends are both node keys; mypy cannot see that through value-restricted keys.
        super().__init__(db, spec, message, cast(Any, self._graph))
        self.nodes: SyncNodeStore[N, NK] = SyncNodeStore(db, node_spec, node_message, self._graph.nodes)

    def add_node(self, node: N) -> None:
        """Insert `node`, replacing the node with the same key."""
        self.nodes.add_node(node)

    def add_nodes(self, nodes: Iterable[N]) -> None:
        """Insert or replace all `nodes` in one atomic batch."""
        self.nodes.add_nodes(nodes)

    def get_node(self, key: NK) -> N | None:
        """Return the node with `key`, or None."""
        return self.nodes.get_node(key)

    def get_nodes(self, keys: Sequence[NK]) -> list[N | None]:
        """Return the nodes with `keys` in the same order, None where missing."""
        return self.nodes.get_nodes(keys)

    def remove_node(self, key: NK) -> bool:
        """Delete the node with `key`; return whether there was one. Its edges stay (see docs/graph.md)."""
        return self.nodes.remove_node(key)

    def neighbors(
        self,
        node: NK,
        direction: DirectionLike = Direction.OUT,
        *,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        limit: int | None = DEFAULT_FANOUT,
    ) -> list[NK]:
        """Return the distinct neighbors of `node` one hop away in `direction`, in key order, at most `limit`."""
        return self._run(
            self._graph.neighbors(
                node, direction, edge_filter=edge_filter, node_filter=node_filter, limit=limit
            )
        )

    def bfs(
        self,
        start: NK,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[Visit[NK]]:
        """Return every node within `max_depth` hops of `start`, nearest first, in key order within a depth."""
        return self._run(
            self._graph.bfs(
                start,
                max_depth,
                direction=direction,
                edge_filter=edge_filter,
                node_filter=node_filter,
                fanout=fanout,
            )
        )

    def dfs(
        self,
        start: NK,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[Visit[NK]]:
        """Return the nodes within `max_depth` hops of `start` in depth-first preorder (neighbors in key order)."""
        return self._run(
            self._graph.dfs(
                start,
                max_depth,
                direction=direction,
                edge_filter=edge_filter,
                node_filter=node_filter,
                fanout=fanout,
            )
        )

    def shortest_path(
        self,
        source: NK,
        target: NK,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[NK] | None:
        """Return a shortest path [source, ..., target] of at most `max_depth` hops, or None if there is none."""
        return self._run(
            self._graph.shortest_path(
                source,
                target,
                max_depth,
                direction=direction,
                edge_filter=edge_filter,
                node_filter=node_filter,
                fanout=fanout,
            )
        )

    def k_hop_count(
        self,
        start: NK,
        k: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> int:
        """Return how many distinct nodes other than `start` are within `k` hops of it."""
        return self._run(
            self._graph.k_hop_count(
                start, k, direction=direction, edge_filter=edge_filter, node_filter=node_filter, fanout=fanout
            )
        )
