"""The `prism` command line: include paths, generation, and (in later commands) operations."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protoc_gen_prism import __version__, protoc_runner


def _include(args: argparse.Namespace) -> int:
    print(protoc_runner.prism_include())
    return 0


def _generate(args: argparse.Namespace) -> int:
    root = Path(args.proto_root)
    if not root.is_dir():
        print(f"prism generate: {root} is not a directory of .proto files", file=sys.stderr)
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
        count = len(protoc_runner.find_protos(root))
        print(f"prism generate: {count} .proto file(s) from {root} -> {args.out}")
    return result.returncode


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every `prism` command."""
    parser = argparse.ArgumentParser(prog="prism", description="Protobuf-driven data access.")
    parser.add_argument("--version", action="version", version=f"prism {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    include = commands.add_parser("include", help="print the include directory holding prism/options.proto")
    include.set_defaults(run=_include)

    generate = commands.add_parser(
        "generate", help="run protoc on a directory: *_pb2.py, *_pb2.pyi and Prism output in one go"
    )
    generate.add_argument("proto_root", help="directory containing the .proto files (also the include root)")
    generate.add_argument("-o", "--out", default="gen", help="output directory (default: gen)")
    generate.add_argument("-I", "--include", action="append", default=[], help="extra include directory")
    generate.add_argument(
        "--opt",
        action="append",
        default=[],
        help="plugin parameter for protoc-gen-prism, e.g. sql_dialect=mysql",
    )
    generate.add_argument("--no-python", action="store_true", help="skip *_pb2.py and *_pb2.pyi")
    generate.set_defaults(run=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `prism` command line."""
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
