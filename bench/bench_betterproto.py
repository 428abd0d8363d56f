"""messages=betterproto against messages=protobuf: encode, decode, the store-edge conversion, get and put.

One schema is generated in both styles (two proto packages, so both import into this process): `Flat` holds
plain values only; `Rich` adds an enum, a Timestamp, a nested message, a wrapper and a oneof (both converted
field by field); `Timed` has `Rich`'s plain fields, enum, Timestamp and nested message and a Duration, which
sends it through the wire format. Figures are microseconds per call, the median of `--rounds` rounds;
within a round the sides alternate, so drift in a shared machine's speed hits them alike.

- encode / decode: `SerializeToString()` / `FromString()` of the *_pb2 class against `bytes()` / `FromString()`
  of the dataclass;
- to_stored / from_stored: the adapter at the store's edge, field by field and through the wire format;
- put / get: the generated store of each style on SQLite (a file per style, the same rows).

Run: python bench/bench_betterproto.py [--ops 5000] [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import prism_runtime
from prism_runtime.betterproto import BetterprotoAdapter
from protoc_gen_prism.protoc_runner import generate

SCHEMA = """syntax = "proto3";
package PACKAGE.v1;
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "prism/options.proto";

enum Tier {
  TIER_UNSPECIFIED = 0;
  TIER_GOLD = 1;
}

message Flat {
  option (prism.access_pattern) = "read_heavy";
  string user_id = 1 [(prism.key) = true];
  string handle = 2;
  string display_name = 3;
  int32 level = 4;
  repeated string tags = 5;
  map<string, string> preferences = 6;
  optional int32 age = 7;
  double score = 8;
}

message Place {
  string city = 1;
  string country = 2;
}

message Rich {
  option (prism.access_pattern) = "read_heavy";
  string user_id = 1 [(prism.key) = true];
  string handle = 2;
  string display_name = 3;
  Tier tier = 4;
  google.protobuf.Timestamp created_at = 5;
  repeated string tags = 6;
  map<string, string> preferences = 7;
  Place home = 8;
  google.protobuf.Int64Value credit = 9;
  oneof contact {
    string phone = 10;
    string pager = 11;
  }
}

