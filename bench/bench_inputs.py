"""What the API-edge checks (prism_runtime.inputs) cost on the hot path: per call, and on a SQLite get/put.

Two figures: the checks alone (ns per call, timeit), and get/put through the store (checked) against the same
backend call without the store (unchecked), in alternating chunks so both see the same machine.
Run: python bench/bench_inputs.py [--ops 20000] [--postgres]
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
import prism_stack as stack
from prism_runtime.inputs import key_check, message_check
from prism_runtime.schema import registered
from protoc_gen_prism.sql.provision import provision

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


async def compare(url: str, pb2: Any, prism: Any, gen: Path, ops: int) -> dict[str, tuple[float, float]]:
    """Time get and put through the store and straight on its backend; return {op: (checked, unchecked)}."""
    users = [pb2.Profile(user_id=f"user-{i:06d}", handle=f"u{i}", tier=i % 3) for i in range(ops)]
    async with prism_runtime.connect(url) as db:
        if not url.startswith("sqlite"):
            await provision(db, gen, echo=lambda line: None)
        store = prism.ProfileStore(db)
        backend = store._backend
        # Every timed put replaces a row, so neither way pays for growing the table more than the other.
        await store.put_many(users)
        put = await alternate(lambda i: store.put(users[i]), lambda i: backend.put((users[i],)), ops)
        get = await alternate(
            lambda i: store.get(users[i].user_id), lambda i: backend.get((users[i].user_id,)), ops
        )
    return {"put": put, "get": get}


async def main() -> None:
    """Print the cost of the checks alone, and get/put with and without them on SQLite and Postgres."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway local Postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen"
        pb2, prism = load_generated(gen)
        sample = pb2.Profile(user_id="user-000001", handle="u1")
        spec = next(s for s in registered().values() if s.message_name == "benchkv.v1.Profile")
        check_key = key_check(spec.namespace, spec.column(spec.key))
        admit = message_check(spec, pb2.Profile)
        print("checks alone (ns per call, best of 5):")
        print(f"  a call that does nothing     {per_call_ns(lambda: _nothing(sample)):8.0f}")
        print(f"  key check, ASCII str key     {per_call_ns(lambda: check_key('user-000001')):8.0f}")
        print(f"  key check, non-ASCII str key {per_call_ns(lambda: check_key('usér-000001')):8.0f}")
        print(f"  message check (type + key)   {per_call_ns(lambda: admit(sample)):8.0f}")
        results = {"SQLite": await compare(f"sqlite:///{Path(tmp) / 'bench.db'}", pb2, prism, gen, args.ops)}
        if args.postgres:
            server = await asyncio.to_thread(stack.start_postgres, Path(tmp) / "pg")
            try:
                results["Postgres"] = await compare(server.url, pb2, prism, gen, args.ops)
            finally:
                await asyncio.to_thread(stack.stop, server)
    for backend, figures in results.items():
        print(f"{backend}, {args.ops} ops each way, median of {CHUNKS} alternating chunks (us per op):")
        print(f"{'':6}{'checked':>10}{'unchecked':>11}{'ratio':>8}")
        for name, (checked, unchecked) in figures.items():
            print(f"{name:6}{checked:10.2f}{unchecked:11.2f}{checked / unchecked:8.3f}")


if __name__ == "__main__":
    asyncio.run(main())
