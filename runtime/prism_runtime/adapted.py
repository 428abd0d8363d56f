"""Stores whose callers hold another message class than the one the backends store (betterproto dataclasses).

Each store here wraps the protobuf store of the same abstraction and converts at its edge only: a message
given to it is turned into the stored protobuf class before the wrapped store sees it, and every message read
comes back through the same adapter. Below the edge nothing changes: input checks, PII sealing, the row and
payload codecs and every backend work on the protobuf class, so both styles write the same rows and payloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from prism_runtime import graph, keyvalue, timeseries
from prism_runtime.graph import DEFAULT_FANOUT, Direction, DirectionLike, Visit
from prism_runtime.keyvalue import DEFAULT_PAGE_BYTES, DEFAULT_PAGE_SIZE, OnCorrupt
from prism_runtime.schema import EntitySpec
from prism_runtime.timeseries import TimeBound

if TYPE_CHECKING:
    from prism_runtime.database import Database

B = TypeVar("B")
BN = TypeVar("BN")
K = TypeVar("K")
S = TypeVar("S")
# Graph keys and filters, as prism_runtime.graph types them.
GK = TypeVar("GK", str, bytes, int)
GS = TypeVar("GS", str, bytes, int)
GT = TypeVar("GT", str, bytes, int)
EF = TypeVar("EF", bound=Mapping[str, Any])
NF = TypeVar("NF", bound=Mapping[str, Any])


class MessageAdapter(Protocol[B]):
    """Converts a caller's message to the protobuf message the backends store, and back."""

    def to_stored(self, item: B) -> Message:
        """Return `item` as the stored protobuf class; raise WrongType when it is not of the caller's class."""
        ...

    def from_stored(self, stored: Message) -> B:
        """Return a stored protobuf message as the caller's class."""
        ...


async def _converted(items: AsyncIterator[Message], convert: Callable[[Message], B]) -> AsyncIterator[B]:
    async for item in items:
        yield convert(item)


class _Adapted(Generic[B]):
    def __init__(self, spec: EntitySpec, adapter: MessageAdapter[B]) -> None:
        self.spec = spec
        self._in = adapter.to_stored
        self._out = adapter.from_stored

    @property
    def namespace(self) -> str:
        """Return the namespace this store reads and writes."""
        return self.spec.namespace

    def _out_or_none(self, stored: Message | None) -> B | None:
        return None if stored is None else self._out(stored)


class _KeyValue(_Adapted[B]):
    """What both adapted key-value stores pass to the protobuf store they wrap for generated methods."""

    _store: keyvalue._Store[Message]

    async def _find_by(self, field: str, value: str | bytes) -> list[B]:
        """Return the items whose encrypted, searchable `field` equals `value` (generated find_by_<field>)."""
        return [self._out(m) for m in await self._store._find_by(field, value)]

    async def _put_expiring(self, items: Iterable[B], ttl: timedelta | None) -> None:
        """Put `items` expiring after `ttl`, or the entity's TTL (the generated put and put_many of a TTL entity)."""
        await self._store._put_expiring([self._in(i) for i in items], ttl)

    async def _find_by_index(
        self, field: str, value: Any, limit: int, after: tuple[Any, ...] | None
    ) -> list[B]:
        """Return up to `limit` items whose indexed `field` equals `value`, after the key `after` (find_by_<field>)."""
        return [self._out(m) for m in await self._store._find_by_index(field, value, limit, after)]


