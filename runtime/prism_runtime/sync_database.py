"""`connect_sync()`: the database handle of a program with no event loop (scripts, WSGI apps, thread pools).

It is a Database (same config, bindings, PII keys) that opens each backend kind's blocking driver, and runs
every call through one of two runners: `drive` on the caller's thread for SQLite and Postgres, whose
blocking drivers never suspend; a private event loop thread (LoopThread) for Kafka and NATS, whose clients
are async only. The thread is started only when a stream backend is configured. See docs/sync.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from prism_runtime.backends import registry
from prism_runtime.database import Database
from prism_runtime.drive import LoopThread, drive, drive_iter
from prism_runtime.errors import NotOpen
from prism_runtime.schema import EntitySpec

if TYPE_CHECKING:
    from prism_runtime.pii.forget import ForgetReceipt
    from prism_runtime.pii.wrappers import KeyWrapper

T = TypeVar("T")


class Runner(Protocol):
    """How a blocking client runs the async abstraction's coroutines and iterators."""

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to its end and return its result."""
        ...

    def iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        """Iterate over `items`, blocking for each."""
        ...


class _Driven:
    """The runner of backends with a blocking driver: the coroutine runs on the caller's thread."""

    run = staticmethod(drive)
    iterate = staticmethod(drive_iter)


_DRIVEN = _Driven()


class _OnLoop:
    """The runner of backends with no blocking driver: the database's loop thread, whichever is current (a
    reopened database starts a new one)."""

    def __init__(self, db: SyncDatabase) -> None:
        self._db = db

    def _loop(self, work: object) -> LoopThread:
        loop = self._db._loop
        if loop is None:
            if isinstance(work, Coroutine):
                work.close()
            raise NotOpen("the sync database is closed; open it again (`db.open()`) to use its clients")
        return loop

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop(work).run(work)

    def iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        return self._loop(None).iterate(items)


class _BlockingDatabase(Database):
    blocking = True


class SyncDatabase:
    """The backends of one program for blocking code; use as `with prism_runtime.connect_sync() as db`.

    Safe to share across threads: SQLite gives each thread its own connection, Postgres its own pooled one
    (docs/sync.md).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        key_wrapper: KeyWrapper | None = None,
    ) -> None:
        self.aio: Database = _BlockingDatabase(url, config=config, key_wrapper=key_wrapper)
        """The Database the blocking clients run on; its backends are the blocking drivers."""
        self.config = self.aio.config
        self.url = self.aio.url
        self._loop: LoopThread | None = None
        self._on_loop = _OnLoop(self)
        self._lock = threading.Lock()

    def open(self) -> SyncDatabase:
        """Connect to every configured backend and check the explicit bindings; return self."""
        with self._lock:
            # A stream backend's client, and the task following migration phases, live on an event loop.
            needs_loop = bool(self.config.migrations) or any(
                registry.entry(u.kind).blocking is None for u in self.config.backends.values()
            )
            if needs_loop and self._loop is None:
                self._loop = LoopThread()
            try:
                self.run(self.aio.open())
            except BaseException:
                self._stop_loop()
                raise
        return self

    def close(self) -> None:
        """Disconnect every backend (every thread's connections) and stop the loop thread; it can be reopened."""
        with self._lock:
            try:
                self.run(self.aio.close())
            finally:
                self._stop_loop()

    def _stop_loop(self) -> None:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            loop.stop()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a database-wide async operation on `db.aio` to its end and return its result.

        For the async APIs that take a Database, e.g. `db.run(migrations.set_phase(db.aio, ns, "promoted",
        who))`. It runs on the loop thread when there is one (stream clients and the migration watcher live
        there), else on this thread.
        """
        return self._loop.run(work) if self._loop is not None else drive(work)

    def __enter__(self) -> SyncDatabase:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self.aio).replace("prism_runtime.Database", "prism_runtime.SyncDatabase", 1)

    def runner(self, spec: EntitySpec) -> Runner:
        """Return how the clients of `spec`'s namespace run: on the caller's thread, or on the loop thread."""
        names = {self.aio.kind_for(spec)}
        migration = self.config.migrations.get(spec.namespace)
        if migration is not None:
            names |= {migration.source, migration.target}  # a migrating namespace reaches both ends
        kinds = {self.config.backends[name].kind for name in names}
        return _DRIVEN if all(registry.entry(k).blocking is not None for k in kinds) else self._on_loop

    def forget(self, subject: str | int | bytes) -> ForgetReceipt:
        """Erase every trace of a data subject, as `prism_runtime.forget` does (see docs/pii.md)."""
        from prism_runtime.pii.forget import forget

        return self.run(forget(self.aio, subject))


def connect_sync(
    url: str | None = None,
    *,
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    key_wrapper: KeyWrapper | None = None,
) -> SyncDatabase:
    """Return a blocking database handle: the same URLs, config and keys as `prism_runtime.connect`.

    Use `with prism_runtime.connect_sync(url) as db:` and the generated `<Message>SyncStore(db)`,
    `<Message>SyncSeries(db)`, `<Edge>SyncGraph(db)` classes; their methods block and return results.
    """
    return SyncDatabase(url, config=config, key_wrapper=key_wrapper)
