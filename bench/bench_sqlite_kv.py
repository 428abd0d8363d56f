"""Generated KeyValue get/put/put_many on SQLite vs raw sqlite3 running the same statements.

Three sides per operation: the generated store, raw sqlite3 called synchronously (the floor: no event loop,
no thread hop), and raw sqlite3 behind one worker thread (what an async program paid before point reads ran
on the loop). Each database holds the same rows; the sides run in alternating rounds, so drift in a shared
machine's speed hits them alike. Then put_many of 10k rows against the same upsert by hand (pre-encoded
rows, one transaction), and the event loop's lag while another process writes.
Run: python bench/bench_sqlite_kv.py [--ops 20000] [--rounds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import prism_runtime
from prism_runtime.backends.sqlite import MAX_VARIABLES
from protoc_gen_prism.protoc_runner import generate

ROOT = Path(__file__).resolve().parents[1]
BATCH = 10_000
GETS_PER_MS = 5  # the loop-lag runs' pace: up to 5,000 gets a second


def load_generated(out: Path) -> tuple[Any, Any]:
    """Generate the benchmark schema into `out` and import its modules."""
    result = generate(ROOT / "bench" / "proto", out)
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(out))
    from benchkv.v1 import kv_pb2, kv_prism

    return kv_pb2, kv_prism


def percentile(samples: list[float], q: float) -> float:
    """Return the q-quantile of `samples`."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def raw_connection(path: Path) -> sqlite3.Connection:
    """Open a connection configured as Prism configures its own."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class Side:
    """One way of running the operations: timed per call (latency) and per chunk (throughput)."""

    def __init__(self, name: str, get: Callable[[int], Any], put: Callable[[int], Any]) -> None:
        self.name = name
        self.ops = {"get": get, "put": put}
        self.spent = {"get": 0.0, "put": 0.0}
        self.count = {"get": 0, "put": 0}
        self.latency: dict[str, list[float]] = {"get": [], "put": []}


async def timed_rounds(sides: list[Side], op: str, ops: int, rounds: int) -> None:
    """Run `op` `ops` times on each side, in `rounds` alternating chunks, recording time and latencies."""
    chunk = max(1, ops // rounds)
    for first in range(0, ops, chunk):
        indexes = range(first, min(ops, first + chunk))
        for side in sides:
            call = side.ops[op]
            samples = side.latency[op]
            clock = time.perf_counter
            start = clock()
            if asyncio.iscoroutinefunction(call):
                for i in indexes:
                    t = clock()
                    await call(i)
                    samples.append(clock() - t)
            else:  # raw synchronous sqlite3: no coroutine around it
                for i in indexes:
                    t = clock()
                    call(i)
                    samples.append(clock() - t)
            side.spent[op] += clock() - start
            side.count[op] += len(indexes)


async def compare_point_ops(pb2: Any, prism: Any, tmp: Path, ops: int, rounds: int) -> list[dict[str, Any]]:
    """Time get and put on the three sides; return one record per (op, side)."""
    users = [
        pb2.Profile(
            user_id=f"user-{i:06d}", handle=f"u{i}", display_name=f"User {i}", tier=i % 3, tags=["a", "b"]
        )
        for i in range(ops)
    ]
    async with prism_runtime.connect(f"sqlite:///{tmp / 'gen.db'}") as db:
        store = prism.ProfileStore(db)
        await store.put_many(users)
        backend = store._backend
        upsert, get = backend.sql.upsert, backend.sql.get()
        rows = [backend.codec.encode(u) for u in users]
        ddl = [
            r[0]
            for r in sqlite3.connect(tmp / "gen.db").execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"
            )
        ]
        sync = raw_connection(tmp / "sync.db")
        pool = ThreadPoolExecutor(max_workers=1)
        loop = asyncio.get_running_loop()
        threaded = await loop.run_in_executor(pool, raw_connection, tmp / "thread.db")
        for conn in (sync, threaded):
            for statement in ddl:
                conn.execute(statement)
            conn.execute("BEGIN")
            conn.executemany(upsert, rows)
            conn.execute("COMMIT")

        async def gen_get(i: int) -> Any:
            return await store.get(users[i].user_id)

        async def gen_put(i: int) -> None:
            await store.put(users[i])

        def sync_get(i: int) -> Any:
            return sync.execute(get, (rows[i][0],)).fetchall()

        def sync_put(i: int) -> None:
            sync.execute(upsert, rows[i])

        async def thread_get(i: int) -> Any:
            return await loop.run_in_executor(pool, lambda: threaded.execute(get, (rows[i][0],)).fetchall())

        async def thread_put(i: int) -> None:
            await loop.run_in_executor(pool, threaded.execute, upsert, rows[i])

        sides = [
            Side("generated", gen_get, gen_put),
            Side("raw sync", sync_get, sync_put),
            Side("raw thread", thread_get, thread_put),
        ]
        for op in ("get", "put"):
            await timed_rounds(sides, op, min(ops, 500), 1)  # warm caches
            for side in sides:
                side.spent[op], side.count[op], side.latency[op] = 0.0, 0, []
            await timed_rounds(sides, op, ops, rounds)
        await loop.run_in_executor(pool, threaded.close)
        pool.shutdown()
        sync.close()
    return [
        {
            "op": op,
            "side": side.name,
            "ops_per_s": side.count[op] / side.spent[op],
            "p50_us": percentile(side.latency[op], 0.5) * 1e6,
            "p99_us": percentile(side.latency[op], 0.99) * 1e6,
        }
        for op in ("get", "put")
        for side in sides
    ]


async def compare_put_many(pb2: Any, prism: Any, tmp: Path, rounds: int) -> dict[str, Any]:
    """Time put_many of BATCH rows against the same upsert by hand on pre-encoded rows, alternating.

    Two hand-written sides, both one transaction of pre-encoded rows with raw sqlite3: the issue's baseline,
    `executemany` of the one-row upsert, and the shape put_many itself runs (the upsert of many rows per
    statement, the rest by executemany), so the ratio to each says what the statement shape gains and what
    the Python side (input checks, dedupe, encoding, thread hop) costs. Three more sides split put_many
    into its parts: the input check alone (which also serializes the items, for the native encoder), the
    encoding alone (from those bytes), and the driver writing pre-encoded rows
    (the thread hop and the statements, what is left when nothing needs checking or encoding).
    """
    users = [
        pb2.Profile(
            user_id=f"many-{i:06d}",
            handle=f"u{i}",
            display_name=f"User {i}",
            tier=i % 3,
            tags=["a", "b"],
            age=30,
        )
        for i in range(BATCH)
    ]
    sides = ("generated", "executemany", "multi_row", "encode", "check", "driver_write")
    times: dict[str, list[float]] = {side: [] for side in sides}
    async with prism_runtime.connect(f"sqlite:///{tmp / 'many.db'}") as db:
        store = prism.ProfileStore(db)
        await store.put(users[0])
        backend = store._backend
        rows = [backend.codec.encode(u) for u in users]
        per = max(1, MAX_VARIABLES // len(rows[0]))
        whole = len(rows) - len(rows) % per
        many = backend.sql.upsert_rows(per)
        hand = raw_connection(tmp / "many.db")

        def executemany() -> None:
            hand.execute("BEGIN IMMEDIATE")
            hand.executemany(backend.sql.upsert, rows)
            hand.execute("COMMIT")

        def multi_row() -> None:
            hand.execute("BEGIN IMMEDIATE")
            for start in range(0, whole, per):
                hand.execute(many, [v for row in rows[start : start + per] for v in row])
            hand.executemany(backend.sql.upsert, rows[whole:])
            hand.execute("COMMIT")

        checked = store._admit_all(
            users
        )  # the batch as put_many's input check leaves it (with its wire bytes)

        def encode() -> None:
            backend.codec.encode_flat(
                users, None, checked.wire
            )  # what put_many's driver runs (EncodedRows.flat)

        def check() -> None:
            store._admit_all(users)

        async def driver_write() -> None:
            await backend.driver.upsert_many(backend.sql, rows, namespace=backend.spec.namespace)

        await store.put_many(users)  # warm: every side then replaces existing rows
        for _ in range(rounds):
            start = time.perf_counter()
            await store.put_many(users)
            times["generated"].append(time.perf_counter() - start)
            start = time.perf_counter()
            await driver_write()
            times["driver_write"].append(time.perf_counter() - start)
            for name, side in (
                ("executemany", executemany),
                ("multi_row", multi_row),
                ("encode", encode),
                ("check", check),
            ):
                start = time.perf_counter()
                side()
                times[name].append(time.perf_counter() - start)
        hand.close()
    g, h, m, e, c, w = (statistics.median(times[k]) * 1e3 for k in sides)
    return {
        "generated_ms": g,
        "by_hand_ms": h,
        "multi_row_by_hand_ms": m,
        "encode_ms": e,
        "check_ms": c,
        "driver_write_ms": w,
        "ratio": g / h,
        "ratio_to_multi_row": g / m,
        "rounds": rounds,
    }


_WRITER = """
import sqlite3, sys, time
path, upsert, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
conn = sqlite3.connect(path, isolation_level=None, timeout=10)
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    n += 1
    conn.execute("BEGIN IMMEDIATE")
    for key in range(100):
        conn.execute(upsert, ("user-%06d" % key, "h", "d", n, None, "[]", "null", None))
    conn.execute("COMMIT")
