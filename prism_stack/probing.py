"""Run a driver's async readiness check from the synchronous supervisor, with the driver's log kept quiet."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_probe(check: Callable[[], Awaitable[T]], *, timeout: float, quiet: tuple[str, ...] = ()) -> T:
    """Run `check()` on a loop of its own (in a thread when the caller already runs one), for `timeout` s at most.

    The bound is the probe's own: a driver may wait on a half-open connection (a server that dies while
    it answers) longer than its connect timeout.
    """

    async def main() -> T:
        return await asyncio.wait_for(check(), timeout)

    with _silenced(quiet):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        with ThreadPoolExecutor(1, thread_name_prefix="prism-stack-probe") as pool:
            return pool.submit(asyncio.run, main()).result()


@contextlib.contextmanager
def _silenced(names: tuple[str, ...]) -> Iterator[None]:
    """Keep a driver's connection-refused errors out of the terminal while a server is still starting.

    By level, not `Logger.disabled`: a driver logs on child loggers (nats.aio.client, aiokafka.conn), which
    inherit their parent's level but not its disabled flag.
    """
    loggers = [logging.getLogger(name) for name in names]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, saved, strict=True):
            logger.setLevel(level)
