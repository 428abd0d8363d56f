"""Write a bench's figures as JSON for the plot scripts, with the run's command, time and machine load.

Each figure is {"figure", "unit", "sides": {side: {"per_s", "p50_ms", "p99_ms", ...}}, "ratio"}: every
side measured in the same run, interleaved; `ratio` is generated throughput / raw throughput where the
bench has both. Missing measurements are left out rather than written as zero.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


class Run:
    """The start of a run: its time and load average, kept until the figures are written."""

    def __init__(self) -> None:
        self.started = datetime.datetime.now(datetime.UTC)
        self.load_before = os.getloadavg()

    def write(self, path: Path, bench: str, figures: list[dict[str, Any]]) -> None:
        """Write `figures` to `path` with the command, time, CPUs and load average before and after."""
        document = {
            "bench": bench,
            "command": "python " + " ".join(["bench/" + Path(sys.argv[0]).name, *sys.argv[1:]]),
            "started_utc": self.started.isoformat(timespec="seconds"),
            "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "machine": machine(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in self.load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "figures": figures,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")


def machine() -> str:
    """Return the CPU model and architecture (the model from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.machine()


def side(
    per_s: float | None = None, p50_ms: float | None = None, p99_ms: float | None = None, **more: float
) -> dict[str, float]:
    """Return one side's measurements, without the ones not taken."""
    values = {"per_s": per_s, "p50_ms": p50_ms, "p99_ms": p99_ms, **more}
    return {k: v for k, v in values.items() if v is not None}