print(n, flush=True)
"""


async def loop_lag(
    pb2: Any, prism: Any, tmp: Path, seconds: float, *, gets: bool, local_writer: bool, on_loop: bool
) -> dict[str, Any]:
    """Measure how late the loop runs a 1 ms timer while another process writes, optionally serving gets
    (on the loop's reader, or all on the worker as before) and running a writer task of its own."""
    async with prism_runtime.connect(f"sqlite:///{tmp / 'gen.db'}") as db:
        store = prism.ProfileStore(db)
        await store.get("user-000000")
        if not on_loop:
            store._backend.driver._reader = None  # every read through the worker thread, as before
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp / "gen.db"), store._backend.sql.upsert, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        lags: list[float] = []
        done = False

        async def ticker() -> None:
            while not done:
                due = time.perf_counter() + 0.001
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - due)

        async def in_process_writer() -> int:
            n = 0
            while local_writer and not done:
                await store.put(pb2.Profile(user_id=f"user-{n % 1000:06d}", handle="w"))
                n += 1
            return n

        tick = asyncio.create_task(ticker())
        puts = asyncio.create_task(in_process_writer())
        count = 0
        waits = preempted = 0  # context switches of the loop thread inside runs of gets
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if gets:
                # A server's pace, not flat out: GETS_PER_MS gets, then the loop is free until the next tick.
                before = resource.getrusage(resource.RUSAGE_THREAD)
                for _ in range(GETS_PER_MS):
                    await store.get(f"user-{count % 1000:06d}")
                    count += 1
                after = resource.getrusage(resource.RUSAGE_THREAD)
                waits += after.ru_nvcsw - before.ru_nvcsw
                preempted += after.ru_nivcsw - before.ru_nivcsw
            await asyncio.sleep(0.001)
        done = True
        await tick
        local_puts = await puts
        commits = int(await asyncio.to_thread(lambda: writer.communicate()[0]))
    return {
        "scenario": ("gets on the loop" if on_loop else "gets on the worker") if gets else "no gets",
        "local_writer": local_writer,
        "seconds": seconds,
        "gets": count,
        "local_puts": local_puts,
        "other_process_commits": commits,
        "lag_p50_us": percentile(lags, 0.5) * 1e6,
        "lag_p99_us": percentile(lags, 0.99) * 1e6,
        "lag_max_us": max(lags) * 1e6,
        # Voluntary switches inside a run of gets: the loop thread blocked (a lock wait, a sleep, I/O).
        # Involuntary ones: the OS gave the core to another process (a shared machine's preemption).
        "blocked_in_gets": waits,
        "preempted_in_gets": preempted,
    }