class KeyValueStore(_KeyValue[B], Generic[B, K]):
    """A map from key to message, for callers of another message class (see prism_runtime.keyvalue)."""

    def __init__(
        self, db: Database, spec: EntitySpec, adapter: MessageAdapter[B], stored: type[Message]
    ) -> None:
        super().__init__(spec, adapter)
        self._store: keyvalue.KeyValueStore[Message, K] = keyvalue.KeyValueStore(db, spec, stored)

    def _after(self, key: K | None) -> tuple[Any, ...] | None:
        """Return the full key a finder continues after, checked (generated find_by_<field>)."""
        return self._store._after(key)

    async def put(self, item: B) -> None:
        """Insert `item`, replacing any item with the same key."""
        await self._store.put(self._in(item))

    async def put_many(self, items: Iterable[B]) -> None:
        """Insert or replace all `items` in one atomic batch."""
        await self._store.put_many([self._in(i) for i in items])

    async def get(self, key: K) -> B | None:
        """Return the item stored at `key`, or None."""
        return self._out_or_none(await self._store.get(key))

    async def get_many(self, keys: Sequence[K]) -> list[B | None]:
        """Return the items at `keys` in the same order, None where a key has no item."""
        return [self._out_or_none(m) for m in await self._store.get_many(keys)]

    async def delete(self, key: K) -> bool:
        """Delete the item at `key`; return whether there was one."""
        return await self._store.delete(key)

    def scan(
        self,
        *,
        after: K | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_bytes: int = DEFAULT_PAGE_BYTES,
        on_corrupt: OnCorrupt | None = None,
    ) -> AsyncIterator[B]:
        """Iterate over items in key order after `after`, as prism_runtime.KeyValueStore.scan does."""
        pages = self._store.scan(
            after=after, limit=limit, page_size=page_size, page_bytes=page_bytes, on_corrupt=on_corrupt
        )
        return _converted(pages, self._out)


class SortedKeyValueStore(_KeyValue[B], Generic[B, K, S]):
    """A map from key to a sorted map of messages, for callers of another message class."""

    def __init__(
        self, db: Database, spec: EntitySpec, adapter: MessageAdapter[B], stored: type[Message]
    ) -> None:
        super().__init__(spec, adapter)
        self._store: keyvalue.SortedKeyValueStore[Message, K, S] = keyvalue.SortedKeyValueStore(
            db, spec, stored
        )

    def _after(self, key: tuple[K, S] | None) -> tuple[Any, ...] | None:
        """Return the full key a finder continues after, checked (generated find_by_<field>)."""
        return self._store._after(key)

    async def put(self, item: B) -> None:
        """Insert `item`, replacing any item with the same key and sort key."""
        await self._store.put(self._in(item))

    async def put_many(self, items: Iterable[B]) -> None:
        """Insert or replace all `items` in one atomic batch."""
        await self._store.put_many([self._in(i) for i in items])

    async def get(self, key: K, sort_key: S) -> B | None:
        """Return the item at (`key`, `sort_key`), or None."""
        return self._out_or_none(await self._store.get(key, sort_key))

    async def get_many(self, keys: Sequence[tuple[K, S]]) -> list[B | None]:
        """Return the items at (key, sort_key) pairs in the same order, None where missing."""
        return [self._out_or_none(m) for m in await self._store.get_many(keys)]

    async def delete(self, key: K, sort_key: S) -> bool:
        """Delete the item at (`key`, `sort_key`); return whether there was one."""
        return await self._store.delete(key, sort_key)

    async def delete_all(self, key: K) -> int:
        """Delete every item under `key`; return how many there were."""
        return await self._store.delete_all(key)

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
    ) -> AsyncIterator[B]:
        """Iterate over the items under `key` in sort-key order, as prism_runtime.SortedKeyValueStore.scan does."""
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
        return _converted(pages, self._out)


