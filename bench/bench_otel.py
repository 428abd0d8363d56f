"""What telemetry costs a SQLite `get` (docs/observability.md), configuration by configuration.

Each configuration runs in its own process, the configurations interleaved round after round. A process
times several passes of `--ops` gets and keeps its best pass; the figure is the median over rounds.

  baseline  with --baseline DIR: the prism_runtime package found in DIR (one without telemetry,
            `git archive 46fadfe runtime/prism_runtime | tar -x -C DIR --strip-components=1`), otel blocked
  none      (a) opentelemetry made unimportable: the `otel` extra not installed
  api       (b) opentelemetry-api importable, no provider set (the API's no-op default)
  metrics   the SDK's MeterProvider (in-memory reader) only, as a Prometheus-only service: no span made
  sdk       (c) the issue's configuration: TracerProvider with SimpleSpanProcessor + InMemorySpanExporter
            (every span sampled, exported on the caller's thread when it ends) and MeterProvider
  batch     production's processor: BatchSpanProcessor + InMemorySpanExporter (export on its own
            thread), every span sampled, and MeterProvider
  sampled   batch with ParentBased(TraceIdRatioBased(0.01)): 1% of root traces recorded, and MeterProvider

Time is the CPU time of the process (time.process_time: every thread, so a BatchSpanProcessor's export
thread counts; a shared machine's other jobs do not) per get, in microseconds. Wall time is printed beside.

Where telemetry records, each process also times the floor: an empty coroutine traced the way Prism traces a
get (a span started and ended with the same name, kind, attributes and given clock, and a histogram point),
written with the SDK's calls alone: no caller of the SDK can pay less per operation. And `prism(empty)`:
the same empty coroutine through Prism's recorder, so `prism(empty) - floor` is Prism's own part.

Each process also counts the calls (Python and C) a get makes on the event loop's thread: a figure free of
the machine's noise, equal where two configurations run the same code.

Run: python bench/bench_otel.py [--ops 5000] [--rounds 7] [--passes 3] [--baseline DIR] [--only sdk,batch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("none", "api", "metrics", "sdk", "batch", "sampled")
RECORDING = ("metrics", "sdk", "batch", "sampled")
TRACING = ("sdk", "batch", "sampled")

_CHILD = r"""
import asyncio, gc, json, sys, time
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
exporter = provider = None
if mode in ("metrics", "sdk", "batch", "sampled"):
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
if mode in ("sdk", "batch", "sampled"):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    exporter = InMemorySpanExporter()
    if mode == "sampled":
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.01)))
    else:
        provider = TracerProvider()
    processor = SimpleSpanProcessor(exporter) if mode == "sdk" else BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
import prism_runtime
from benchkv.v1 import kv_pb2, kv_prism

def settle():
    # Outside the timed window: the batch processor's queue drained, the exported spans let go, and a full
    # collection, so that each pass starts from the same heap (the collections a pass triggers count).
    exported = 0
    if provider is not None:
        provider.force_flush()
        exported = len(exporter.get_finished_spans())
        exporter.clear()
    gc.collect()
    return exported

async def timed(passes, once):
    best_cpu = best_wall = float("inf")
    exported = []
    for _ in range(passes):
        settle()
        cpu, wall = time.process_time(), time.perf_counter()
        await once()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
        exported.append(settle())
    return {"cpu": best_cpu / ops * 1e6, "wall": best_wall / ops * 1e6, "exported": max(exported) / ops}

