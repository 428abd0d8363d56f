"""Draw docs/codegen.png from bench/bench_plugin.py's --json output: both plugins' CPU time per request
size, and where protoc-gen-prism's time goes on the largest request.

Run: python bench/bench_plugin.py --messages 100 1000 10000 --runs 5 --json bench/results/plugin.json
     python bench/plot_plugin.py bench/results/plugin.json docs/codegen.png
Needs matplotlib (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt
from plot import bars  # the performance chart's grouped bars (it selects matplotlib's file-only backend)

PLUGINS = {"protoc-gen-prism": "#1f77b4", "protoc-gen-mypy": "#7f7f7f"}


def main() -> None:
    """Read the bench's JSON; write the PNG."""
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    run = json.loads(args.results.read_text())
    sizes = run["sizes"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    groups = [f"{s['messages']:,} messages\n{s['ratio']:.2f}x" for s in sizes]
    bars(
        left,
        groups,
        {plugin: [s[f"{plugin}_cpu_ms"] for s in sizes] for plugin in PLUGINS},
        "CPU ms per request (log scale)",
        f"one process per request, median of {run['runs']} interleaved rounds ({run['when']})",
        colors=PLUGINS,
        log=True,
    )
    stages = {name: ms for name, ms in run["phases_ms"].items() if ms >= 1}
    right.barh(list(stages)[::-1], list(stages.values())[::-1], color=PLUGINS["protoc-gen-prism"])
    for y, ms in enumerate(list(stages.values())[::-1]):
        right.annotate(
            f"{ms:,.0f}", (ms, y), va="center", fontsize=7, xytext=(3, 0), textcoords="offset points"
        )
    right.set_xlabel("CPU ms")
    right.set_title(f"protoc-gen-prism's stages on {run['phases_messages']:,} messages", fontsize=10)
    fig.suptitle("protoc-gen-prism against protoc-gen-mypy on the same captured request (2 shared cores)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