message Timed {
  option (prism.access_pattern) = "read_heavy";
  string user_id = 1 [(prism.key) = true];
  string handle = 2;
  string display_name = 3;
  Tier tier = 4;
  google.protobuf.Timestamp created_at = 5;
  repeated string tags = 6;
  map<string, string> preferences = 7;
  Place home = 8;
  google.protobuf.Duration ttl = 9;
}
"""
STYLES = {"protobuf": "benchbp_pb", "betterproto": "benchbp_bp"}
KINDS = ("flat", "rich", "timed")


def generated(root: Path) -> dict[str, tuple[Any, Any, Any]]:
    """Generate the schema in both styles under `root`; return (messages, pb2, prism) modules by style."""
    import importlib

    modules: dict[str, tuple[Any, Any, Any]] = {}
    for style, package in STYLES.items():
        src = root / style / "proto"
        (src / package / "v1").mkdir(parents=True)
        (src / package / "v1" / "bench.proto").write_text(SCHEMA.replace("PACKAGE", package))
        out = root / style / "gen"
        done = generate(src, out, parameter=f"messages={style}")
        assert done.returncode == 0, done.stderr
        sys.path.insert(0, str(out))
        pb2 = importlib.import_module(f"{package}.v1.bench_pb2")
        prism = importlib.import_module(f"{package}.v1.bench_prism")
        messages = importlib.import_module(f"{package}.v1") if style == "betterproto" else pb2
        modules[style] = (messages, pb2, prism)
    return modules


def make(m: Any, kind: str, i: int, *, betterproto: bool) -> Any:
    """Return message `i` of `kind` in the module `m`."""
    if kind == "flat":
        return flat(m, i)
    message = rich(m, i, betterproto, getattr(m, kind.capitalize()))
    if kind == "rich":
        message.pager = f"p{i}"
        if betterproto:
            message.credit = i
        else:
            message.credit.value = i
    elif betterproto:
        message.ttl = datetime.timedelta(days=30)
    else:
        message.ttl.FromTimedelta(datetime.timedelta(days=30))
    return message


def flat(m: Any, i: int) -> Any:
    return m.Flat(
        user_id=f"user-{i:08d}",
        handle=f"handle{i}",
        display_name="Ann Lee",
        level=i % 7,
        tags=["alpha", "beta", "gamma"],
        preferences={"theme": "dark", "lang": "en"},
        age=30 + i % 40,
        score=i / 3,
    )


def rich(m: Any, i: int, betterproto: bool, kind: Any) -> Any:
    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=i)
    message = kind(
        user_id=f"user-{i:08d}",
        handle=f"handle{i}",
        display_name="Ann Lee",
        tier=1,
        tags=["alpha", "beta", "gamma"],
        preferences={"theme": "dark", "lang": "en"},
        home=m.Place(city="Paris", country="FR"),
    )
    if betterproto:
        message.created_at = when  # a datetime in betterproto, a Timestamp in protobuf
    else:
        message.created_at.FromDatetime(when)
    return message


def per_call(fn: Callable[[Any], Any], items: Sequence[Any], ops: int) -> float:
    """Return microseconds per call of `fn` on `ops` items taken in turn from `items`."""
    count = len(items)
    start = time.perf_counter()
    for i in range(ops):
        fn(items[i % count])
    return (time.perf_counter() - start) / ops * 1e6


async def per_await(fn: Callable[[Any], Coroutine[Any, Any, Any]], items: Sequence[Any]) -> float:
    """Return microseconds per awaited call of `fn` on each of `items`."""
    start = time.perf_counter()
    for item in items:
        await fn(item)
    return (time.perf_counter() - start) / len(items) * 1e6


def codec_figures(modules: dict[str, tuple[Any, Any, Any]], ops: int, rounds: int) -> dict[str, list[float]]:
    """Time encode, decode and both conversions of each message kind, the sides alternating each round."""
    bp, bp_pb2, bp_prism = modules["betterproto"]
    pb = modules["protobuf"][0]
    samples: dict[str, list[float]] = {}
    pool = 256  # distinct messages per kind, built once
    for kind in KINDS:
        name = kind.capitalize()
        pbs = [make(pb, kind, i, betterproto=False) for i in range(pool)]
        bps = [make(bp, kind, i, betterproto=True) for i in range(pool)]
        encoded = [m.SerializeToString() for m in pbs]
        stored_class = getattr(bp_pb2, name)
        stored = [stored_class.FromString(b) for b in encoded]
        spec = getattr(bp_prism, f"_{kind.upper()}_SPEC")
        adapters = {
            "fields": BetterprotoAdapter(spec, getattr(bp, name), stored_class),
            "wire": BetterprotoAdapter(spec, getattr(bp, name), stored_class, wire=True),
        }
        sides: list[tuple[str, Callable[[Any], Any], Sequence[Any]]] = [
            ("encode protobuf", type(pbs[0]).SerializeToString, pbs),
            ("encode betterproto", bytes, bps),
            ("decode protobuf", getattr(pb, name).FromString, encoded),
            ("decode betterproto", getattr(bp, name).FromString, encoded),
        ]
        for path, adapter in adapters.items():
            if adapter.by_fields or path == "wire":
                sides += [
                    (f"to_stored {path}", adapter.to_stored, bps),
                    (f"from_stored {path}", adapter.from_stored, stored),
                ]
        for _ in range(rounds):
            for label, fn, items in sides:
                samples.setdefault(f"{kind} {label}", []).append(per_call(fn, items, ops))
    return samples


async def store_figures(
    root: Path, modules: dict[str, tuple[Any, Any, Any]], ops: int, rounds: int
) -> dict[str, list[float]]:
    """Time put and get of each kind through each style's generated store on SQLite, the styles alternating."""
    samples: dict[str, list[float]] = {}
    keys = [f"user-{i:08d}" for i in range(ops)]
    async with contextlib.AsyncExitStack() as stack:
        sides = []
        for style, (messages, _, prism) in modules.items():
            db = await stack.enter_async_context(
                prism_runtime.connect(f"sqlite:///{root / style / 'bench.db'}")
            )
            betterproto = style == "betterproto"
            for kind in KINDS:
                store = getattr(prism, f"{kind.capitalize()}Store")(db)
                items = [make(messages, kind, i, betterproto=betterproto) for i in range(ops)]
                sides.append((f"{kind} put {style}", store.put, items))
                sides.append((f"{kind} get {style}", store.get, keys))
        for _ in range(rounds):
            for label, fn, items in sides:
                samples.setdefault(label, []).append(await per_await(fn, items))
    return samples


async def main() -> None:
    """Print the median microseconds per call of every figure, both styles interleaved."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        modules = generated(root)
        samples = codec_figures(modules, args.ops, args.rounds)
        samples.update(await store_figures(root, modules, args.ops, args.rounds))
    figures = {name: statistics.median(values) for name, values in samples.items()}
    load = os.getloadavg()
    print(f"load average {load[0]:.2f}; {args.ops} ops x {args.rounds} rounds; median microseconds per call")
    for name, value in figures.items():
        print(f"{name:32s} {value:9.2f}")
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "us_per_call": figures}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