async def main():
    async with prism_runtime.connect(f"sqlite:///{db_path}") as db:
        store = kv_prism.ProfileStore(db)
        keys = [f"user-{i:06d}" for i in range(ops)]
        await store.put_many(kv_pb2.Profile(user_id=k, handle="h", display_name="d") for k in keys)
        for k in keys[:500]:  # warm: the statement cache, the SDK's first aggregation of the attributes
            await store.get(k)

        async def gets():
            for k in keys:
                await store.get(k)

        out = {"get": await timed(passes, gets), "traced": "Traced" in type(store._backend).__name__,
               "module": prism_runtime.__file__}
        if mode in ("metrics", "sdk", "batch", "sampled"):
            recorder = store._backend._recorder
            op, histogram = recorder.operation("get"), recorder.histogram
            tracer = trace.get_tracer("bench") if provider is not None else None

            async def empty():
                return None

            async def floor():
                # The SDK's calls alone, as Prism makes them: the least any caller of the SDK pays.
                for _ in keys:
                    if tracer is None:
                        start = time.perf_counter()
                        await empty()
                        histogram.record(time.perf_counter() - start, op.attributes)
                        continue
                    begun = time.time_ns()
                    span = tracer.start_span(op.span_name, kind=op.kind, attributes=op.attributes, start_time=begun)
                    await empty()
                    ended = time.time_ns()
                    span.end(ended)
                    histogram.record((ended - begun) / 1e9, op.attributes)

            async def prism_empty():
                for _ in keys:
                    await recorder.run("get", 0, empty())

            out["floor"] = await timed(passes, floor)
            out["prism_empty"] = await timed(passes, prism_empty)

        # Noise-free: the Python and C calls a get (and the floor, and prism(empty)) makes on this (event loop)
        # thread, counted over 200 operations.
        calls = 0
        def count(frame, event, arg):
            nonlocal calls
            if event in ("call", "c_call"):
                calls += 1
        async def counted(once):
            nonlocal calls, keys
            every, keys, calls = keys, keys[:200], 0
            sys.setprofile(count)
            await once()
            sys.setprofile(None)
            keys = every
            return (calls - 1) / 200  # less the call of `once` itself
        out["calls"] = await counted(gets)
        if "floor" in out:
            out["floor"]["calls"] = await counted(floor)
            out["prism_empty"]["calls"] = await counted(prism_empty)
        print(json.dumps(out))

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


def _figure(out: dict[str, object], part: str, unit: str) -> float:
    found = out[part]
    assert isinstance(found, dict), out
    return float(found[unit])


def main() -> None:
    """Print CPU microseconds per get for each configuration, its ratio to the first, and the floors."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--baseline", default="")
    parser.add_argument("--only", default=",".join(MODES), help="comma-separated configurations")
    args = parser.parse_args()
    from protoc_gen_prism.protoc_runner import generate

    chosen = [m for m in args.only.split(",") if m]
    assert set(chosen) <= set(MODES), f"configurations: {', '.join(MODES)}"
    modes = (["baseline"] if args.baseline else []) + chosen
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen"
        result = generate(ROOT / "bench" / "proto", gen)
        assert result.returncode == 0, result.stderr
        outs: dict[str, list[dict[str, object]]] = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode in modes:
                out = run(mode, gen, Path(tmp) / f"{mode}-{r}.db", args.ops, args.passes, args.baseline)
                assert out["traced"] == (mode in RECORDING), out
                assert (mode == "baseline") == str(out["module"]).startswith(args.baseline or "//"), out
                outs[mode].append(out)

    def median(mode: str, part: str, unit: str = "cpu") -> float:
        return statistics.median(_figure(o, part, unit) for o in outs[mode])

    first = median(modes[0], "get")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"SQLite get: {args.ops} gets, best of {args.passes} passes per process, median of {args.rounds} "
        f"rounds; CPU us per get (process_time); load average at the end {load} on {os.cpu_count()} CPUs"
    )
    print(f"  {'config':9} {'cpu us':>7} {'range':>11} {'vs ' + modes[0]:>12} {'wall us':>8} {'calls':>6}")
    for mode in modes:
        cpu = [_figure(o, "get", "cpu") for o in outs[mode]]
        calls = float(str(outs[mode][-1]["calls"]))
        print(
            f"  {mode:9} {median(mode, 'get'):7.2f} {min(cpu):5.1f}-{max(cpu):<5.1f} "
            f"{(median(mode, 'get') / first - 1) * 100:+11.1f}% {median(mode, 'get', 'wall'):8.2f} {calls:6.1f}"
        )
    recording = [m for m in modes if m in RECORDING]
    if recording:
        print("  the floor (SDK calls alone around an empty coroutine) and Prism's recorder on the same:")
        print(
            f"  {'config':9} {'get - none':>10} {'floor':>7} {'prism(empty)':>13} {'prism own':>10} "
            f"{'exported':>9} {'calls: floor':>12} {'prism(empty)':>13}"
        )
        bare = median("none", "get") if "none" in modes else first
        for mode in recording:
            floor, empty = median(mode, "floor"), median(mode, "prism_empty")
            exported = statistics.median(_figure(o, "get", "exported") for o in outs[mode])
            print(
                f"  {mode:9} {median(mode, 'get') - bare:10.2f} {floor:7.2f} {empty:13.2f} "
                f"{empty - floor:10.2f} {exported:9.0%} {_figure(outs[mode][-1], 'floor', 'calls'):12.1f} "
                f"{_figure(outs[mode][-1], 'prism_empty', 'calls'):13.1f}"
            )


if __name__ == "__main__":
    main()
