"""The KeyValue abstraction: a map of keys to messages, or to sorted maps of messages (Netflix KV).

Generated `<Message>Store` classes subclass these with their message and key types; the methods
here are the whole public API, the same on every backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from prism_runtime import telemetry
from prism_runtime.errors import CorruptRow
from prism_runtime.inputs import key_check, message_checks, value_check

# The finders' default limit is stated with the spec, which the compiler reads without loading this module.
from prism_runtime.schema import DEFAULT_FIND_LIMIT as DEFAULT_FIND_LIMIT
from prism_runtime.schema import EntitySpec

M = TypeVar("M", bound=Message)
K = TypeVar("K")
S = TypeVar("S")

DEFAULT_PAGE_SIZE = 256
DEFAULT_PAGE_BYTES = 1 << 20

OnCorrupt = Callable[[CorruptRow], object]
"""Called by a scan with each row it cannot decode, which it then skips (docs/type-mapping.md)."""


class KeyValueBackend(Protocol[M]):
    """What a backend implements to serve the KeyValue abstraction; keys are tuples (key[, sort_key]).

    A backend may also set `takes_wire = True`: the batches its put gets are then CheckedBatch lists whose
    `wire` holds each message's SerializeToString bytes (the SQL backends' native row encoder reads those).
    """

    async def put(self, items: Sequence[M], ttl: timedelta | None = None) -> None:
        """Insert or replace items atomically; with a TTL entity's `ttl`, they expire then instead."""
        ...

    async def find_page(
        self, field: str, value: Any, *, after: tuple[Any, ...] | None, limit: int
    ) -> tuple[list[M], tuple[Any, ...] | None]:
        """Return up to `limit` items whose indexed `field` equals `value`, in key order past the full key `after`,
        and the key to continue from (None: no more)."""
        ...

    async def get(self, key: tuple[Any, ...]) -> M | None:
        """Return the item at a full key."""
        ...

    async def get_many(self, keys: Sequence[tuple[Any, ...]]) -> list[M | None]:
        """Return the items at full keys, None where missing, in order."""
        ...

    async def delete(self, prefix: tuple[Any, ...]) -> int:
        """Delete the items under a key prefix; return the count."""
        ...

    async def scan_page(
        self,
        prefix: tuple[Any, ...],
        *,
        after: Any = None,
        inclusive: bool = False,
        end: Any = None,
        reverse: bool = False,
        limit: int,
        keep_corrupt: bool = False,
    ) -> Sequence[M | CorruptRow]:
        """Return one page of items under a prefix in key order, past `after` (or from it, if inclusive).

        A row that cannot be decoded raises CorruptRow, or with `keep_corrupt` stands in the page as one.
        """
        ...


class KeyValueSource(telemetry.Traced, Protocol):
    """What a store calls on the Database it is made with: the KeyValue backend serving its entity, and what
    telemetry reads to name that backend in its spans.

    Stated here, since the Database is built over this abstraction (it returns its backends)."""

    def keyvalue(self, spec: EntitySpec, message: type[M]) -> KeyValueBackend[M]:
        """Return the KeyValue backend serving `spec` (the routing layer while its namespace migrates)."""
        ...


