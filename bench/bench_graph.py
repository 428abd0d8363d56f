"""Graph hops: 1-hop and 2-hop latency p50/p90/p99 through the generated client vs the raw driver.

The graph is the social example's Follows: N people, each following E/N others drawn uniformly (seeded).
A 1-hop query is `neighbors(person)`; a 2-hop query is `bfs(person, 2)` (one query per hop, visited set).
The raw column runs the very same SQL text with the plain driver and the same visited-set logic, so the
ratio is Prism's own overhead. Netflix publishes single-digit ms for 1 hop and p90 < 50 ms for 2 hops.

Run: python bench/bench_graph.py [--nodes 100000] [--edges 1000000] [--queries 2000]
     [--url sqlite:///graph.db | postgresql://... | --start-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import prism_runtime
from prism_runtime import Direction, stack
from prism_runtime.config import sqlite_path
from protoc_gen_prism.protoc_runner import generate

ROOT = Path(__file__).resolve().parents[1]
BATCH = 20_000


def load_generated(out: Path) -> tuple[Any, Any]:
    """Generate the example schemas into `out` and import the social modules."""
    result = generate(ROOT / "examples" / "proto", out)
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(out))
    from acme.social.v1 import social_pb2, social_prism

    return social_pb2, social_prism


def person(i: int) -> str:
    """Return the key of person number `i`."""
    return f"p{i:07d}"


async def load(graph: Any, pb2: Any, nodes: int, edges: int, rng: random.Random) -> float:
    """Write the nodes and edges through the client; return the seconds it took."""
    start = time.perf_counter()
    for first in range(0, nodes, BATCH):
        await graph.add_nodes(
            pb2.Person(person_id=person(i), city=f"city-{i % 50}")
            for i in range(first, min(nodes, first + BATCH))
        )
    per_node = edges // nodes
    batch: list[Any] = []
    for i in range(nodes):
        for j in rng.sample(range(nodes), per_node):
            batch.append(pb2.Follows(follower_id=person(i), followee_id=person(j), muted=j % 10 == 0))
        if len(batch) >= BATCH:
            await graph.add_edges(batch)
            batch = []
    await graph.add_edges(batch)
    return time.perf_counter() - start


async def timings(run: Callable[[str], Awaitable[Any]], starts: list[str]) -> list[float]:
    """Return the latency in ms of `run` for each start node."""
    out = []
    for s in starts:
        t = time.perf_counter()
        await run(s)
        out.append((time.perf_counter() - t) * 1000)
    return out


def raw_sqlite(
    path: str, hop_sql: Callable[[list[str]], tuple[str, list[Any]]], pool: ThreadPoolExecutor | None
) -> tuple[Any, Any]:
    """Return 1-hop and 2-hop functions over plain sqlite3 running the client's SQL.

    With `pool`, each call runs on that one worker thread and is awaited, as an async program must.
    """
    conn = sqlite3.connect(path, check_same_thread=False)

    def fetch(sql: str, args: list[Any]) -> list[Any]:
        return conn.execute(sql, args).fetchall()

    def one(node: str) -> list[Any]:
        sql, args = hop_sql([node])
        return conn.execute(sql, args).fetchall()

    def two(node: str) -> list[Any]:
        seen = {node}
        frontier = [node]
        for _ in range(2):
            sql, args = hop_sql(frontier)
            found = sorted({n for _, n in conn.execute(sql, args).fetchall() if n not in seen})
            seen.update(found)
            frontier = found
        return frontier

    async def one_async(node: str) -> Any:
        if pool is None:
            return one(node)
        return await asyncio.get_running_loop().run_in_executor(pool, one, node)

    async def two_async(node: str) -> Any:
        if pool is None:
            return two(node)
        # A thread hop per query, as the client makes: the frontier logic stays on the event loop.
        loop = asyncio.get_running_loop()
        seen = {node}
        frontier = [node]
        for _ in range(2):
            sql, args = hop_sql(frontier)
            rows = await loop.run_in_executor(pool, fetch, sql, args)
            found = sorted({n for _, n in rows if n not in seen})
            seen.update(found)
            frontier = found
        return frontier

    return one_async, two_async


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    """Return p50, p90, p99."""
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return cuts[49], cuts[89], cuts[98]


async def main() -> None:
    """Build the graph, time both hop kinds through Prism and the raw driver, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--url", default="")
    parser.add_argument("--start-postgres", action="store_true", help="start a local Postgres for the run")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        url = args.url or f"sqlite:///{tmp}/graph.db"
        if args.start_postgres:
            Path(tmp).chmod(0o755)  # Postgres runs as an unprivileged user when we are root
            server = stack.start_postgres(Path(tmp) / "pg")
            url = server.url
        try:
            pb2, prism = load_generated(Path(tmp) / "gen")
            async with prism_runtime.connect(url) as db:
                graph = prism.FollowsGraph(db)
                seconds = await load(graph, pb2, args.nodes, args.edges, rng)
                starts = [person(rng.randrange(args.nodes)) for _ in range(args.queries)]
                backend = graph._graph  # the SQL it runs, for the raw driver to run too

                def hop_sql(frontier: list[str]) -> tuple[str, list[Any]]:
                    from prism_runtime.sql.graph import _Args

                    bind = _Args(backend.driver.dialect)
                    sql = backend._hop_sql(
                        frontier, Direction.OUT, {}, {}, prism_runtime.DEFAULT_FANOUT, bind
                    )
                    return sql, bind.values

                await graph.neighbors(starts[0])  # warm the statement cache and the page cache
                results = {
                    "1 hop": await timings(graph.neighbors, starts),
                    "2 hops": await timings(lambda s: graph.bfs(s, 2), starts),
                }
                raw: dict[str, list[float]] = {}
                threaded: dict[str, list[float]] = {}
                if db.url.kind == "sqlite":
                    one, two = raw_sqlite(sqlite_path(url), hop_sql, None)
                    raw = {"1 hop": await timings(one, starts), "2 hops": await timings(two, starts)}
                    pool = ThreadPoolExecutor(max_workers=1)
                    one, two = raw_sqlite(sqlite_path(url), hop_sql, pool)
                    threaded = {"1 hop": await timings(one, starts), "2 hops": await timings(two, starts)}
                    pool.shutdown()
                reached = statistics.mean([len(await graph.bfs(s, 2)) for s in starts[:200]])
        finally:
            if server is not None:
                stack.stop(server)
    print(
        f"{db.url.redacted.split(':')[0]}: {args.nodes:,} nodes, {args.edges:,} edges (uniform out-degree "
        f"{args.edges // args.nodes}), loaded in {seconds:.1f} s; {args.queries} queries each; "
        f"a 2-hop query reaches {reached:.0f} nodes on average"
    )
    print(
        "prism: the generated client; raw sync: sqlite3 on the calling thread (the floor); raw thread: sqlite3"
    )
    print("on one worker thread awaited from the event loop (what an async program pays); ratios are of p50")
    print(
        f"{'ms':8}{'p50':>8}{'p90':>8}{'p99':>8}{'sync p50':>10}{'thread p50':>12}{'thread p90':>12}"
        f"{'/sync':>8}{'/thread':>9}   Netflix"
    )
    netflix = {"1 hop": "single-digit ms", "2 hops": "p90 < 50 ms"}
    for name, ms in results.items():
        p50, p90, p99 = percentiles(ms)
        line = f"{name:8}{p50:8.2f}{p90:8.2f}{p99:8.2f}"
        if name in raw:
            s50, _, _ = percentiles(raw[name])
            t50, t90, _ = percentiles(threaded[name])
            line += f"{s50:10.2f}{t50:12.2f}{t90:12.2f}{p50 / s50:8.2f}{p50 / t50:9.2f}"
        else:
            line += f"{'n/a':>10}{'n/a':>12}{'n/a':>12}{'n/a':>8}{'n/a':>9}"
        print(f"{line}   {netflix[name]}")


if __name__ == "__main__":
    asyncio.run(main())
