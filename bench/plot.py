"""Draw docs/performance.png from the benches' --json output: throughput and p50/p99 against the raw driver.

Run: python bench/bench_sqlite_kv.py --json bench/results/sqlite_kv.json
     python bench/bench_postgres_kv.py --json bench/results/postgres_kv.json
     python bench/plot.py bench/results docs/performance.png
Needs matplotlib (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

SIDES = ("generated", "raw sync", "raw thread")
COLORS = {"generated": "#1f77b4", "raw sync": "#7f7f7f", "raw thread": "#bcbd22", "raw asyncpg": "#7f7f7f"}


def bars(
    ax: Any,
    groups: list[str],
    series: dict[str, list[float]],
    ylabel: str,
    title: str,
    *,
    colors: dict[str, str] = COLORS,
    log: bool = False,
) -> None:
    """Draw grouped bars, each labelled with its value: one group per entry of `groups`, one bar per series."""
    width = 0.8 / len(series)
    for n, (name, values) in enumerate(series.items()):
        xs = [g + n * width for g in range(len(groups))]
        ax.bar(xs, values, width, label=name, color=colors.get(name))
        for x, v in zip(xs, values, strict=True):
            ax.annotate(f"{v:,.0f}", (x, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def main() -> None:
    """Read sqlite_kv.json and postgres_kv.json from the results directory; write the PNG."""
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    sqlite = json.loads((args.results / "sqlite_kv.json").read_text())
    postgres = json.loads((args.results / "postgres_kv.json").read_text())
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    point = {(r["op"], r["side"]): r for r in sqlite["point"]}
    ops = ["get", "put"]
    bars(
        axes[0][0],
        ops,
        {s: [point[o, s]["ops_per_s"] for o in ops] for s in SIDES},
        "operations / s",
        "SQLite: throughput (one task)",
    )
    groups = [f"{o} {q}" for o in ops for q in ("p50", "p99")]
    bars(
        axes[0][1],
        groups,
        {s: [point[o, s][f"{q}_us"] for o in ops for q in ("p50", "p99")] for s in SIDES},
        "microseconds",
        "SQLite: latency",
    )
    axes[0][1].set_yscale("log")
    pg = {r["figure"]: r for r in postgres}
    latency = [f for f in pg if f.endswith(("p50", "p99"))]
    bars(
        axes[1][0],
        latency,
        {
            "generated": [pg[f]["generated"] * 1e3 for f in latency],
            "raw asyncpg": [pg[f]["raw"] * 1e3 for f in latency],
        },
        "microseconds",
        "Postgres: latency (one task)",
    )
    bulk = [f for f in pg if f.startswith(("put x", "get x"))]
    bars(
        axes[1][1],
        bulk,
        {"generated": [pg[f]["generated"] for f in bulk], "raw asyncpg": [pg[f]["raw"] for f in bulk]},
        "operations / s",
        "Postgres: throughput (8 tasks, pool of 10)",
    )
    fig.suptitle("Generated stores against the raw driver (2 shared cores)", fontsize=12)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
