"""Running the async abstractions from blocking code, without a second copy of them.

The KeyValue, TimeSeries and Graph logic (statements, paging, traversals, PII sealing and audit) is written
once, as coroutines that await a driver. A blocking driver (`prism_runtime.backends.sqlite_sync`,
`postgres_sync`) does its I/O inside its `async def` methods and returns without ever suspending, so the
whole coroutine runs to its end in one `send(None)` on the caller's thread: that is `drive`. Only the
execute step differs between the two styles, as in a sans-I/O library; the coroutine protocol is the
generator that yields statements and receives rows.

Code on that path that would otherwise need an event loop (a lock held across awaits, a back-off pause,
work handed to a thread) uses the primitives here, which block instead on a thread where no loop runs.
Backends with no blocking driver (Kafka, NATS) run on a `LoopThread` the sync database owns.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
S = TypeVar("S")


def driving() -> bool:
    """Return whether code on this thread runs in the blocking style: no event loop runs here.

    Async code always runs under a loop, and a loop thread's blocking calls (`LoopThread`) run under that
    loop; so the only coroutines that run on a thread without one are those `drive` runs.
    """
    return asyncio._get_running_loop() is None


def drive(work: Coroutine[Any, Any, T]) -> T:
    """Run `work`, a coroutine of blocking drivers, to its end on this thread and return its result.

    A coroutine that suspends on a future needs an event loop: that is a bug in a blocking driver (or a call
    made from inside a coroutine, where the async client belongs), raised as RuntimeError. A bare yield
    (`asyncio.sleep(0)`) only gives way, so it continues at once.
    """
    try:
        while work.send(None) is None:
            pass
    except StopIteration as done:
        value: T = done.value
        return value
    work.close()
    raise RuntimeError(
        "a blocking Prism call waited on an event loop: call the Sync clients from plain threads, "
        "and the async clients from coroutines"
    )


def drive_iter(items: AsyncIterator[T]) -> Iterator[T]:
    """Iterate over an async iterator of blocking drivers, driving each step on the caller's thread."""
    return _iterate(items, drive)


def _iterate(items: AsyncIterator[T], run: Callable[[Coroutine[Any, Any, Any]], Any]) -> Iterator[T]:
    try:
        while True:
            try:
                item: T = run(_awaited(items.__anext__()))
            except StopAsyncIteration:
                return
            yield item
    finally:
        # Left early (break, an exception): close the async generator where it stands, as `async for` would.
        close = getattr(items, "aclose", None)
        if close is not None:
            run(close())


class LoopThread:
    """A private event loop on a daemon thread, for backends whose only client is async (Kafka, NATS)."""

    def __init__(self, name: str = "prism-sync-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the loop and block until it is done; its exception is raised here.

        It runs in a copy of the caller's context, as a driven call does, so context variables set by the
        caller (`prism_runtime.actor`, the current span) hold inside it.
        """
        if threading.get_ident() == self._thread.ident:
            work.close()
            raise RuntimeError("a sync Prism call was made from its own loop thread")
        if self._loop.is_closed():
            work.close()
            raise RuntimeError("the loop thread is stopped")
        context = contextvars.copy_context()
        done: Future[T] = Future()

        def start() -> None:
            task = self._loop.create_task(work, context=context)
            task.add_done_callback(lambda finished: _settle(done, finished))

        self._loop.call_soon_threadsafe(start)
        return done.result()

    def iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        """Iterate over an async iterator living on the loop."""
        return _iterate(items, self.run)

    def stop(self) -> None:
        """Cancel what still runs on the loop (a client's background tasks), then stop the loop and its thread.

        The same end as asyncio.run gives its loop: no task is left to be destroyed while pending.
        """
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()


async def _cancel_the_rest() -> None:
    rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


def _settle(done: Future[T], task: asyncio.Task[T]) -> None:
    if task.cancelled():
        done.cancel()
    elif task.exception() is not None:
        done.set_exception(task.exception())
    else:
        done.set_result(task.result())


async def _awaited(work: Awaitable[T]) -> T:
    # A coroutine around an awaitable that is not one (an async generator's step), for `drive` and the loop.
    return await work


class SetupLock:
    """A lock held across awaits (one-time setup, a key cache fill) that works in both styles.

    Under an event loop it is an asyncio.Lock; while `drive` runs it is a thread lock, since blocking
    callers share a store across the threads of a pool. One object serves both, each style on its own lock.
    """

    __slots__ = ("_aio", "_thread")

    def __init__(self) -> None:
        self._aio = asyncio.Lock()
        self._thread = threading.Lock()

    async def __aenter__(self) -> None:
        # The style cannot change inside the block: a driven coroutine never leaves its thread's `drive`.
        if driving():
            self._thread.acquire()
        else:
            await self._aio.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if driving():
            self._thread.release()
        else:
            self._aio.release()


async def both(first: Awaitable[T], second: Awaitable[S]) -> tuple[T, S]:
    """Await two reads: at once under a loop (asyncio.gather), one after the other while driven."""
    if driving():
        return await first, await second
    return await asyncio.gather(first, second)


async def pause(seconds: float) -> None:
    """Wait `seconds`: asyncio.sleep under a loop, time.sleep while driven."""
    if driving():
        time.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


async def offload(call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking `call`: on a worker thread under a loop, on this thread while driven."""
    if driving():
        return call(*args, **kwargs)
    return await asyncio.to_thread(call, *args, **kwargs)