class _Store(Generic[M]):
    def __init__(self, db: KeyValueSource, spec: EntitySpec, message: type[M]) -> None:
        self.spec = spec
        self.message_type = message
        backend = db.keyvalue(spec, message)
        # Traced when telemetry is on, else the backend itself (no frame of ours on the hot path).
        self._backend: KeyValueBackend[M] = telemetry.keyvalue(backend, db, spec)
        wire = bool(getattr(backend, "takes_wire", False))
        self._admit, self._admit_all = message_checks(spec, message, distinct=True, wire=wire)
        self._key = key_check(spec.namespace, spec.column(spec.key))

    @property
    def namespace(self) -> str:
        """Return the namespace this store reads and writes."""
        return self.spec.namespace

    def put(self, item: M) -> Coroutine[Any, Any, None]:
        """Insert `item`, replacing any item with the same key (a coroutine: the backend's own)."""
        self._admit(item)
        return self._backend.put((item,))

    async def put_many(self, items: Iterable[M]) -> None:
        """Insert or replace all `items` in one atomic batch."""
        await self._backend.put(self._admit_all(items))

    async def _put_expiring(self, items: Iterable[M], ttl: timedelta | None) -> None:
        """Put `items` expiring after `ttl`, or the entity's TTL (the generated put and put_many of a TTL entity)."""
        await self._backend.put(self._admit_all(items), ttl)

    async def _find_by_index(
        self, field: str, value: Any, limit: int, after: tuple[Any, ...] | None
    ) -> list[M]:
        """Return up to `limit` items whose indexed `field` equals `value`, in key order after the key `after`."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        value = value_check(self.spec.namespace, self.spec.column(field))(value)
        found: list[M] = []
        while True:
            # A page may come back short of rows it read (a forgotten subject's): read on from its last key.
            page, after = await self._backend.find_page(field, value, after=after, limit=limit - len(found))
            found += page
            if after is None or len(found) >= limit:
                return found

    async def _find_by(self, field: str, value: str | bytes) -> list[M]:
        """Return the items whose encrypted, searchable `field` equals `value` (generated find_by_<field>)."""
        backend: Any = self._backend
        found: list[M] = await backend.find_by(field, value)
        return found

    async def _scan(
        self,
        prefix: tuple[Any, ...],
        after: Any,
        end: Any,
        reverse: bool,
        limit: int | None,
        page_size: int,
        page_bytes: int,
        on_corrupt: OnCorrupt | None,
        *,
        inclusive: bool = False,
    ) -> AsyncIterator[M]:
        if page_size < 1 or page_bytes < 1:
            raise ValueError("page_size and page_bytes must be at least 1")
        order_field = self.spec.key if not prefix else self.spec.sort_key
        assert order_field is not None
        order = len(prefix)  # the position of the ordering key in a row's key
        remaining = limit
        seen_items = seen_bytes = 0
        while remaining is None or remaining > 0:
            want = page_size if remaining is None else min(page_size, remaining)
            if seen_items:
                # Pages are bounded by size as well as count: size the next one from the rows seen so far.
                want = max(1, min(want, page_bytes * seen_items // max(seen_bytes, 1)))
            page = await self._backend.scan_page(
                prefix,
                after=after,
                inclusive=inclusive,
                end=end,
                reverse=reverse,
                limit=want,
                keep_corrupt=on_corrupt is not None,
            )
            skipped = 0
            for item in page:
                if isinstance(item, CorruptRow):
                    assert on_corrupt is not None  # only then does a page hold one
                    on_corrupt(item)
                    skipped += 1
                    continue
                seen_bytes += item.ByteSize()
                yield item
            seen_items += len(page)
            if len(page) < want:
                return
            if remaining is not None:
                remaining -= len(page) - skipped  # `limit` counts the items yielded
            last = page[-1]
            after, inclusive = _position(last, order, order_field), False


def _position(item: Any, order: int, order_field: str) -> Any:
    """Return the ordering key of the last row of a page: where the next page starts."""
    if not isinstance(item, CorruptRow):
        return getattr(item, order_field)
    if not (item.key and isinstance(item.key[order], str | bytes | int)):
        raise item  # its key itself is unreadable: no position to continue from (docs/type-mapping.md)
    return item.key[order]


class KeyValueStore(_Store[M], Generic[M, K]):
    """A map from key to message."""

    def _after(self, key: K | None) -> tuple[Any, ...] | None:
        """Return the full key a finder continues after, checked (generated find_by_<field>)."""
        return None if key is None else (self._key(key),)

    def get(self, key: K) -> Coroutine[Any, Any, M | None]:
        """Return the item stored at `key`, or None (a coroutine: the backend's own, with no frame of ours)."""
        return self._backend.get((self._key(key),))

    async def get_many(self, keys: Sequence[K]) -> list[M | None]:
        """Return the items at `keys` in the same order, None where a key has no item."""
        check = self._key
        return await self._backend.get_many([(check(k),) for k in keys])

    async def delete(self, key: K) -> bool:
        """Delete the item at `key`; return whether there was one."""
        return await self._backend.delete((self._key(key),)) > 0

    def scan(
        self,
        *,
        after: K | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_bytes: int = DEFAULT_PAGE_BYTES,
        on_corrupt: OnCorrupt | None = None,
    ) -> AsyncIterator[M]:
        """Iterate over items in key order after `after`, in pages of at most `page_size` items and about `page_bytes`.

        A row that cannot be decoded raises CorruptRow; with `on_corrupt`, it is passed there and skipped.
        """
        start = None if after is None else self._key(after)
        return self._scan((), start, None, False, limit, page_size, page_bytes, on_corrupt)


class SortedKeyValueStore(_Store[M], Generic[M, K, S]):
    """A map from key to a sorted map from sort key to message."""

    def __init__(self, db: KeyValueSource, spec: EntitySpec, message: type[M]) -> None:
        super().__init__(db, spec, message)
        assert spec.sort_key is not None, "the model builder gives a sorted map its sort key"
        self._sort_key = key_check(spec.namespace, spec.column(spec.sort_key))

    def _after(self, key: tuple[K, S] | None) -> tuple[Any, ...] | None:
        """Return the full key a finder continues after, checked (generated find_by_<field>)."""
        return None if key is None else (self._key(key[0]), self._sort_key(key[1]))

    def get(self, key: K, sort_key: S) -> Coroutine[Any, Any, M | None]:
        """Return the item at (`key`, `sort_key`), or None (a coroutine: the backend's own)."""
        return self._backend.get((self._key(key), self._sort_key(sort_key)))

    async def get_many(self, keys: Sequence[tuple[K, S]]) -> list[M | None]:
        """Return the items at (key, sort_key) pairs in the same order, None where missing."""
        check, check_sort = self._key, self._sort_key
        return await self._backend.get_many([(check(k), check_sort(s)) for k, s in keys])

    async def delete(self, key: K, sort_key: S) -> bool:
        """Delete the item at (`key`, `sort_key`); return whether there was one."""
        return await self._backend.delete((self._key(key), self._sort_key(sort_key))) > 0

    async def delete_all(self, key: K) -> int:
        """Delete every item under `key`; return how many there were."""
        return await self._backend.delete((self._key(key),))

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
    ) -> AsyncIterator[M]:
        """Iterate over the items under `key` in sort-key order, from `start` (inclusive) to `end` (exclusive).

        With `reverse`, iterate from the largest sort key down (`start` then bounds from above). A row that
        cannot be decoded raises CorruptRow; with `on_corrupt`, it is passed there and skipped.
        """
        bounds = [None if b is None else self._sort_key(b) for b in (start, end)]
        return self._scan(
            (self._key(key),),
            bounds[0],
            bounds[1],
            reverse,
            limit,
            page_size,
            page_bytes,
            on_corrupt,
            inclusive=True,
        )