class TimeSeries(_Adapted[B], Generic[B, K]):
    """A series of events per key, for callers of another message class (see prism_runtime.timeseries)."""

    def __init__(
        self, db: Database, spec: EntitySpec, adapter: MessageAdapter[B], stored: type[Message]
    ) -> None:
        super().__init__(spec, adapter)
        self._series: timeseries.TimeSeries[Message, K] = timeseries.TimeSeries(db, spec, stored)

    async def append(self, event: B) -> None:
        """Append one event; returns once the backend acknowledged it. A retry stores it once."""
        await self._series.append(self._in(event))

    async def append_many(self, events: Iterable[B]) -> None:
        """Append events, all acknowledged when this returns."""
        await self._series.append_many([self._in(e) for e in events])

    def query(
        self,
        key: K,
        start: TimeBound | None = None,
        end: TimeBound | None = None,
        *,
        limit: int | None = None,
    ) -> AsyncIterator[B]:
        """Iterate over `key`'s events with start <= event time < end, in event-time order."""
        return _converted(self._series.query(key, start, end, limit=limit), self._out)

    def tail(self, key: K | None = None, *, from_: TimeBound | None = None) -> Tail[B]:
        """Follow events of `key` (or every key) as they arrive, as prism_runtime.TimeSeries.tail does."""
        return Tail(self._series.tail(key, from_=from_), self._out)


class Tail(Generic[B]):
    """Follows new events until cancelled; `async with` fixes the start before you append."""

    def __init__(self, tail: timeseries.Tail[Message], convert: Callable[[Message], B]) -> None:
        self._tail = tail
        self._convert = convert

    async def start(self) -> Tail[B]:
        """Fix the start position; return self."""
        await self._tail.start()
        return self

    async def close(self) -> None:
        """Stop following."""
        await self._tail.close()

    async def __aenter__(self) -> Tail[B]:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> Tail[B]:
        return self

    async def __anext__(self) -> B:
        return self._convert(await self._tail.__anext__())


class NodeStore(_Adapted[B], Generic[B, GK]):
    """Graph nodes, for callers of another message class (see prism_runtime.graph.NodeStore)."""

    def __init__(
        self, db: Database, spec: EntitySpec, adapter: MessageAdapter[B], stored: type[Message]
    ) -> None:
        super().__init__(spec, adapter)
        self._nodes: graph.NodeStore[Message, GK] = graph.NodeStore(db, spec, stored)

    async def add_node(self, node: B) -> None:
        """Insert or replace one node."""
        await self._nodes.add_node(self._in(node))

    async def add_nodes(self, nodes: Iterable[B]) -> None:
        """Insert or replace nodes in one atomic batch."""
        await self._nodes.add_nodes([self._in(n) for n in nodes])

    async def get_node(self, key: GK) -> B | None:
        """Return the node at `key`, or None."""
        return self._out_or_none(await self._nodes.get_node(key))

    async def get_nodes(self, keys: Sequence[GK]) -> list[B | None]:
        """Return the nodes at `keys` in order, None where missing."""
        return [self._out_or_none(n) for n in await self._nodes.get_nodes(keys)]

    async def remove_node(self, key: GK) -> bool:
        """Delete the node at `key` (its edges stay); return whether there was one."""
        return await self._nodes.remove_node(key)


