"""What telemetry costs a SQLite `get` (docs/observability.md): off, API only, and SDK recording.

Each way runs in its own process, the ways interleaved round after round, and each process times the best of
several passes of `--ops` gets; the figure is the median over rounds, in microseconds per get.

  none      opentelemetry made unimportable (the `otel` extra not installed)
  api       opentelemetry-api importable, no provider set (the API's no-op default)
  metrics   the SDK's MeterProvider (in-memory reader) only, as a Prometheus-only service: no span made
  sdk       the SDK's TracerProvider (SimpleSpanProcessor + in-memory exporter) and MeterProvider
            (in-memory reader) set globally: every get is a span and a histogram point
  baseline  with --baseline DIR: the prism_runtime package found in DIR (e.g. one without telemetry,
            `git archive <commit> runtime/prism_runtime | tar -x -C DIR --strip-components=1`), otel blocked

Each process also counts the calls (Python and C) a get makes on the event loop's thread: a figure free of
the machine's noise, equal where two ways run the same code.

Run: python bench/bench_otel.py [--ops 5000] [--rounds 7] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import asyncio, json, sys, time
mode, gen, db_path, ops, passes, baseline = sys.argv[1:7]
ops, passes = int(ops), int(passes)
if mode in ("none", "baseline"):
    class NoOtel:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, NoOtel())
if mode == "baseline":
    sys.path.insert(0, baseline)
sys.path.insert(0, gen)
if mode == "metrics":
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
if mode == "sdk":
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
import prism_runtime
from benchkv.v1 import kv_pb2, kv_prism

async def main():
    async with prism_runtime.connect(f"sqlite:///{db_path}") as db:
        store = kv_prism.ProfileStore(db)
        keys = [f"user-{i:06d}" for i in range(ops)]
        await store.put_many(kv_pb2.Profile(user_id=k, handle="h", display_name="d") for k in keys)
        best = float("inf")
        for _ in range(passes):
            if mode == "sdk":
                exporter.clear()
            start = time.perf_counter()
            for k in keys:
                await store.get(k)
            best = min(best, time.perf_counter() - start)
        traced = "Traced" in type(store._backend).__name__
        # Noise-free: the Python and C calls a get makes on this (event loop) thread, counted over 200 gets.
        calls = 0
        def count(frame, event, arg):
            nonlocal calls
            if event in ("call", "c_call"):
                calls += 1
        sys.setprofile(count)
        for k in keys[:200]:
            await store.get(k)
        sys.setprofile(None)
        print(json.dumps({"us_per_get": best / ops * 1e6, "traced": traced, "calls": calls / 200,
                          "module": prism_runtime.__file__}))

asyncio.run(main())
"""


def run(mode: str, gen: Path, db: Path, ops: int, passes: int, baseline: str) -> dict[str, object]:
    """Run one timing process; return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(gen), str(db), str(ops), str(passes), baseline],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> None:
    """Print microseconds per get for each way and the ratio to the first."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--baseline", default="")
    args = parser.parse_args()
    from protoc_gen_prism.protoc_runner import generate

    modes = (["baseline"] if args.baseline else []) + ["none", "api", "metrics", "sdk"]
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen"
        result = generate(ROOT / "bench" / "proto", gen)
        assert result.returncode == 0, result.stderr
        figures: dict[str, list[float]] = {m: [] for m in modes}
        calls: dict[str, float] = {}
        for r in range(args.rounds):
            for mode in modes:
                out = run(mode, gen, Path(tmp) / f"{mode}-{r}.db", args.ops, args.passes, args.baseline)
                assert out["traced"] == (mode in ("metrics", "sdk")), out
                assert (mode == "baseline") == str(out["module"]).startswith(args.baseline or "//"), out
                figures[mode].append(float(str(out["us_per_get"])))
                calls[mode] = float(str(out["calls"]))
    first = statistics.median(figures[modes[0]])
    print(f"SQLite get, {args.ops} gets x best of {args.passes} passes, median of {args.rounds} rounds")
    for mode in modes:
        median = statistics.median(figures[mode])
        spread = f"{min(figures[mode]):.1f}-{max(figures[mode]):.1f}"
        print(
            f"  {mode:9} {median:7.2f} us/get  ({spread})  {(median / first - 1) * 100:+6.1f}% vs {modes[0]}"
            f"  {calls[mode]:6.1f} calls/get on the loop thread"
        )


if __name__ == "__main__":
    main()
