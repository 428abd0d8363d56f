"""How long SQLite point reads on the event loop hold it, and the loop lag they add under a concurrent writer.

Issue 14 item 1 asks that a read never block the loop for long: loop lag p99 <= 1 ms under a concurrent
writer. On a shared 2-core machine the timer's lag with nothing running is already milliseconds (the OS
hands the cores to other processes), so this bench measures two things in one run:

(a) The lag of a ticker (a chain of `asyncio.sleep(0.001)`: how late each wake-up is) in three sides run in
    alternating windows, so drift in the machine's load hits them alike:
      idle          nothing but the ticker (the writers paused): the machine's and asyncio's own lag;
      load          another process committing 100-row batches 1 ms apart, a third one running
                    `wal_checkpoint(TRUNCATE)` every 10 ms, and a task of this process putting rows through
                    the worker thread, but no reads;
      load + reads  the same, while the loop serves 5 gets and 1 get_many of 8 keys per millisecond.
(b) The time each read holds the loop: every call is stepped by hand (`coro.send`), and each synchronous
    step, from the call to the point it returns or first hands off to the worker, is timed with
    perf_counter. A read on the loop is one step; a read that falls back to the worker is several, and
    the one before the hand-off is what it held the loop for.
(c) The loop thread's CPU time (time.thread_time) and its context switches (getrusage RUSAGE_THREAD) in
    the same step: wall time minus CPU time is time the thread was not running, and a voluntary switch
    means it blocked (a lock, a sleep, I/O) where an involuntary one means the OS preempted it.

Then the worst cases, reads on the loop only: a writer in another process holding its write transaction
open for a second at a time; `wal_checkpoint(TRUNCATE)` in a tight loop from another process while a
writer commits; and rows with one large value (the reader's value-length cap sends those to the worker).

Run: python bench/bench_loop_lag.py [--rounds 20] [--window 0.5] [--worst 3] [--rt] [--json out.json]
(--rt: the loop thread at real-time priority, as root, to take the other tenants' preemption out.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import sqlite3
import sys
import tempfile
import time
import types
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, TypeVar

import prism_runtime
from protoc_gen_prism.protoc_runner import generate

ROOT = Path(__file__).resolve().parents[1]
KEYS = 1000
GETS_PER_MS = 5
T = TypeVar("T")


def percentile(samples: list[float], q: float) -> float:
    """Return the q-quantile of `samples` (0.0 for none)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_generated(out: Path) -> tuple[Any, Any]:
    """Generate the benchmark schema into `out` and import its modules."""
    result = generate(ROOT / "bench" / "proto", out)
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(out))
    from benchkv.v1 import kv_pb2, kv_prism  # type: ignore[import-not-found]

    return kv_pb2, kv_prism


# --- helper processes (spawned; they run only while their event is set) ---------------------------------


def writer_process(path: str, upsert: str, running: Event, stop: Event, hold: float, counter: Any) -> None:
    """Commit 100-row batches 1 ms apart while `running` is set (back to back, this process would take the
    write lock again before a waiting writer's busy handler wakes); with `hold`, keep each transaction open
    that long."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    n = 0
    while not stop.is_set():
        if not running.wait(0.05):
            continue
        n += 1
        conn.execute("BEGIN IMMEDIATE")
        for key in range(100):
            conn.execute(upsert, (f"user-{key:06d}", "h", f"writer {n}", n, None, "[]", "null", None))
        if hold:
            time.sleep(hold)  # the write lock stays taken all this time
        conn.execute("COMMIT")
        counter.value = n
        time.sleep(0.001)
    conn.close()


def checkpoint_process(path: str, running: Event, stop: Event, pause: float, counter: Any) -> None:
    """Run wal_checkpoint(TRUNCATE) while `running` is set, `pause` seconds apart (0: back to back)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    n = 0
    while not stop.is_set():
        if not running.wait(0.05):
            continue
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        n += 1
        counter.value = n
        if pause:
            time.sleep(pause)
    conn.close()


# --- measuring the loop ------------------------------------------------------------------------------


