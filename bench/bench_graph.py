"""Graph hops: 1-hop and 2-hop latency p50/p90/p99 through the generated client vs the raw driver.

The graph is the social example's Follows: N people, each following E/N others drawn uniformly (seeded).
A 1-hop query is `neighbors(person)`; a 2-hop query is `bfs(person, 2)` (one query per hop, visited set).
The raw column runs the very same SQL text with the plain driver and the same visited-set logic, so the
ratio is Prism's own overhead. Netflix publishes single-digit ms for 1 hop and p90 < 50 ms for 2 hops.

Run: python bench/bench_graph.py [--nodes 100000] [--edges 1000000] [--queries 2000]
     [--url sqlite:///graph.db | --url postgresql://... | --start-postgres] [--json out.json]
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

from record import Run, side

import prism_runtime
import prism_stack as stack
from prism_runtime import Direction
from prism_runtime.config import sqlite_path
from protoc_gen_prism.protoc_runner import generate
from protoc_gen_prism.sql.provision import provision

ROOT = Path(__file__).resolve().parents[1]
BATCH = 20_000
HopSql = Callable[[list[str]], tuple[str, list[Any]]]


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


async def timings(
    runs: dict[str, Callable[[str], Awaitable[Any]]], starts: list[str]
) -> dict[str, list[float]]:
    """Return the latencies in ms of each of `runs` per start node, interleaved so all see the same machine.

    The side going first changes from one start node to the next: the first to read a node's edges may meet
    pages not yet in the cache, and the others then find them there.
    """
    out: dict[str, list[float]] = {label: [] for label in runs}
    order = list(runs.items())
    for i, s in enumerate(starts):
        turn = i % len(order)
        for label, run in order[turn:] + order[:turn]:
            t = time.perf_counter()
            await run(s)
            out[label].append((time.perf_counter() - t) * 1000)
    return out


def two_hops(
    fetch: Callable[[str, list[Any]], Awaitable[list[Any]]], hop_sql: HopSql
) -> Callable[[str], Awaitable[Any]]:
    """Return a 2-hop BFS over `fetch` with the client's SQL and the same visited-set logic."""

    async def run(node: str) -> list[tuple[str, int]]:
        seen = {node}
        frontier = [node]
        reached = [(node, 0)]  # what bfs returns: every node with its depth
        for depth in (1, 2):
            sql, args = hop_sql(frontier)
            found = sorted({n for _, n in await fetch(sql, args) if n not in seen})
            seen.update(found)
            reached.extend((n, depth) for n in found)
            frontier = found
        return reached

    return run


def one_hop(
    fetch: Callable[[str, list[Any]], Awaitable[list[Any]]], hop_sql: HopSql
) -> Callable[[str], Awaitable[Any]]:
    """Return a 1-hop query over `fetch` with the client's SQL."""

    async def run(node: str) -> list[Any]:
        sql, args = hop_sql([node])
        return await fetch(sql, args)

    return run


def sqlite_fetchers(
    path: str, pool: ThreadPoolExecutor
) -> dict[str, Callable[[str, list[Any]], Awaitable[list[Any]]]]:
    """Return raw sqlite3 fetch functions: on the calling thread (the floor) and on one awaited worker thread."""
    conn = sqlite3.connect(path, check_same_thread=False)

    def fetch(sql: str, args: list[Any]) -> list[Any]:
        return conn.execute(sql, args).fetchall()

    async def sync(sql: str, args: list[Any]) -> list[Any]:
        return fetch(sql, args)

    async def threaded(sql: str, args: list[Any]) -> list[Any]:
        return await asyncio.get_running_loop().run_in_executor(pool, fetch, sql, args)

    return {"sqlite3 sync": sync, "sqlite3 thread": threaded}


