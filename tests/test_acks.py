"""How Kafka and NATS appends wait for their acknowledgements: every one checked, none left pending when the
wait ends.

The futures here are plain asyncio futures standing for aiokafka's and nats-py's; the server side of the
same path (acks lost with a killed server, a broker outage) is tests/test_faults.py's and test_outages.py's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from prism_runtime.backends.acks import acknowledged


def futures(count: int) -> list[asyncio.Future[Any]]:
    loop = asyncio.get_running_loop()
    return [loop.create_future() for _ in range(count)]


async def test_returns_once_every_ack_is_in_whatever_their_order() -> None:
    acks = futures(4)
    acks[0].set_result("a")
    loop = asyncio.get_running_loop()
    for i in (3, 1, 2):  # later ones first: the wait must not return before the earlier ones
        loop.call_soon(acks[i].set_result, i)
    await acknowledged(acks)
    assert all(a.done() for a in acks)


async def test_a_refused_message_fails_the_batch_and_the_pending_acks_are_released() -> None:
    acks = futures(4)
    acks[0].set_result("ok")
    acks[1].set_exception(RuntimeError("stream refused it"))
    acks[3].set_exception(RuntimeError("and this one"))
    with pytest.raises(RuntimeError, match="stream refused it"):
        await acknowledged(acks)
    assert acks[2].cancelled()  # nats-py frees its slot among the unacknowledged publishes only when done


async def test_an_ack_that_never_comes_times_out_and_the_pending_acks_are_released() -> None:
    acks = futures(3)
    acks[0].set_result("ok")
    with pytest.raises(TimeoutError):
        await acknowledged(acks, timeout=0.05)
    assert acks[1].cancelled() and acks[2].cancelled()


async def test_a_cancelled_wait_releases_the_pending_acks() -> None:
    acks = futures(2)
    waiting = asyncio.ensure_future(acknowledged(acks))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert all(a.cancelled() for a in acks)