@dataclass
class Held:
    """What the loop thread spent inside the synchronous steps of calls (one record per call)."""

    wall: list[float] = field(default_factory=list)  # the first step: held until done or handed off
    cpu: list[float] = field(default_factory=list)
    off_cpu: list[float] = field(default_factory=list)  # wall - cpu of that step
    voluntary: int = 0  # context switches inside the steps: the thread blocked
    involuntary: int = 0  # the OS preempted it
    handed_off: int = 0  # calls that went on to the worker thread (more than one step)

    def summary(self) -> dict[str, Any]:
        """Return p50/p99/max of each series in microseconds, and the counts."""
        out: dict[str, Any] = {"calls": len(self.wall), "handed_off": self.handed_off}
        for name in ("wall", "cpu", "off_cpu"):
            series = getattr(self, name)
            for label, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
                out[f"{name}_{label}_us"] = percentile(series, q) * 1e6
        out["voluntary_switches"] = self.voluntary
        out["involuntary_switches"] = self.involuntary
        return out


@types.coroutine
def stepped(coro: Coroutine[Any, Any, T], held: Held) -> Generator[Any, Any, T]:
    """Run `coro` as `await` would, timing its first synchronous step (the time it holds the loop before it
    returns or hands off) and counting the steps; whatever it yields goes up to the task unchanged."""
    value: Any = None
    error: BaseException | None = None
    steps = 0
    usage, cpu, clock = resource.getrusage, time.thread_time, time.perf_counter
    while True:
        r0 = usage(resource.RUSAGE_THREAD)
        c0 = cpu()
        t0 = clock()
        try:
            yielded = coro.send(value) if error is None else coro.throw(error)
        except StopIteration as stop:
            done, result = True, stop.value
        else:
            done, result = False, None
        t1 = clock()
        c1 = cpu()
        r1 = usage(resource.RUSAGE_THREAD)
        steps += 1
        if steps == 1:
            held.wall.append(t1 - t0)
            held.cpu.append(c1 - c0)
            held.off_cpu.append(max(0.0, (t1 - t0) - (c1 - c0)))
            held.voluntary += r1.ru_nvcsw - r0.ru_nvcsw
            held.involuntary += r1.ru_nivcsw - r0.ru_nivcsw
        if done:
            if steps > 1:
                held.handed_off += 1
            return result  # type: ignore[no-any-return]
        try:
            value, error = (yield yielded), None
        except BaseException as raised:  # cancellation: pass it down, as await does
            value, error = None, raised


class Ticker:
    """A chain of 1 ms sleeps; each wake-up's lateness goes to the list of the side being measured."""

    def __init__(self) -> None:
        self.lags: list[float] | None = None  # None: between sides, lags are dropped
        self.stopped = False

    async def run(self) -> None:
        """Tick until stopped."""
        clock = time.perf_counter
        while not self.stopped:
            due = clock() + 0.001
            await asyncio.sleep(0.001)
            late = clock() - due
            if self.lags is not None:
                self.lags.append(late)


def fallbacks_since(store: Any, before: dict[str, int]) -> dict[str, int]:
    """Return the driver's loop-read fallbacks by reason since `before` (a copy taken earlier)."""
    now: dict[str, int] = store._backend.driver.loop_read_fallbacks
    return {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0)}


def lag_summary(lags: list[float]) -> dict[str, Any]:
    """Return the ticks and the lag's p50/p99/max in microseconds."""
    return {
        "ticks": len(lags),
        "lag_p50_us": percentile(lags, 0.5) * 1e6,
        "lag_p99_us": percentile(lags, 0.99) * 1e6,
        "lag_max_us": percentile(lags, 1.0) * 1e6,
    }


# --- the run -----------------------------------------------------------------------------------------


@dataclass
class Helpers:
    """The helper processes and the events that start and stop them."""

    writer_on: Event
    checkpoint_on: Event
    stop: Event
    commits: Any
    checkpoints: Any
    processes: list[Any]

    def pause(self) -> None:
        """Stop writing and checkpointing (a batch under way finishes first)."""
        self.writer_on.clear()
        self.checkpoint_on.clear()

    def resume(self) -> None:
        """Write and checkpoint again."""
        self.writer_on.set()
        self.checkpoint_on.set()

    def close(self) -> None:
        """Stop the processes and wait for them."""
        self.stop.set()
        self.resume()
        for process in self.processes:
            process.join(timeout=30)


