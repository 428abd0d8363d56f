"""What a service pays at start-up: import time of prism_runtime + a generated module, and the venv's size.

    python bench/bench_import.py --side now .venv examples/gen [--side before OLD_VENV OLD_GEN] --runs 15

Runs `python -X importtime` in fresh processes, the sides interleaved, and sums the top-level imports'
cumulative times (median and minimum over runs); also reports each venv's installed size and package count.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
from pathlib import Path

STATEMENT = (
    "import prism_runtime, prism_runtime.database; from prism_runtime.backends import sqlite; "
    "from acme.users.v1 import users_prism"
)


def import_ms(python: str, gen: Path) -> float:
    """Return the summed cumulative import time (ms) of the statement's top-level imports."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", STATEMENT], cwd=gen, capture_output=True, text=True, check=True
    )
    total = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        cumulative = line.split("|")[1].strip()
        if not line.rsplit("|", 1)[1].startswith("  "):  # depth 0: imported by the statement itself
            total += int(cumulative)
    return total / 1000


def venv_size(venv: Path) -> tuple[float, int]:
    """Return (MB installed under site-packages, number of distributions) of a virtualenv."""
    site = next(venv.glob("lib/python*/site-packages"))
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    return size / 1e6, len(list(site.glob("*.dist-info")))


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", nargs=3, action="append", required=True, metavar=("NAME", "VENV", "GEN"))
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name, _, _ in args.side}
    for _ in range(args.runs):
        for name, venv, gen in args.side:
            times[name].append(import_ms(str(Path(venv) / "bin" / "python"), Path(gen)))
    for name, venv, _ in args.side:
        mb, count = venv_size(Path(venv))
        print(
            f"{name}: import {statistics.median(times[name]):.1f} ms median, {min(times[name]):.1f} ms min; "
            f"venv {mb:.1f} MB, {count} distributions"
        )


if __name__ == "__main__":
    main()