class EdgeStore(_Adapted[B], Generic[B, GS, GT, EF]):
    """Graph edges, for callers of another message class (see prism_runtime.graph.EdgeStore)."""

    _edges: graph.EdgeStore[Message, GS, GT, EF]

    def __init__(
        self, db: Database, spec: EntitySpec, adapter: MessageAdapter[B], stored: type[Message]
    ) -> None:
        super().__init__(spec, adapter)
        self._edges = graph.EdgeStore(db, spec, stored)

    async def add_edge(self, edge: B) -> None:
        """Insert or replace one edge."""
        await self._edges.add_edge(self._in(edge))

    async def add_edges(self, edges: Iterable[B]) -> None:
        """Insert or replace edges in one atomic batch."""
        await self._edges.add_edges([self._in(e) for e in edges])

    async def get_edge(self, source: GS, target: GT) -> B | None:
        """Return the edge from `source` to `target`, or None."""
        return self._out_or_none(await self._edges.get_edge(source, target))

    async def remove_edge(self, source: GS, target: GT) -> bool:
        """Delete the edge from `source` to `target`; return whether there was one."""
        return await self._edges.remove_edge(source, target)

    async def targets(
        self, source: GS, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[GT]:
        """Return the targets of `source`'s edges, in key order, at most `limit`."""
        return await self._edges.targets(source, edge_filter=edge_filter, limit=limit)

    async def sources(
        self, target: GT, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[GS]:
        """Return the sources of the edges into `target`, in key order, at most `limit`."""
        return await self._edges.sources(target, edge_filter=edge_filter, limit=limit)

    async def out_edges(
        self, source: GS, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[B]:
        """Return `source`'s edges, by target key, at most `limit`."""
        return [
            self._out(e) for e in await self._edges.out_edges(source, edge_filter=edge_filter, limit=limit)
        ]

    async def in_edges(
        self, target: GT, *, edge_filter: EF | None = None, limit: int | None = DEFAULT_FANOUT
    ) -> list[B]:
        """Return the edges into `target`, by source key, at most `limit`."""
        return [
            self._out(e) for e in await self._edges.in_edges(target, edge_filter=edge_filter, limit=limit)
        ]


class Graph(EdgeStore[B, GK, GK, EF], graph.GraphNodes[BN, GK], Generic[B, BN, GK, EF, NF]):
    """Nodes and the edges between them, for callers of another message class (see prism_runtime.graph.Graph).

    Traversals return keys, never messages: they are the wrapped graph's own.
    """

    def __init__(
        self,
        db: Database,
        spec: EntitySpec,
        adapter: MessageAdapter[B],
        stored: type[Message],
        node_spec: EntitySpec,
        node_adapter: MessageAdapter[BN],
        node_stored: type[Message],
    ) -> None:
        _Adapted.__init__(self, spec, adapter)
        self._graph: graph.Graph[Message, Message, GK, EF, NF] = graph.Graph(
            db, spec, stored, node_spec, node_stored
        )
        self._edges = self._graph
        self.nodes: NodeStore[BN, GK] = NodeStore(db, node_spec, node_adapter, node_stored)

    async def neighbors(
        self,
        node: GK,
        direction: DirectionLike = Direction.OUT,
        *,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        limit: int | None = DEFAULT_FANOUT,
    ) -> list[GK]:
        """Return the keys one hop from `node`, as prism_runtime.Graph.neighbors does."""
        return await self._graph.neighbors(
            node, direction, edge_filter=edge_filter, node_filter=node_filter, limit=limit
        )

    async def bfs(
        self,
        start: GK,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[Visit[GK]]:
        """Return the nodes within `max_depth` hops in breadth-first order, as prism_runtime.Graph.bfs does."""
        return await self._graph.bfs(
            start,
            max_depth,
            direction=direction,
            edge_filter=edge_filter,
            node_filter=node_filter,
            fanout=fanout,
        )

    async def dfs(
        self,
        start: GK,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[Visit[GK]]:
        """Return the nodes within `max_depth` hops in depth-first order, as prism_runtime.Graph.dfs does."""
        return await self._graph.dfs(
            start,
            max_depth,
            direction=direction,
            edge_filter=edge_filter,
            node_filter=node_filter,
            fanout=fanout,
        )

    async def shortest_path(
        self,
        source: GK,
        target: GK,
        max_depth: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> list[GK] | None:
        """Return a shortest path of keys, as prism_runtime.Graph.shortest_path does."""
        return await self._graph.shortest_path(
            source,
            target,
            max_depth,
            direction=direction,
            edge_filter=edge_filter,
            node_filter=node_filter,
            fanout=fanout,
        )

    async def k_hop_count(
        self,
        start: GK,
        k: int,
        *,
        direction: DirectionLike = Direction.OUT,
        edge_filter: EF | None = None,
        node_filter: NF | None = None,
        fanout: int | None = DEFAULT_FANOUT,
    ) -> int:
        """Return how many distinct nodes other than `start` are within `k` hops of it."""
        return await self._graph.k_hop_count(
            start, k, direction=direction, edge_filter=edge_filter, node_filter=node_filter, fanout=fanout
        )