def start_helpers(path: Path, upsert: str, *, hold: float, checkpoint_pause: float) -> Helpers:
    """Spawn a writer and a checkpointer on the database at `path`, both paused."""
    ctx = mp.get_context("spawn")
    writer_on, checkpoint_on, stop = ctx.Event(), ctx.Event(), ctx.Event()
    commits, checkpoints = ctx.Value("q", 0), ctx.Value("q", 0)
    processes = [
        ctx.Process(
            target=writer_process, args=(str(path), upsert, writer_on, stop, hold, commits), daemon=True
        ),
        ctx.Process(
            target=checkpoint_process,
            args=(str(path), checkpoint_on, stop, checkpoint_pause, checkpoints),
            daemon=True,
        ),
    ]
    for process in processes:
        process.start()
    return Helpers(writer_on, checkpoint_on, stop, commits, checkpoints, processes)


async def serve_reads(store: Any, until: float, held_get: Held, held_many: Held, start: int) -> int:
    """At a server's pace, GETS_PER_MS gets and one get_many of 8 keys per millisecond, until `until`."""
    n = start
    clock = time.perf_counter
    while clock() < until:
        for _ in range(GETS_PER_MS):
            got = await stepped(store.get(f"user-{n % KEYS:06d}"), held_get)
            assert got is not None
            n += 1
        keys = [f"user-{(n + 37 * i) % KEYS:06d}" for i in range(8)]
        await stepped(store.get_many(keys), held_many)
        await asyncio.sleep(0.001)
    return n


async def own_writer(store: Any, pb2: Any, running: asyncio.Event, stopped: list[bool], held: Held) -> int:
    """Put rows through the worker thread, back to back, while `running` is set."""
    n = 0
    while not stopped[0]:
        await running.wait()
        if stopped[0]:
            break
        profile = pb2.Profile(user_id=f"user-{n % KEYS:06d}", handle="own", display_name=f"own {n}")
        await stepped(store.put(profile), held)
        n += 1
    return n


async def interleaved(
    pb2: Any, store: Any, path: Path, rounds: int, window: float, *, own_writes: bool
) -> dict[str, Any]:
    """Part (a), (b) and (c): the three sides in alternating windows, `rounds` of each; with `own_writes`,
    the loaded sides also put rows through this process's worker thread."""
    helpers = start_helpers(path, store._backend.sql.upsert, hold=0.0, checkpoint_pause=0.01)
    sides = ("idle", "load", "load + reads")
    lags: dict[str, list[float]] = {side: [] for side in sides}
    held_get, held_many, held_put = Held(), Held(), Held()
    ticker = Ticker()
    writing = asyncio.Event()
    stopped = [False]
    ticking = asyncio.create_task(ticker.run())
    putting = asyncio.create_task(own_writer(store, pb2, writing, stopped, held_put))
    reads = 0
    commits_before = 0
    fallbacks = dict(store._backend.driver.loop_read_fallbacks)
    try:
        await asyncio.sleep(2.0)  # the spawned processes import and connect
        for r in range(rounds):
            order = sides[r % 3 :] + sides[: r % 3]
            for side in order:
                if side == "idle":
                    helpers.pause()
                    writing.clear()
                else:
                    helpers.resume()
                    if own_writes:
                        writing.set()
                await asyncio.sleep(0.05)  # let the change take hold before measuring
                ticker.lags = lags[side]
                until = time.perf_counter() + window
                if side == "load + reads":
                    reads = await serve_reads(store, until, held_get, held_many, reads)
                else:
                    await asyncio.sleep(window)
                ticker.lags = None
            if r == 0:
                commits_before = helpers.commits.value
    finally:
        stopped[0] = True
        writing.set()
        ticker.stopped = True
        commits, checkpoints = helpers.commits.value, helpers.checkpoints.value
        helpers.close()
        await ticking
        puts = await putting
    result: dict[str, Any] = {
        "rounds": rounds,
        "window_s": window,
        "other_process_commits": commits,
        "commits_after_first_round": commits - commits_before,
        "truncate_checkpoints": checkpoints,
        "own_writes": own_writes,
        "own_puts": puts,
        "loop_read_fallbacks": fallbacks_since(store, fallbacks),
        "lag": {side: lag_summary(lags[side]) for side in sides},
        "held_get": held_get.summary(),
        "held_get_many_8": held_many.summary(),
        "held_put": held_put.summary(),
    }
    return result


