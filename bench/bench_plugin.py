"""Plugin speed: protoc-gen-prism vs protoc-gen-mypy on the same captured CodeGeneratorRequest.

Run: python bench/bench_plugin.py [--messages 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_schema

from protoc_gen_prism.protoc_runner import protoc_command, tool


def capture_request(root: Path, files: list[str], out: Path) -> bytes:
    """Run protoc once with PRISM_DUMP_REQUEST set and return the saved request bytes."""
    saved = out / "request.bin"
    env = {**os.environ, "PRISM_DUMP_REQUEST": str(saved)}
    (out / "gen").mkdir()
    outputs = [f"--plugin=protoc-gen-prism={tool('protoc-gen-prism')}", f"--prism_out={out / 'gen'}"]
    subprocess.run(protoc_command(root, files, outputs), env=env, check=True)
    return saved.read_bytes()


def median_seconds(plugin: str, request: bytes, runs: int) -> float:
    """Return the median wall time of feeding `request` to `plugin`, process start included."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([tool(plugin)], input=request, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
        assert done.stdout, plugin
    return statistics.median(times)


def main() -> None:
    """Print the medians and their ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proto"
        files = write_schema(root, args.messages)
        request = capture_request(root, files, Path(tmp))
    prism = median_seconds("protoc-gen-prism", request, args.runs)
    mypy = median_seconds("protoc-gen-mypy", request, args.runs)
    print(f"request: {args.messages} annotated messages in {len(files)} files, {len(request) / 1e6:.2f} MB")
    print(f"protoc-gen-prism  median of {args.runs}: {prism * 1000:8.1f} ms")
    print(f"protoc-gen-mypy   median of {args.runs}: {mypy * 1000:8.1f} ms")
    print(f"ratio prism/mypy: {prism / mypy:.2f}x")
    print("in-process phases of protoc-gen-prism (one run):")
    for name, seconds in phases(request):
        print(f"  {name:28}{seconds * 1000:8.1f} ms")


def phases(request: bytes) -> list[tuple[str, float]]:
    """Return how long each stage (model, validate, plan) and each emitter take in-process on `request`."""
    from google.protobuf.compiler import plugin_pb2

    from protoc_gen_prism.generator import EMITTERS, plan
    from protoc_gen_prism.model_builder import build_model, validated
    from protoc_gen_prism.settings import parse_parameter

    parsed = plugin_pb2.CodeGeneratorRequest.FromString(request)
    settings = parse_parameter(parsed.parameter)
    start = time.perf_counter()
    model = build_model(parsed.proto_file, parsed.file_to_generate, parsed.source_file_descriptors)
    out = [("model (descriptors -> IR)", time.perf_counter() - start)]
    start = time.perf_counter()
    schema = validated(model)
    out.append(("validate", time.perf_counter() - start))
    start = time.perf_counter()
    plans = plan(schema, settings.profile)
    out.append(("plan", time.perf_counter() - start))
    for emit in EMITTERS:
        start = time.perf_counter()
        emit(schema, plans, settings)
        out.append((emit.__module__.rsplit(".", 1)[-1], time.perf_counter() - start))
    return out


if __name__ == "__main__":
    main()
