"""Run one behaviour test on both client styles: the async classes, and the blocking `<Message>Sync*` twins.

A test written against the async API takes `prism = styled(module, style, twins)`: in the sync style,
`prism.PatientStore(db)` is `PatientSyncStore` on a SyncDatabase opened on the same backends and keys as
`db`, and each of its calls runs on a worker thread (as a thread pool would run it), awaited by the test.
`prism.forget(db, subject)` and `prism.vault(db)` are the style's own (each handle caches its keys).
The test's own code is the same for both styles: the behaviour is proven twice, written once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType, TracebackType
from typing import Any

import prism_runtime
from prism_runtime.pii.forget import ForgetReceipt
from prism_runtime.pii.vault import Vault, vault_for
from prism_runtime.sync_clients import SyncTail

STYLES = ["async", "sync"]
_CLIENT = re.compile(r"(Store|Series|Nodes|Edges|Graph)$")
_END = object()
_ITERATORS = frozenset({"scan", "query", "tail"})


class Twins:
    """The SyncDatabase twin of each async Database a test opened, closed together at the end."""

    def __init__(self) -> None:
        self._twins: dict[int, tuple[prism_runtime.Database, prism_runtime.SyncDatabase]] = {}

    def of(self, db: prism_runtime.Database) -> prism_runtime.SyncDatabase:
        """Return the open SyncDatabase on `db`'s backends, bindings and key wrapper."""
        found = self._twins.get(id(db))
        if found is None:
            config = {
                "backends": {kind: url.url for kind, url in db.config.backends.items()},
                "namespaces": dict(db.config.bindings),
            }
            twin = prism_runtime.connect_sync(db.url.url, config=config, key_wrapper=db._key_wrapper)
            if _is_open(db):
                twin.open()
            found = self._twins[id(db)] = (db, twin)
        return found[1]

    def close(self) -> None:
        """Close every twin."""
        for _, twin in self._twins.values():
            twin.close()
        self._twins.clear()


class Styled:
    """A generated module seen in one style; every other attribute is the module's own."""

    def __init__(self, module: ModuleType, style: str, twins: Twins) -> None:
        self._module = module
        self._style = style
        self._twins = twins

    async def forget(self, db: prism_runtime.Database, subject: str | int | bytes) -> ForgetReceipt:
        """Forget `subject` as this style's program would: `prism_runtime.forget`, or `SyncDatabase.forget`."""
        if self._style == "async":
            return await prism_runtime.forget(db, subject)
        return await asyncio.to_thread(self._twins.of(db).forget, subject)

    def vault(self, db: prism_runtime.Database) -> Vault:
        """Return the PII vault of the SQL backend this style's clients use (to inspect or break it)."""
        database = db if self._style == "async" else self._twins.of(db).aio
        return vault_for(database.backend)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if self._style == "async" or not _CLIENT.search(name) or not isinstance(value, type):
            return value
        sync_class = getattr(self._module, _CLIENT.sub(r"Sync\1", name))
        return lambda db: Awaiting(sync_class(self._twins.of(db)))


def _is_open(db: prism_runtime.Database) -> bool:
    try:
        db.backend  # noqa: B018 (raises NotOpen on a handle not opened yet)
    except prism_runtime.NotOpen:
        return False
    return True


def styled(module: ModuleType, style: str, twins: Twins) -> Any:
    """Return `module` as the tests of `style` use it."""
    return Styled(module, style, twins)


class Awaiting:
    """A blocking client seen through the async API: each call runs on a worker thread and is awaited."""

    def __init__(self, client: Any) -> None:
        object.__setattr__(self, "_client", client)

    def __getattr__(self, name: str) -> Any:
        # A test that looks inside a client (`store._backend`) sees the async object the blocking one runs.
        owner = self._client if not name.startswith("_") else self._client._aio
        value = getattr(owner, name)
        if isinstance(value, prism_runtime.SyncNodeStore):
            return Awaiting(value)
        if not callable(value):
            return value
        if name in _ITERATORS:
            # These do no I/O when called, only their checks (which raise at the call, as the async ones do).
            return lambda *args, **kwargs: _Call(lambda: value(*args, **kwargs), (), {}, started=True)
        return lambda *args, **kwargs: _Call(value, args, kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        # A test that swaps a part of a client (`store._backend = spy`) swaps it in the async object.
        setattr(self._client._aio, name, value)


class _Call:
    """One call of a blocking method: awaited for its result, iterated with `async for`, or entered."""

    def __init__(
        self,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        started: bool = False,
    ) -> None:
        if started:
            result = method()
            self._start: Callable[[], Any] = lambda: result
        else:
            self._start = lambda: method(*args, **kwargs)
        self._items: Iterator[Any] | None = None

    def __await__(self) -> Any:
        return asyncio.to_thread(self._start).__await__()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if self._items is None:
            self._items = iter(await asyncio.to_thread(self._start))
        item = await asyncio.to_thread(next, self._items, _END)
        if item is _END:
            raise StopAsyncIteration
        return item

    async def __aenter__(self) -> _Call:
        tail = await asyncio.to_thread(self._start)
        assert isinstance(tail, SyncTail)
        self._items = await asyncio.to_thread(tail.__enter__)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert isinstance(self._items, SyncTail)
        await asyncio.to_thread(self._items.close)