async def worst_case(
    store: Any, path: Path, name: str, seconds: float, *, hold: float, checkpoint_pause: float
) -> dict[str, Any]:
    """Serve reads on the loop for `seconds` while another process writes (holding each transaction open
    `hold` seconds) and a third checkpoints with TRUNCATE (`checkpoint_pause` apart)."""
    helpers = start_helpers(path, store._backend.sql.upsert, hold=hold, checkpoint_pause=checkpoint_pause)
    held_get, held_many = Held(), Held()
    ticker = Ticker()
    lags: list[float] = []
    fallbacks = dict(store._backend.driver.loop_read_fallbacks)
    ticking = asyncio.create_task(ticker.run())
    try:
        await asyncio.sleep(2.0)
        helpers.resume()
        await asyncio.sleep(0.1)
        ticker.lags = lags
        await serve_reads(store, time.perf_counter() + seconds, held_get, held_many, 0)
        ticker.lags = None
    finally:
        ticker.stopped = True
        commits, checkpoints = helpers.commits.value, helpers.checkpoints.value
        helpers.close()
        await ticking
    return {
        "case": name,
        "seconds": seconds,
        "other_process_commits": commits,
        "truncate_checkpoints": checkpoints,
        "loop_read_fallbacks": fallbacks_since(store, fallbacks),
        "lag": lag_summary(lags),
        "held_get": held_get.summary(),
        "held_get_many_8": held_many.summary(),
    }


async def large_rows(pb2: Any, store: Any, repeat: int) -> list[dict[str, Any]]:
    """Gets of rows with one large value (display_name), and a get_many of 8 such rows."""
    out = []
    for size in (1_000, 16_000, 60_000, 200_000, 1_000_000, 10_000_000):
        keys = [f"large-{size}-{i}" for i in range(8)]
        await store.put_many(pb2.Profile(user_id=k, display_name="x" * size) for k in keys)
        held_get, held_many = Held(), Held()
        fallbacks = dict(store._backend.driver.loop_read_fallbacks)
        for i in range(repeat):
            await stepped(store.get(keys[i % 8]), held_get)
            await stepped(store.get_many(keys), held_many)
        out.append(
            {
                "value_bytes": size,
                "loop_read_fallbacks": fallbacks_since(store, fallbacks),
                "held_get": held_get.summary(),
                "held_get_many_8": held_many.summary(),
            }
        )
        for k in keys:
            await store.delete(k)
    return out


def fmt_held(label: str, h: dict[str, Any]) -> str:
    """One line of held-loop figures."""
    return (
        f"  {label:28} calls {h['calls']:7,}  wall p50/p99/max {h['wall_p50_us']:6.1f} /{h['wall_p99_us']:7.1f} /"
        f"{h['wall_max_us']:8.1f} us  cpu {h['cpu_p50_us']:6.1f} /{h['cpu_p99_us']:7.1f} /{h['cpu_max_us']:8.1f}"
        f"  off-cpu p99/max {h['off_cpu_p99_us']:7.1f} /{h['off_cpu_max_us']:8.1f}  switches vol {h['voluntary_switches']}"
        f" invol {h['involuntary_switches']}  to worker {h['handed_off']}"
    )


def fmt_lag(label: str, lag: dict[str, Any]) -> str:
    """One line of ticker lag figures."""
    return (
        f"  {label:28} ticks {lag['ticks']:6,}  lag p50 {lag['lag_p50_us']:7.0f} us  p99 {lag['lag_p99_us']:7.0f} us"
        f"  max {lag['lag_max_us']:8.0f} us"
    )


