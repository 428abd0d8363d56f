"""Blocking (`connect_sync`) KeyValue get and put on SQLite vs raw sqlite3 running the same statements.

Two sides per operation, both plain blocking calls on one thread: the generated `ProfileSyncStore`, and raw
sqlite3 running the store's own get (or upsert) statement on the same file through its own connection, with
the same settings. The raw get returns rows; the store's returns a decoded message, so the ratio includes
decoding. The sides run in alternating chunks, so drift in a shared machine's speed hits them alike; the
ratio is of throughputs within one run. Target: sync get >= 0.6x raw.
Run: python bench/bench_sync_kv.py [--ops 20000] [--rounds 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prism_runtime
from prism_runtime.backends.sqlite import connect_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sqlite_kv import load_generated, percentile


def interleaved(sides: dict[str, Callable[[int], Any]], ops: int, rounds: int) -> dict[str, list[float]]:
    """Run every side over indexes 0..ops in `rounds` alternating chunks; return per-call latencies."""
    latency: dict[str, list[float]] = {name: [] for name in sides}
    spent = dict.fromkeys(sides, 0.0)
    chunk = max(1, ops // rounds)
    clock = time.perf_counter
    for first in range(0, ops, chunk):
        indexes = range(first, min(ops, first + chunk))
        for name, call in sides.items():
            samples = latency[name]
            start = clock()
            for i in indexes:
                t = clock()
                call(i)
                samples.append(clock() - t)
            spent[name] += clock() - start
    latency["_spent"] = [spent[name] for name in sides]
    return latency


def compare(pb2: Any, prism: Any, tmp: Path, ops: int, rounds: int) -> list[dict[str, Any]]:
    """Time get and put on both sides; return one record per (op, side)."""
    users = [
        pb2.Profile(
            user_id=f"user-{i:06d}", handle=f"u{i}", display_name=f"User {i}", tier=i % 3, tags=["a", "b"]
        )
        for i in range(ops)
    ]
    path = tmp / "sync.db"
    records: list[dict[str, Any]] = []
    with prism_runtime.connect_sync(f"sqlite:///{path}") as db:
        store = prism.ProfileSyncStore(db)
        store.put_many(users)
        backend: Any = store._store._backend
        upsert, get = backend.sql.upsert, backend.sql.get()
        rows = [backend.codec.encode(u) for u in users]
        keys = [u.user_id for u in users]
        raw = connect_file(str(path), "raw")  # the same settings as the store's connections

        def raw_get(i: int) -> Any:
            return raw.execute(get, (keys[i],)).fetchall()

        def raw_put(i: int) -> None:
            raw.execute(upsert, rows[i])

        def sync_put(i: int) -> None:
            store.put(users[i])

        for op, sides in (
            ("get", {"sync store": lambda i: store.get(keys[i]), "raw sqlite3": raw_get}),
            ("put", {"sync store": sync_put, "raw sqlite3": raw_put}),
        ):
            interleaved(sides, min(ops, 1000), 2)  # warm caches and statement cache
            latency = interleaved(sides, ops, rounds)
            for name, spent in zip(sides, latency["_spent"], strict=True):
                records.append(
                    {
                        "op": op,
                        "side": name,
                        "ops_per_s": ops / spent,
                        "p50_us": percentile(latency[name], 0.5) * 1e6,
                        "p99_us": percentile(latency[name], 0.99) * 1e6,
                    }
                )
        raw.close()
    return records


def main() -> None:
    """Run the benchmark and print a table (and JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("PRISM_MASTER_KEY_FILE", str(Path(tmp) / "master.key"))
        pb2, prism = load_generated(Path(tmp) / "gen")
        records = compare(pb2, prism, Path(tmp), args.ops, args.rounds)
    by = {(r["op"], r["side"]): r for r in records}
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'op':4} {'side':12} {'ops/s':>10} {'p50 us':>8} {'p99 us':>8}")
    for r in records:
        print(f"{r['op']:4} {r['side']:12} {r['ops_per_s']:10.0f} {r['p50_us']:8.1f} {r['p99_us']:8.1f}")
    summary = {
        op: by[(op, "sync store")]["ops_per_s"] / by[(op, "raw sqlite3")]["ops_per_s"]
        for op in ("get", "put")
    }
    print(f"sync get / raw: {summary['get']:.2f}x (target >= 0.6x); sync put / raw: {summary['put']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"records": records, "ratios": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
