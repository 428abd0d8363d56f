"""The KeyValue abstraction: a map of keys to messages, or to sorted maps of messages (Netflix KV).

Generated `<Message>Store` classes subclass these with their message and key types; the methods
here are the whole public API, the same on every backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from prism_runtime.pii.masking import redact_reprs
from prism_runtime.schema import EntitySpec

if TYPE_CHECKING:
    from prism_runtime.database import Database

M = TypeVar("M", bound=Message)
K = TypeVar("K")
S = TypeVar("S")

DEFAULT_PAGE_SIZE = 256
DEFAULT_PAGE_BYTES = 1 << 20


class KeyValueBackend(Protocol[M]):
    """What a backend implements to serve the KeyValue abstraction; keys are tuples (key[, sort_key])."""

    async def put(self, items: Sequence[M]) -> None:
        """Insert or replace items atomically."""
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
    ) -> list[M]:
        """Return one page of items under a prefix in key order, past `after` (or from it, if inclusive)."""
        ...


class _Store(Generic[M]):
    def __init__(self, db: Database, spec: EntitySpec, message: type[M]) -> None:
        self.spec = spec
        self.message_type = message
        self._backend: KeyValueBackend[M] = db.keyvalue(spec, message)
        redact_reprs(message)  # also when the generated module did not know of nested PII

    @property
    def namespace(self) -> str:
        """Return the namespace this store reads and writes."""
        return self.spec.namespace

    def put(self, item: M) -> Coroutine[Any, Any, None]:
        """Insert `item`, replacing any item with the same key (a coroutine: the backend's own)."""
        return self._backend.put((item,))

    async def put_many(self, items: Iterable[M]) -> None:
        """Insert or replace all `items` in one atomic batch."""
        await self._backend.put(list(items))

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
        *,
        inclusive: bool = False,
    ) -> AsyncIterator[M]:
        if page_size < 1 or page_bytes < 1:
            raise ValueError("page_size and page_bytes must be at least 1")
        order_field = self.spec.key if not prefix else self.spec.sort_key
        assert order_field is not None
        remaining = limit
        seen_items = seen_bytes = 0
        while remaining is None or remaining > 0:
            want = page_size if remaining is None else min(page_size, remaining)
            if seen_items:
                # Pages are bounded by size as well as count: size the next one from the rows seen so far.
                want = max(1, min(want, page_bytes * seen_items // max(seen_bytes, 1)))
            page = await self._backend.scan_page(
                prefix, after=after, inclusive=inclusive, end=end, reverse=reverse, limit=want
            )
            for item in page:
                seen_bytes += item.ByteSize()
                yield item
            seen_items += len(page)
            if len(page) < want:
                return
            if remaining is not None:
                remaining -= len(page)
            after, inclusive = getattr(page[-1], order_field), False


class KeyValueStore(_Store[M], Generic[M, K]):
    """A map from key to message."""

    def get(self, key: K) -> Coroutine[Any, Any, M | None]:
        """Return the item stored at `key`, or None (a coroutine: the backend's own, with no frame of ours)."""
        return self._backend.get((key,))

    async def get_many(self, keys: Sequence[K]) -> list[M | None]:
        """Return the items at `keys` in the same order, None where a key has no item."""
        return await self._backend.get_many([(k,) for k in keys])

    async def delete(self, key: K) -> bool:
        """Delete the item at `key`; return whether there was one."""
        return await self._backend.delete((key,)) > 0

    def scan(
        self,
        *,
        after: K | None = None,
        limit: int | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_bytes: int = DEFAULT_PAGE_BYTES,
    ) -> AsyncIterator[M]:
        """Iterate over items in key order after `after`, in pages of at most `page_size` items and about `page_bytes`."""
        return self._scan((), after, None, False, limit, page_size, page_bytes)


class SortedKeyValueStore(_Store[M], Generic[M, K, S]):
    """A map from key to a sorted map from sort key to message."""

    def get(self, key: K, sort_key: S) -> Coroutine[Any, Any, M | None]:
        """Return the item at (`key`, `sort_key`), or None (a coroutine: the backend's own)."""
        return self._backend.get((key, sort_key))

    async def get_many(self, keys: Sequence[tuple[K, S]]) -> list[M | None]:
        """Return the items at (key, sort_key) pairs in the same order, None where missing."""
        return await self._backend.get_many([tuple(k) for k in keys])

    async def delete(self, key: K, sort_key: S) -> bool:
        """Delete the item at (`key`, `sort_key`); return whether there was one."""
        return await self._backend.delete((key, sort_key)) > 0

    async def delete_all(self, key: K) -> int:
        """Delete every item under `key`; return how many there were."""
        return await self._backend.delete((key,))

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
    ) -> AsyncIterator[M]:
        """Iterate over the items under `key` in sort-key order, from `start` (inclusive) to `end` (exclusive).

        With `reverse`, iterate from the largest sort key down (`start` then bounds from above).
        """
        return self._scan((key,), start, end, reverse, limit, page_size, page_bytes, inclusive=True)