def asyncpg_fetchers(pool: Any) -> dict[str, Callable[[str, list[Any]], Awaitable[list[Any]]]]:
    """Return a raw asyncpg fetch function on the client's own pool (same connections, same server)."""

    async def fetch(sql: str, args: list[Any]) -> list[Any]:
        return list(await pool.fetch(sql, *args))

    return {"asyncpg": fetch}


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
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    run = Run()
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
                # Postgres tables are provisioned, never implied.
                await provision(db, Path(tmp) / "gen", echo=lambda line: None)
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

                executor = ThreadPoolExecutor(max_workers=1)
                if db.url.kind == "sqlite":
                    fetchers = sqlite_fetchers(sqlite_path(url), executor)
                else:
                    fetchers = asyncpg_fetchers(await db.backend.pool("bench"))  # type: ignore[attr-defined]
                one = {"prism": graph.neighbors} | {k: one_hop(f, hop_sql) for k, f in fetchers.items()}
                two = {"prism": lambda s: graph.bfs(s, 2)} | {
                    k: two_hops(f, hop_sql) for k, f in fetchers.items()
                }
                # Warm every pooled connection's statement cache and the page cache before timing.
                await timings(one | {f"{k} 2": v for k, v in two.items()}, starts[:200])
                results = {"1 hop": await timings(one, starts), "2 hops": await timings(two, starts)}
                executor.shutdown()
                reached = statistics.mean([len(await graph.bfs(s, 2)) for s in starts[:200]])
        finally:
            if server is not None:
                stack.stop(server)
    print(
        f"{db.url.redacted.split(':')[0]}: {args.nodes:,} nodes, {args.edges:,} edges (uniform out-degree "
        f"{args.edges // args.nodes}), loaded in {seconds:.1f} s; {args.queries} queries each; "
        f"a 2-hop query reaches {reached:.0f} nodes on average"
    )
    print("prism: the generated client; every raw column runs the same SQL and visited-set logic with the")
    print(
        "plain driver (sqlite3 sync: on the calling thread, the floor; sqlite3 thread: on one worker thread"
    )
    print("awaited from the event loop, what an async program pays; asyncpg: the client's own pool)")
    labels = [label for label in results["1 hop"] if label != "prism"]
    header = f"{'ms':8}{'p50':>8}{'p90':>8}{'p99':>8}"
    for label in labels:
        header += f"{label + ' p50':>20}{'ratio':>7}"
    print(header + "   Netflix (their hardware)")
    netflix = {"1 hop": "single-digit ms", "2 hops": "p90 < 50 ms"}
    for name, by_label in results.items():
        p50, p90, p99 = percentiles(by_label["prism"])
        line = f"{name:8}{p50:8.2f}{p90:8.2f}{p99:8.2f}"
        for label in labels:
            r50 = percentiles(by_label[label])[0]
            line += f"{r50:20.2f}{p50 / r50:7.2f}"
        print(f"{line}   {netflix[name]}")
    if args.json is not None:
        run.write(args.json, f"graph {db.url.kind}", [figure(name, by) for name, by in results.items()])


def figure(name: str, by_label: dict[str, list[float]]) -> dict[str, Any]:
    """Return one hop kind's figure: queries/s (one at a time) and p50/p90/p99 per side, ratios to each raw."""
    sides = {}
    for label, ms in by_label.items():
        p50, p90, p99 = percentiles(ms)
        sides["generated" if label == "prism" else f"raw {label}"] = side(
            len(ms) / sum(ms) * 1000, p50, p99, p90_ms=p90
        )
    gen = sides["generated"]["per_s"]
    ratios = {label: gen / s["per_s"] for label, s in sides.items() if label != "generated"}
    # The headline ratio is against what an async program pays for the raw driver: the awaited worker thread
    # on SQLite, the client's own pool on Postgres.
    headline = ratios.get("raw sqlite3 thread", ratios.get("raw asyncpg"))
    return {
        "figure": name,
        "unit": "queries/s (one at a time)",
        "sides": sides,
        "ratio": headline,
        "ratios": ratios,
    }


if __name__ == "__main__":
    asyncio.run(main())
