"""Generated KeyValue get/put on SQLite vs raw sqlite3 running the same statements.

Three columns per operation: the generated store, raw sqlite3 called synchronously (the floor: no event
loop, no thread hop), and raw sqlite3 behind the same single worker thread (what an async program pays).
Run: python bench/bench_sqlite_kv.py [--ops 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import prism_runtime
from protoc_gen_prism.protoc_runner import generate

ROOT = Path(__file__).resolve().parents[1]


def load_generated(out: Path) -> tuple[Any, Any]:
    """Generate the benchmark schema into `out` and import its modules."""
    result = generate(ROOT / "bench" / "proto", out)
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(out))
    from benchkv.v1 import kv_pb2, kv_prism

    return kv_pb2, kv_prism


def rate(count: int, seconds: float) -> float:
    """Return operations per second."""
    return count / seconds


async def generated_store(pb2: Any, prism: Any, path: Path, ops: int) -> tuple[float, float, list[Any]]:
    """Time put then get through the generated store; return (put/s, get/s, rows as stored)."""
    users = [
        pb2.Profile(
            user_id=f"user-{i:06d}",
            handle=f"u{i}",
            display_name=f"User {i}",
            tier=i % 3,
            tags=["a", "b"],
        )
        for i in range(ops)
    ]
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        store = prism.ProfileStore(db)
        await store.put(users[0])  # creates the table outside the timed loop
        start = time.perf_counter()
        for u in users:
            await store.put(u)
        puts = rate(ops, time.perf_counter() - start)
        start = time.perf_counter()
        for u in users:
            await store.get(u.user_id)
        gets = rate(ops, time.perf_counter() - start)
        backend = store._backend
        rows = [backend.codec.encode(u) for u in users]
        return puts, gets, [backend.sql.upsert, backend.sql.get(), rows]


def raw_connection(path: Path) -> sqlite3.Connection:
    """Open a connection configured as Prism configures its own."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def raw_sync(path: Path, upsert: str, get: str, rows: list[Any]) -> tuple[float, float]:
    """Time the same statements with plain synchronous sqlite3."""
    conn = raw_connection(path)
    start = time.perf_counter()
    for row in rows:
        conn.execute(upsert, row)
    puts = rate(len(rows), time.perf_counter() - start)
    start = time.perf_counter()
    for row in rows:
        conn.execute(get, (row[0],)).fetchall()
    gets = rate(len(rows), time.perf_counter() - start)
    conn.close()
    return puts, gets


async def raw_threaded(path: Path, upsert: str, get: str, rows: list[Any]) -> tuple[float, float]:
    """Time the same statements with sqlite3 on one worker thread, awaited from the event loop."""
    pool = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(pool, raw_connection, path)
    start = time.perf_counter()
    for row in rows:
        await loop.run_in_executor(pool, conn.execute, upsert, row)
    puts = rate(len(rows), time.perf_counter() - start)
    start = time.perf_counter()
    for row in rows:
        await loop.run_in_executor(pool, lambda r=row: conn.execute(get, (r[0],)).fetchall())
    gets = rate(len(rows), time.perf_counter() - start)
    await loop.run_in_executor(pool, conn.close)
    pool.shutdown()
    return puts, gets


async def main() -> None:
    """Print ops/s for each way and the ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pb2, prism = load_generated(Path(tmp) / "gen")
        gen_put, gen_get, (upsert, get, rows) = await generated_store(
            pb2, prism, Path(tmp) / "gen.db", args.ops
        )
        # Same table definition as the generated one, copied from its schema.
        src = sqlite3.connect(Path(tmp) / "gen.db")
        ddl = [r[0] for r in src.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")]
        src.close()
        for name in ("sync.db", "thread.db"):
            conn = raw_connection(Path(tmp) / name)
            for statement in ddl:
                conn.execute(statement)
            conn.close()
        sync_put, sync_get = raw_sync(Path(tmp) / "sync.db", upsert, get, rows)
        thr_put, thr_get = await raw_threaded(Path(tmp) / "thread.db", upsert, get, rows)
    print(f"{args.ops} ops each, WAL, synchronous=NORMAL, one row = a profile with 8 columns")
    print(f"{'':10}{'generated':>12}{'raw sync':>12}{'raw thread':>12}{'gen/sync':>10}{'gen/thread':>12}")
    for op, g, s, t in (("put/s", gen_put, sync_put, thr_put), ("get/s", gen_get, sync_get, thr_get)):
        print(f"{op:10}{g:12,.0f}{s:12,.0f}{t:12,.0f}{g / s:10.2f}{g / t:12.2f}")


if __name__ == "__main__":
    asyncio.run(main())