async def main() -> None:
    """Print every figure; with --json, also write them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds of the three sides")
    parser.add_argument("--window", type=float, default=0.5, help="seconds of each side per round")
    parser.add_argument("--worst", type=float, default=3.0, help="seconds of each worst case")
    parser.add_argument("--large-repeat", type=int, default=50)
    parser.add_argument(
        "--no-own-writes",
        action="store_true",
        help="the loaded sides put no rows through this process's worker",
    )
    parser.add_argument(
        "--rt",
        action="store_true",
        help="run the loop thread at real-time priority (SCHED_FIFO, needs root), so other processes on the "
        "machine cannot preempt it: what is left of the lag is the loop's own work and its waits",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        pb2, prism = load_generated(tmp / "gen")
        path = tmp / "lag.db"
        async with prism_runtime.connect(f"sqlite:///{path}") as db:
            store = prism.ProfileStore(db)
            await store.put_many(
                pb2.Profile(user_id=f"user-{i:06d}", handle=f"u{i}", display_name=f"User {i}", tags=["a"])
                for i in range(KEYS)
            )
            for i in range(KEYS):
                await store.get(f"user-{i:06d}")  # warm the reader's page cache
            if args.rt:
                # This thread only (Linux schedules threads): the worker thread, started already, and the
                # helper processes (RESET_ON_FORK) keep the normal policy.
                os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(10))
            main_run = await interleaved(
                pb2, store, path, args.rounds, args.window, own_writes=not args.no_own_writes
            )
            worst = [
                await worst_case(
                    store, path, "write transaction held 1 s", args.worst, hold=1.0, checkpoint_pause=1.0
                ),
                await worst_case(
                    store,
                    path,
                    "TRUNCATE checkpoints back to back",
                    args.worst,
                    hold=0.0,
                    checkpoint_pause=0.0,
                ),
            ]
            large = await large_rows(pb2, store, args.large_repeat)
    load_after = os.getloadavg()
    lag = main_run["lag"]
    print(f"loop thread at {'real-time (SCHED_FIFO 10)' if args.rt else 'normal'} priority")
    print(
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; {args.rounds} rounds of "
        f"{args.window} s per side; other process's commits {main_run['other_process_commits']:,}, "
        f"TRUNCATE checkpoints {main_run['truncate_checkpoints']:,}, own puts {main_run['own_puts']:,}; "
        f"loop reads run on the worker instead: {main_run['loop_read_fallbacks'] or 'none'}"
    )
    print("(a) ticker lag (1 ms sleeps):")
    for side in ("idle", "load", "load + reads"):
        print(fmt_lag(side, lag[side]))
    for q in ("p50", "p99", "max"):
        k = f"lag_{q}_us"
        print(
            f"  {q}: load + reads minus load {lag['load + reads'][k] - lag['load'][k]:+8.0f} us, "
            f"minus idle {lag['load + reads'][k] - lag['idle'][k]:+8.0f} us"
        )
    print("(b)/(c) time each call held the loop (first synchronous step):")
    print(fmt_held("get", main_run["held_get"]))
    print(fmt_held("get_many of 8", main_run["held_get_many_8"]))
    print(fmt_held("own put (to the worker)", main_run["held_put"]))
    print("worst cases (reads on the loop):")
    for case in worst:
        print(
            f" {case['case']}: other process's commits {case['other_process_commits']:,}, "
            f"TRUNCATE checkpoints {case['truncate_checkpoints']:,}; loop reads run on the worker "
            f"instead: {case['loop_read_fallbacks'] or 'none'}"
        )
        print(fmt_lag("ticker", case["lag"]))
        print(fmt_held("get", case["held_get"]))
        print(fmt_held("get_many of 8", case["held_get_many_8"]))
    print(" large values (display_name):")
    for row in large:
        print(
            f"  {row['value_bytes']:,} B: loop reads run on the worker instead: {row['loop_read_fallbacks'] or 'none'}"
        )
        print(fmt_held(f"get, {row['value_bytes']:,} B", row["held_get"]))
        print(fmt_held(f"get_many 8, {row['value_bytes']:,} B", row["held_get_many_8"]))
    if args.json is not None:
        record = {
            "load_average": [load_before[0], load_after[0]],
            "realtime_loop_thread": args.rt,
            "interleaved": main_run,
            "worst": worst,
            "large": large,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
