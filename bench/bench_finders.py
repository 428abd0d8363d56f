"""Finders and TTL reads on SQLite and Postgres: what the (field, key) index and the expiry predicate cost.

Figures, each a ratio within one run with the two sides interleaved:
- a finder page (limit 100) from a key in the first half, for a value held by half the rows and for one held
  by 1 row in 100: the (tier, id) index Prism writes against a one-column (tier) index, as a database
  provisioned before it has;
- a get, and a put_many of 10 000 items, of an entity with a TTL (the expiry predicate bound to now, the
  expiry written) against one without.
Run: python bench/bench_finders.py [--rows 100000] [--ops 300] [--url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
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


async def interleaved(ops: tuple[Callable[[int], Awaitable[Any]], ...], count: int) -> list[float]:
    """Return the median latency in ms of each op, run `count` times in turn."""
    out: list[list[float]] = [[] for _ in ops]
    for i in range(count):
        for op, samples in zip(ops, out, strict=True):
            start = time.perf_counter()
            await op(i)
            samples.append(time.perf_counter() - start)
    return [statistics.median(s) * 1000 for s in out]


async def run(url: str, rows: int, ops: int) -> list[tuple[str, float, float]]:
    pb2 = importlib.import_module("benchfind.v1.find_pb2")
    prism = importlib.import_module("benchfind.v1.find_prism")
    async with prism_runtime.connect(url) as db:
        if not url.startswith("sqlite"):
            await provision(db, GEN, echo=lambda line: None)
        composite, single, expiring = prism.CompositeStore(db), prism.SingleStore(db), prism.ExpiringStore(db)
        plain = composite
        for store, message in ((composite, pb2.Composite), (single, pb2.Single), (expiring, pb2.Expiring)):
            for start in range(0, rows, 10_000):
                await store.put_many(
                    message(id=f"u{i:08d}", tier=i % 3, name="x")
                    for i in range(start, min(rows, start + 10_000))
                )
        driver: Any = db.backend
        table = "benchfind_v1_single"
        await driver.execute_script(
            [
                f'DROP INDEX IF EXISTS "{table}__tier__idx"',
                f'CREATE INDEX "{table}__tier__idx" ON "{table}" ("tier")',
            ],
            namespace=table,
        )
        analyze = (
            ["ANALYZE"]
            if url.startswith("sqlite")
            else [f'ANALYZE "{t}"' for t in ("benchfind_v1_composite", table)]
        )
        await driver.execute_script(analyze, namespace=table)

        def page(store: Any, value: int) -> Callable[[int], Awaitable[Any]]:
            async def op(i: int) -> None:
                # From a key in the first half: a full page of either value lies after it.
                after = f"u{(i * 7919) % (rows // 2):08d}"
                assert len(await store.find_by_tier(value, limit=100, after=after)) == 100

            return op

        def get(store: Any) -> Callable[[int], Awaitable[Any]]:
            async def op(i: int) -> None:
                assert await store.get(f"u{(i * 7919) % rows:08d}") is not None

            return op

        for name in ("benchfind_v1_composite", table):
            explain = "EXPLAIN QUERY PLAN" if url.startswith("sqlite") else "EXPLAIN"
            sql = f'{explain} SELECT * FROM "{name}" WHERE "tier" = 2 AND "id" > \'u00001000\' ORDER BY "id" LIMIT 100'
            plan = [" ".join(str(v) for v in row) for row in await driver.fetch(sql, [], namespace=name)]
            print(f"  plan on {name}: {' | '.join(plan)[:160]}")
        common = await interleaved((page(composite, pb2.TIER_FREE), page(single, pb2.TIER_FREE)), ops)
        rare = await interleaved((page(composite, pb2.TIER_PRO), page(single, pb2.TIER_PRO)), ops)
        gets = await interleaved((get(expiring), get(plain)), ops * 10)

        def put_many(store: Any, message: Any) -> Callable[[int], Awaitable[Any]]:
            async def op(i: int) -> None:
                await store.put_many(message(id=f"u{k:08d}", tier=tier(k), name="y") for k in range(10_000))

            return op

        puts = await interleaved((put_many(expiring, pb2.Expiring), put_many(plain, pb2.Composite)), 10)
    return [
        ("page, 1/2 match, ms", common[0], common[1]),
        ("page, 1/100 match, ms", rare[0], rare[1]),
        ("get, ms", gets[0], gets[1]),
        ("put_many 10k, ms", puts[0], puts[1]),
    ]


def tier(i: int) -> int:
    """Return the tier of row i: PRO for 1 row in 100, FREE for half, UNSPECIFIED for the rest."""
    return 2 if i % 100 == 0 else 1 if i % 2 else 0


GEN = Path()


async def main() -> None:
    global GEN
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--url", default=None, help="a Postgres URL (default: a throwaway embedded server)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        GEN = Path(tmp) / "gen"
        assert generate(ROOT / "bench" / "proto", GEN).returncode == 0
        sys.path.insert(0, str(GEN))
        server = None if args.url else await asyncio.to_thread(stack.start_postgres, Path(tmp) / "pg")
        try:
            for name, url in (("sqlite", f"sqlite:///{tmp}/find.db"), ("postgres", args.url or server.url)):
                print(
                    f"{name}: {args.rows} rows a table, {args.ops} finder pages and {args.ops * 10} gets a side"
                )
                print(f"  {'figure':24}{'prism':>10}{'baseline':>10}{'ratio':>8}")
                for figure, ours, base in await run(url, args.rows, args.ops):
                    print(f"  {figure:24}{ours:10.3f}{base:10.3f}{ours / base:8.2f}x")
                print("  (pages: (tier, id) index vs (tier) alone; get, put_many: with a TTL vs without)")
        finally:
            if server is not None:
                await asyncio.to_thread(stack.stop, server)


if __name__ == "__main__":
    asyncio.run(main())
