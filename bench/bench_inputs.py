"""What the API-edge checks (prism_runtime.inputs) cost on the hot path: per call, and on a SQLite get/put.

Two figures: the checks alone (ns per call, timeit), and get/put through the store (checked) against the same
backend call without the store (unchecked), in alternating chunks so both see the same machine.
Run: python bench/bench_inputs.py [--ops 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sqlite_kv import load_generated

import prism_runtime
from prism_runtime.inputs import key_check, message_check

CHUNKS = 20


def _nothing(value: Any) -> None:
    """Do nothing: the cost of a call, for scale."""


def per_call_ns(fn: Callable[[], Any], number: int = 200_000) -> float:
    """Return the best of five timings of `fn`, in ns per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9


async def alternate(
    checked: Callable[[int], Awaitable[Any]], unchecked: Callable[[int], Awaitable[Any]], ops: int
) -> tuple[float, float]:
    """Run both ways in alternating chunks; return the median us per op of each."""
    size = ops // CHUNKS
    times: tuple[list[float], list[float]] = ([], [])
    for chunk in range(CHUNKS):
        order = ((checked, times[0]), (unchecked, times[1]))
        for op, samples in order if chunk % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            for i in range(chunk * size, (chunk + 1) * size):
                await op(i)
            samples.append((time.perf_counter() - start) / size * 1e6)
    return statistics.median(times[0]), statistics.median(times[1])


async def main() -> None:
    """Print the cost of the checks alone, and get/put with and without them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pb2, prism = load_generated(Path(tmp) / "gen")
        users = [pb2.Profile(user_id=f"user-{i:06d}", handle=f"u{i}", tier=i % 3) for i in range(args.ops)]
        async with prism_runtime.connect(f"sqlite:///{Path(tmp) / 'bench.db'}") as db:
            store = prism.ProfileStore(db)
            backend = store._backend
            spec = store.spec
            check_key = key_check(spec.namespace, spec.column(spec.key))
            admit = message_check(spec, pb2.Profile)
            sample = users[0]
            print("checks alone (ns per call, best of 5):")
            print(f"  a call that does nothing     {per_call_ns(lambda: _nothing(sample)):8.0f}")
            print(f"  key check, ASCII str key     {per_call_ns(lambda: check_key('user-000001')):8.0f}")
            print(f"  key check, non-ASCII str key {per_call_ns(lambda: check_key('usér-000001')):8.0f}")
            print(f"  message check (type + key)   {per_call_ns(lambda: admit(sample)):8.0f}")
            # Every timed put replaces a row, so neither way pays for growing the table more than the other.
            await store.put_many(users)
            put = await alternate(lambda i: store.put(users[i]), lambda i: backend.put((users[i],)), args.ops)
            get = await alternate(
                lambda i: store.get(users[i].user_id), lambda i: backend.get((users[i].user_id,)), args.ops
            )
    print(f"SQLite, {args.ops} ops each way, median of {CHUNKS} alternating chunks (us per op):")
    print(f"{'':6}{'checked':>10}{'unchecked':>11}{'ratio':>8}")
    for name, (checked, unchecked) in (("put", put), ("get", get)):
        print(f"{name:6}{checked:10.2f}{unchecked:11.2f}{checked / unchecked:8.3f}")


if __name__ == "__main__":
    asyncio.run(main())
