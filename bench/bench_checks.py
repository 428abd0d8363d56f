"""Schema-check speed: `prism check` and `prism breaking` on the synthetic schema, as CI runs them (goal: < 2 s).

Run: python bench/bench_checks.py [--messages 1000] [--runs 5]

Wall times are of the real CLI (process start, protoc and all); the phase split is measured in-process.
The baseline for `prism breaking` is a `prism snapshot` image; the current schema renames one field in ten
messages, so the breaking rules have findings to report.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_schema

from protoc_gen_prism.checks.config import CheckConfig
from protoc_gen_prism.checks.runner import breaking_changes, lint_image
from protoc_gen_prism.images import Image, compile_image, read_image
from protoc_gen_prism.protoc_runner import tool


def timings(fn: Callable[[], object], runs: int) -> list[float]:
    """Return the wall time of each of `runs` calls of `fn`."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    """Return the median wall time of `fn`."""
    return statistics.median(timings(fn, runs))


def cli(*args: str) -> None:
    """Run the prism CLI; findings (exit 1) are expected, errors (exit 2) are not."""
    done = subprocess.run([tool("prism"), *args], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr


def main() -> None:
    """Print the medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proto"
        files = write_schema(root, args.messages)
        image_path = Path(tmp) / "prism.image.binpb"
        cli("snapshot", str(root), "-o", str(image_path))
        for name in files:
            path = root / name
            path.write_text(path.read_text().replace("  bytes payload = 8;", "  bytes body = 8;", 5))
        # The fastest run is the one least disturbed by other load on the machine; both are printed.
        check_times = timings(lambda: cli("check", str(root)), args.runs)
        breaking_times = timings(lambda: cli("breaking", str(root), "--against", str(image_path)), args.runs)
        startup = median_seconds(lambda: cli("--version"), args.runs)
        check, check_min = statistics.median(check_times), min(check_times)
        breaking, breaking_min = statistics.median(breaking_times), min(breaking_times)
        compile_s = median_seconds(lambda: compile_image(root), args.runs)
        image = compile_image(root)
        baseline = read_image(image_path)
        # A fresh Image each time: an image keeps the model it built.
        model_s = median_seconds(lambda: Image(image.files).schema(), args.runs)
        lint_s = median_seconds(lambda: lint_image(Image(image.files), CheckConfig()), args.runs)
        breaking_s = median_seconds(
            lambda: breaking_changes(Image(baseline.files), Image(image.files), CheckConfig()), args.runs
        )
        findings = breaking_changes(baseline, image, CheckConfig())
    print(
        f"schema: {args.messages} annotated messages in {len(files)} files; {len(findings)} breaking findings"
    )
    print(
        f"prism check     (CLI) median of {args.runs}: {check * 1000:8.1f} ms   fastest {check_min * 1000:8.1f} ms"
    )
    print(
        f"prism breaking  (CLI) median of {args.runs}: {breaking * 1000:8.1f} ms   fastest {breaking_min * 1000:8.1f} ms"
    )
    total, fastest = (check + breaking) * 1000, (check_min + breaking_min) * 1000
    print(
        f"check + breaking (CLI):              {total:8.1f} ms   fastest {fastest:8.1f} ms  (goal < 2000 ms)"
    )
    print("in-process phases (median):")
    print(f"  process start (prism --version) {startup * 1000:8.1f} ms, paid by each command")
    print(f"  compile image (protoc)  {compile_s * 1000:8.1f} ms")
    print(f"  build model             {model_s * 1000:8.1f} ms")
    print(f"  lint (model + rules)    {lint_s * 1000:8.1f} ms")
    print(f"  breaking (2 models + rules) {breaking_s * 1000:8.1f} ms")
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