def print_put_many(many: dict[str, Any]) -> None:
    """Print the put_many figures."""
    print(
        f"put_many {BATCH}: generated {many['generated_ms']:.1f} ms, by hand executemany "
        f"{many['by_hand_ms']:.1f} ms ({many['ratio']:.2f}x), by hand {MAX_VARIABLES}-parameter statements "
        f"{many['multi_row_by_hand_ms']:.1f} ms ({many['ratio_to_multi_row']:.2f}x) (medians of {many['rounds']})"
    )
    parts = many["check_ms"] + many["encode_ms"] + many["driver_write_ms"]
    print(
        f"  its parts: input check and serializing {many['check_ms']:.1f} ms + encoding from wire bytes {many['encode_ms']:.1f} ms + the driver "
        f"writing pre-encoded rows {many['driver_write_ms']:.1f} ms = {parts:.1f} ms; "
        f"1.15x of executemany leaves {1.15 * many['by_hand_ms'] - many['driver_write_ms']:.1f} ms for the "
        "check and the encoding"
    )


async def main() -> None:
    """Print every figure; with --json, also write them for bench/plot.py."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--lag-seconds", type=float, default=5.0)
    parser.add_argument("--batch-rounds", type=int, default=9, help="alternating rounds of put_many")
    parser.add_argument("--only-batches", action="store_true", help="measure put_many only")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        pb2, prism = load_generated(tmp / "gen")
        many = await compare_put_many(pb2, prism, tmp, args.batch_rounds)
        if args.only_batches:
            print_put_many(many)
            return
        point = await compare_point_ops(pb2, prism, tmp, args.ops, args.rounds)
        lag = [
            await loop_lag(pb2, prism, tmp, args.lag_seconds, gets=g, local_writer=w, on_loop=o)
            for g, w, o in (
                (False, False, True),
                (True, False, True),
                (True, False, False),
                (True, True, True),
                (True, True, False),
            )
        ]
    print(f"{args.ops} ops per side in {args.rounds} alternating rounds, WAL, synchronous=NORMAL")
    print(f"{'':6}{'side':>12}{'ops/s':>10}{'p50 us':>9}{'p99 us':>9}")
    for r in point:
        print(f"{r['op']:6}{r['side']:>12}{r['ops_per_s']:10,.0f}{r['p50_us']:9.1f}{r['p99_us']:9.1f}")
    rate = {(r["op"], r["side"]): r["ops_per_s"] for r in point}
    for op in ("get", "put"):
        g = rate[op, "generated"]
        print(
            f"{op}: generated/sync {g / rate[op, 'raw sync']:.2f}x, generated/thread {g / rate[op, 'raw thread']:.2f}x"
        )
    print_put_many(many)
    print(
        f"loop lag (1 ms timer) over {args.lag_seconds:.0f} s while another process commits 100-row batches:"
    )
    for r in lag:
        print(
            f"  {r['scenario']:19}{' + writer task' if r['local_writer'] else '':15}"
            f"gets {r['gets']:8,} puts {r['local_puts']:6,} other commits {r['other_process_commits']:6,}  "
            f"lag p50 {r['lag_p50_us']:6.0f} us p99 {r['lag_p99_us']:7.0f} us max {r['lag_max_us']:7.0f} us; "
            f"in gets blocked {r['blocked_in_gets']} preempted {r['preempted_in_gets']}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"point": point, "put_many": many, "loop_lag": lag}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
