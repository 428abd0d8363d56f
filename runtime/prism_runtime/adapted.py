"""Stores whose callers hold another message class than the one the backends store (betterproto dataclasses).

Each store here wraps the protobuf store of the same abstraction and converts at its edge only: a message
given to it is turned into the stored protobuf class before the wrapped store sees it, and every message read
comes back through the same adapter. Below the edge nothing changes: input checks, PII sealing, the row and
payload codecs and every backend work on the protobuf class, so both styles write the same rows and payloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from prism_runtime import keyvalue, timeseries
from prism_runtime.keyvalue import DEFAULT_PAGE_BYTES, DEFAULT_PAGE_SIZE, OnCorrupt
from prism_runtime.schema import EntitySpec
from prism_runtime.timeseries import TimeBound

if TYPE_CHECKING:
    from prism_runtime.database import Database

B = TypeVar("B")
K = TypeVar("K")
S = TypeVar("S")


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


class KeyValueStore(_Adapted[B], Generic[B, K]):
    """A map from key to message, for callers of another message class (see prism_runtime.keyvalue)."""

    def __init__(
        self, db: Database, spec: EntitySpec, adapter: MessageAdapter[B], stored: type[Message]
    ) -> None:
        super().__init__(spec, adapter)
        self._store: keyvalue.KeyValueStore[Message, K] = keyvalue.KeyValueStore(db, spec, stored)

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

    async def _find_by(self, field: str, value: str | bytes) -> list[B]:
        """Return the items whose encrypted, searchable `field` equals `value` (generated find_by_<field>)."""
        return [self._out(m) for m in await self._store._find_by(field, value)]


class SortedKeyValueStore(_Adapted[B], Generic[B, K, S]):
    """A map from key to a sorted map of messages, for callers of another message class."""

    def __init__(
        self, db: Database, spec: EntitySpec, adapter: MessageAdapter[B], stored: type[Message]
    ) -> None:
        super().__init__(spec, adapter)
        self._store: keyvalue.SortedKeyValueStore[Message, K, S] = keyvalue.SortedKeyValueStore(
            db, spec, stored
        )

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

    async def _find_by(self, field: str, value: str | bytes) -> list[B]:
        """Return the items whose encrypted, searchable `field` equals `value` (generated find_by_<field>)."""
        return [self._out(m) for m in await self._store._find_by(field, value)]


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
