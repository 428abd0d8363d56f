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


PARTS = (("check + serialize", "#aec7e8"), ("encode", "#6baed6"), ("driver, pre-encoded rows", "#1f77b4"))


def batches(
    ax: Any, title: str, total: float, parts: list[float], hand: dict[str, float], baseline: str
) -> None:
    """Draw one backend's put_many of 10k: its time, its parts stacked, the hand-written sides, and the goal
    (1.15x of `baseline`) as a dashed line."""
    rows = ["put_many", "its parts", *hand]
    ax.barh(0, total, color=COLORS["generated"])
    ax.annotate(
        f"{total:.1f} ms", (total, 0), va="center", fontsize=8, xytext=(3, 0), textcoords="offset points"
    )
    left = 0.0
    for (name, color), value in zip(PARTS, parts, strict=True):
        ax.barh(1, value, left=left, color=color, label=f"{name} {value:.1f} ms")
        left += value
    for n, value in enumerate(hand.values(), start=2):
        ax.barh(n, value, color=COLORS["raw sync"])
        ax.annotate(
            f"{value:.1f} ms", (value, n), va="center", fontsize=8, xytext=(3, 0), textcoords="offset points"
        )
    goal = 1.15 * hand[baseline]
    ax.axvline(
        goal, color="#d62728", linestyle="--", linewidth=1, label=f"goal: 1.15x {baseline} ({goal:.1f} ms)"
    )
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(total, left, goal, *hand.values()) * 1.18)
    ax.set_xlabel("milliseconds (medians of the alternating rounds)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def main() -> None:
    """Read sqlite_kv.json and postgres_kv.json from the results directory; write the PNG."""
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    sqlite = json.loads((args.results / "sqlite_kv.json").read_text())
    postgres = json.loads((args.results / "postgres_kv.json").read_text())
    fig, axes = plt.subplots(3, 2, figsize=(13, 12.5))
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
    many = sqlite["put_many"]
    batches(
        axes[2][0],
        "SQLite: put_many of 10k Profiles against the upsert by hand",
        many["generated_ms"],
        [many["check_ms"], many["encode_ms"], many["driver_write_ms"]],
        {
            "executemany by hand": many["by_hand_ms"],
            "999-parameter statements by hand": many["multi_row_by_hand_ms"],
        },
        "executemany by hand",
    )
    figure = {f.strip(): r for f, r in pg.items()}
    batches(
        axes[2][1],
        "Postgres: put_many of 10k Profiles against the upsert by hand",
        pg["put_many 10k vs upsert"]["generated"],
        [
            figure["put_many's parts: check + serialize 10k"]["generated"],
            figure["encode from wire 10k"]["generated"],
            figure["driver, pre-encoded rows"]["generated"],
        ],
        {
            "COPY + staging + upsert by hand": pg["put_many 10k vs upsert"]["raw"],
            "a bare COPY (no upsert)": pg["put_many 10k vs COPY"]["raw"],
        },
        "COPY + staging + upsert by hand",
    )
    fig.suptitle("Generated stores against the raw driver (2 shared cores)", fontsize=12)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110, bbox_inches="tight")  # the batch legends sit below their axes


if __name__ == "__main__":
    main()
