"""Draw docs/loop_lag.png from bench/bench_loop_lag.py's --json output: the ticker's lag per side and the
time reads hold the loop, for the three recorded runs (normal priority; loop thread real-time with this
process's own writes; real-time with the writer in another process only).

Run: python bench/bench_loop_lag.py --json bench/results/loop_lag.json
     python bench/bench_loop_lag.py --rt --json bench/results/loop_lag_rt.json
     python bench/bench_loop_lag.py --rt --no-own-writes --json bench/results/loop_lag_rt_other_process.json
     python bench/plot_loop_lag.py bench/results docs/loop_lag.png
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

RUNS = {
    "loop_lag.json": "normal priority,\nown writes",
    "loop_lag_rt.json": "loop real-time,\nown writes",
    "loop_lag_rt_other_process.json": "loop real-time,\nother process only",
}
SIDES = {"idle": "#bcbd22", "load": "#7f7f7f", "load + reads": "#1f77b4"}
CALLS = {"held_get": ("get", "#1f77b4"), "held_get_many_8": ("get_many of 8", "#ff7f0e")}


def grouped(ax: Any, groups: list[str], series: dict[str, tuple[list[float], str]], title: str) -> None:
    """Draw grouped bars on a log scale, each labelled with its value."""
    width = 0.8 / len(series)
    for n, (name, (values, color)) in enumerate(series.items()):
        xs = [g + n * width for g in range(len(groups))]
        ax.bar(xs, values, width, label=name, color=color)
        for x, v in zip(xs, values, strict=True):
            ax.annotate(f"{v:,.0f}", (x, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("µs (log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def main() -> None:
    """Read the three runs' JSON from the results directory; write the PNG."""
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    runs = {label: json.loads((args.results / name).read_text()) for name, label in RUNS.items()}
    labels = list(runs)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for col, q in enumerate(("p50", "p99")):
        grouped(
            axes[0][col],
            labels,
            {
                side: ([runs[r]["interleaved"]["lag"][side][f"lag_{q}_us"] for r in labels], color)
                for side, color in SIDES.items()
            },
            f"ticker lag {q} (1 ms sleeps), sides interleaved" + ("; goal ≤ 1,000 µs" if q == "p99" else ""),
        )
        if q == "p99":
            axes[0][col].axhline(1000, color="#d62728", linewidth=0.8, linestyle="--")
        grouped(
            axes[1][col],
            labels,
            {
                name: ([runs[r]["interleaved"][key][f"wall_{q}_us"] for r in labels], color)
                for key, (name, color) in CALLS.items()
            },
            f"time one read holds the loop, {q} (under load)",
        )
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
