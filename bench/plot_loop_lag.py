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

import matplotlib.pyplot as plt
from plot import bars  # the performance chart's grouped bars (it selects matplotlib's file-only backend)

RUNS = {
    "loop_lag.json": "normal priority,\nown writes",
    "loop_lag_rt.json": "loop real-time,\nown writes",
    "loop_lag_rt_other_process.json": "loop real-time,\nother process only",
}
SIDES = {"idle": "#bcbd22", "load": "#7f7f7f", "load + reads": "#1f77b4"}
CALLS = {"held_get": ("get", "#1f77b4"), "held_get_many_8": ("get_many of 8", "#ff7f0e")}
COLORS = {**SIDES, **dict(CALLS.values())}


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
        bars(
            axes[0][col],
            labels,
            {side: [runs[r]["interleaved"]["lag"][side][f"lag_{q}_us"] for r in labels] for side in SIDES},
            "µs (log scale)",
            f"ticker lag {q} (1 ms sleeps), sides interleaved" + ("; goal ≤ 1,000 µs" if q == "p99" else ""),
            colors=COLORS,
            log=True,
        )
        if q == "p99":
            axes[0][col].axhline(1000, color="#d62728", linewidth=0.8, linestyle="--")
        bars(
            axes[1][col],
            labels,
            {
                name: [runs[r]["interleaved"][key][f"wall_{q}_us"] for r in labels]
                for key, (name, _) in CALLS.items()
            },
            "µs (log scale)",
            f"time one read holds the loop, {q} (under load)",
            colors=COLORS,
            log=True,
        )
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
