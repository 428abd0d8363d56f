"""Plugin speed: protoc-gen-prism vs protoc-gen-mypy on the same captured CodeGeneratorRequest.

Run: python bench/bench_plugin.py [--messages 100 1000 10000] [--runs 5] [--json out.json]

For each size, protoc runs once to capture the request; then each round feeds it to both plugins, in
alternating order, as separate processes (start-up and imports included, as protoc runs them). The figure
compared is each process's CPU time (user + system), which a shared machine disturbs far less than wall
time; wall time is printed too. The per-message slope is fitted over the sizes, and the in-process phases
of protoc-gen-prism are timed on the largest request.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_schema

import prism_runtime
import protoc_gen_prism
from protoc_gen_prism.protoc_runner import protoc_command, tool

PLUGINS = ("protoc-gen-prism", "protoc-gen-mypy")


def capture_request(root: Path, files: list[str], out: Path) -> bytes:
    """Run protoc once with PRISM_DUMP_REQUEST set and return the saved request bytes."""
    saved = out / "request.bin"
    env = {**os.environ, "PRISM_DUMP_REQUEST": str(saved)}
    (out / "gen").mkdir()
    outputs = [f"--plugin=protoc-gen-prism={tool('protoc-gen-prism')}", f"--prism_out={out / 'gen'}"]
    subprocess.run(protoc_command(root, files, outputs), env=env, check=True)
    return saved.read_bytes()


def run_once(plugin: str, request: bytes) -> tuple[float, float]:
    """Return (CPU seconds, wall seconds) of one plugin process answering `request`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([tool(plugin)], input=request, capture_output=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.stdout, plugin
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def measure(request: bytes, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Return each plugin's CPU and wall times over `runs` interleaved rounds (the order alternates)."""
    times: dict[str, tuple[list[float], list[float]]] = {p: ([], []) for p in PLUGINS}
    for round_ in range(runs):
        for plugin in PLUGINS if round_ % 2 == 0 else PLUGINS[::-1]:
            cpu, wall = run_once(plugin, request)
            times[plugin][0].append(cpu)
            times[plugin][1].append(wall)
    return times


def slope(points: list[tuple[int, float]]) -> float:
    """Return the least-squares slope of seconds over messages."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    """Print, per size, both plugins' median CPU and wall times and their ratio; then the slopes and phases."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures for bench/plot_plugin.py"
    )
    args = parser.parse_args()
    # An installed wheel has its bytecode compiled by pip; a checkout may run with PYTHONDONTWRITEBYTECODE,
    # which would make every plugin process compile the compiler's sources again.
    for package in (protoc_gen_prism, prism_runtime):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)
    load_start = os.getloadavg()[0]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sizes: list[dict[str, object]] = []
    medians: dict[str, list[tuple[int, float]]] = {p: [] for p in PLUGINS}
    largest = b""
    for messages in args.messages:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "proto"
            files = write_schema(root, messages)
            request = capture_request(root, files, Path(tmp))
        largest = request
        times = measure(request, args.runs)
        print(f"\n{messages} annotated messages in {len(files)} files, request {len(request) / 1e6:.2f} MB")
        for plugin in PLUGINS:
            cpu, wall = times[plugin]
            medians[plugin].append((messages, statistics.median(cpu)))
            print(
                f"  {plugin:18} median of {args.runs}: CPU {statistics.median(cpu) * 1000:8.1f} ms, "
                f"wall {statistics.median(wall) * 1000:8.1f} ms"
            )
        prism, mypy = (times[p][0] for p in PLUGINS)
        rounds = [a / b for a, b in zip(prism, mypy, strict=True)]
        sizes.append(
            {
                "messages": messages,
                **{f"{p}_cpu_ms": statistics.median(times[p][0]) * 1000 for p in PLUGINS},
                "ratio": statistics.median(prism) / statistics.median(mypy),
                "ratio_rounds": rounds,
            }
        )
        print(
            f"  ratio prism/mypy, CPU: {statistics.median(prism) / statistics.median(mypy):.2f}x "
            f"(per round: {min(rounds):.2f}x to {max(rounds):.2f}x)"
        )
    if len(args.messages) > 1:
        print("\nper-message slope of CPU time (least squares over the sizes):")
        for plugin in PLUGINS:
            print(f"  {plugin:18} {slope(medians[plugin]) * 1000:.3f} ms/message")
    print(f"\nin-process phases of protoc-gen-prism on {args.messages[-1]} messages (CPU, one run):")
    stages = phases(largest)
    for name, seconds in stages:
        print(f"  {name:28}{seconds * 1000:8.1f} ms")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json is not None:
        figures = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average": [load_start, os.getloadavg()[0]],
            "runs": args.runs,
            "sizes": sizes,
            "slopes_ms_per_message": {p: slope(medians[p]) * 1000 for p in PLUGINS} if len(sizes) > 1 else {},
            "phases_messages": args.messages[-1],
            "phases_ms": {name: seconds * 1000 for name, seconds in stages},
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def phases(request: bytes) -> list[tuple[str, float]]:
    """Return the CPU time of each stage (parse, model, validate, plan) and each emitter on `request`."""
    from google.protobuf.compiler import plugin_pb2

    from protoc_gen_prism.generator import EMITTERS, plan
    from protoc_gen_prism.model_builder import build_model, validated
    from protoc_gen_prism.plugin import configure_gc
    from protoc_gen_prism.settings import parse_parameter

    configure_gc()  # as the plugin process does

    start = time.process_time()
    parsed = plugin_pb2.CodeGeneratorRequest.FromString(request)
    out = [("parse request", time.process_time() - start)]
    settings = parse_parameter(parsed.parameter)
    start = time.process_time()
    model = build_model(parsed.proto_file, parsed.file_to_generate, parsed.source_file_descriptors)
    out.append(("model (descriptors -> IR)", time.process_time() - start))
    start = time.process_time()
    schema = validated(model)
    out.append(("validate", time.process_time() - start))
    start = time.process_time()
    plans = plan(schema, settings.profile)
    out.append(("plan", time.process_time() - start))
    for emit in EMITTERS:
        start = time.process_time()
        emit(schema, plans, settings)
        out.append((emit.__module__.rsplit(".", 1)[-1], time.process_time() - start))
    return out


if __name__ == "__main__":
    main()
