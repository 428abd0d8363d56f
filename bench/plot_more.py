"""Draw docs/performance_streams_graph_pii.png from the TimeSeries, Graph and PII benches' --json output.

Run: python bench/bench_timeseries.py --records 20000 --rounds 3 --json bench/results/timeseries.json
     python bench/bench_graph.py --json bench/results/graph_sqlite.json
     python bench/bench_graph.py --start-postgres --json bench/results/graph_postgres.json
     python bench/bench_pii.py --rows 20000 --postgres --json bench/results/pii.json
     python bench/plot_more.py bench/results docs/performance_streams_graph_pii.png
One column per abstraction: throughput on top, p50/p99 below, the generated code against the raw driver
(for PII: the same message with and without three encrypted fields). The graph benches run at their
default size (100k people, 1M follows, 2000 queries).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from plot import bars  # bench/plot.py; also sets the Agg backend

COLORS = {"generated": "#1f77b4", "raw driver": "#7f7f7f", "3 PII fields": "#1f77b4", "no PII": "#7f7f7f"}
QUANTILES = ("p50", "p99")


def figures(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Return a result file's header and its figures by name."""
    document = json.loads(path.read_text())
    return document, {f["figure"]: f for f in document["figures"]}


def raw(figure: dict[str, Any]) -> dict[str, float]:
    """Return the raw driver's side of a figure: the one side not generated (the awaited one on SQLite)."""
    sides: dict[str, dict[str, float]] = {k: v for k, v in figure["sides"].items() if k != "generated"}
    return sides.get("raw sqlite3 thread") or next(iter(sides.values()))


def latency(figs: list[dict[str, Any]], pick: Any) -> list[float]:
    """Return p50 then p99 in microseconds for each figure, from the side `pick` chooses."""
    return [pick(f)[f"{q}_ms"] * 1e3 for f in figs for q in QUANTILES]


def main() -> None:
    """Read the four result files; write the PNG."""
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    ts_doc, ts = figures(args.results / "timeseries.json")
    g_doc, g_sqlite = figures(args.results / "graph_sqlite.json")
    gp_doc, g_pg = figures(args.results / "graph_postgres.json")
    pii_doc, pii = figures(args.results / "pii.json")
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))

    def gen(f: dict[str, Any]) -> dict[str, float]:
        sides: dict[str, dict[str, float]] = f["sides"]
        return sides["generated"]

    backends = ("kafka", "nats")
    moved = [ts[f"{op} {b}"] for op in ("append_many", "query") for b in backends]
    bars(
        axes[0][0],
        [f"{b}\n{op}" for op in ("append_many", "query") for b in ("Kafka (Tansu)", "NATS JetStream")],
        {"generated": [gen(f)["per_s"] for f in moved], "raw driver": [raw(f)["per_s"] for f in moved]},
        "records / s",
        "TimeSeries vs aiokafka / nats-py",
        colors=COLORS,
    )
    single = [ts[f"append {b}"] for b in backends]
    bars(
        axes[1][0],
        [f"{b} {q}" for b in ("Kafka", "NATS") for q in QUANTILES],
        {"generated": latency(single, gen), "raw driver": latency(single, raw)},
        "microseconds",
        "TimeSeries: one append, wait for its ack",
        colors=COLORS,
    )

    hops = [g_sqlite["1 hop"], g_sqlite["2 hops"], g_pg["1 hop"], g_pg["2 hops"]]
    hop_names = ["SQLite 1 hop", "SQLite 2 hops", "Postgres 1 hop", "Postgres 2 hops"]
    bars(
        axes[0][1],
        hop_names,
        {"generated": [gen(f)["per_s"] for f in hops], "raw driver": [raw(f)["per_s"] for f in hops]},
        "queries / s (one at a time)",
        "Graph hops vs sqlite3 (worker thread) / asyncpg",
        colors=COLORS,
    )
    bars(
        axes[1][1],
        [
            f"{n}\n{q}".replace(" ", "\n", 1)  # backend, hops, quantile: one line each
            for n in hop_names
            for q in QUANTILES
        ],
        {"generated": latency(hops, gen), "raw driver": latency(hops, raw)},
        "microseconds",
        "Graph hops: latency",
        colors=COLORS,
    )

    writes = [pii[f"put_many {p} {w}"] for w in ("SQLite", "Postgres") for p in ("new subjects", "rewrites")]
    names = [f"{w} {p}" for w in ("SQLite", "Postgres") for p in ("new", "rewrite")]
    field = pii["per-field encrypt+decrypt"]["sides"]
    bars(
        axes[0][2],
        names,
        {s: [f["sides"][s]["per_s"] for f in writes] for s in ("3 PII fields", "no PII")},
        "rows / s",
        f"PII put_many (per field: {field['generated']['us']:.1f} us vs "
        f"{field['raw AESGCM']['us']:.1f} us raw AESGCM)",
        colors=COLORS,
    )
    rewrites = [pii[f"put_many rewrites {w}"] for w in ("SQLite", "Postgres")]
    bars(
        axes[1][2],
        [f"{w} {q}" for w in ("SQLite", "Postgres") for q in QUANTILES],
        {s: latency(rewrites, lambda f, s=s: f["sides"][s]) for s in ("3 PII fields", "no PII")},
        "microseconds per batch of 500",
        "PII put_many rewrites: latency of one batch",
        colors=COLORS,
    )
    loads = [
        x
        for d in (ts_doc, g_doc, gp_doc, pii_doc)
        for x in (d["load_average_before"][0], d["load_average_after"][0])
    ]
    fig.suptitle(
        f"TimeSeries, Graph and PII against the raw driver ({ts_doc['cpus']} shared cores, "
        f"load average {min(loads):.1f}-{max(loads):.1f})",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
