"""`prism generate`: protoc with every include path and plugin set, in one go."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protoc_gen_prism import protoc_runner


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "generate", help="run protoc on a directory: *_pb2.py, *_pb2.pyi and Prism output in one go"
    )
    parser.add_argument("proto_root", help="directory containing the .proto files (also the include root)")
    parser.add_argument("-o", "--out", default="gen", help="output directory (default: gen)")
    parser.add_argument("-I", "--include", action="append", default=[], help="extra include directory")
    parser.add_argument(
        "--opt",
        action="append",
        default=[],
        help="plugin parameter for protoc-gen-prism, e.g. sql_dialect=mysql",
    )
    parser.add_argument("--no-python", action="store_true", help="skip *_pb2.py and *_pb2.pyi")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Generate, print protoc's complaints, and return its exit code."""
    root = Path(args.proto_root)
    if not root.is_dir():
        print(f"prism generate: {root} is not a directory of .proto files", file=sys.stderr)
        return 2
    if not protoc_runner.generation_targets(root):
        print(
            f"prism generate: {root} holds no .proto files; pass the directory your .proto files are under",
            file=sys.stderr,
        )
        return 2
    result = protoc_runner.generate(
        root,
        Path(args.out),
        includes=[Path(p) for p in args.include],
        parameter=",".join(args.opt),
        python=not args.no_python,
    )
    if result.stderr:
        print(result.stderr, file=sys.stderr)
    if result.returncode == 0:
        count = len(protoc_runner.generation_targets(root))
        print(f"prism generate: {count} .proto file(s) from {root} -> {args.out}")
    return result.returncode
