"""The `prism` command line; each subcommand lives in protoc_gen_prism/commands/<name>.py."""

from __future__ import annotations

import argparse
import sys

from protoc_gen_prism import __version__
from protoc_gen_prism.commands import (
    audit,
    breaking,
    check,
    forget,
    generate,
    include,
    keys,
    migrate,
    plan,
    provision,
    snapshot,
    stack,
)

COMMANDS = [
    include,
    generate,
    plan,
    provision,
    stack,
    audit,
    forget,
    keys,
    snapshot,
    check,
    breaking,
    migrate,
]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every `prism` command."""
    parser = argparse.ArgumentParser(prog="prism", description="Protobuf-driven data access.")
    parser.add_argument("--version", action="version", version=f"prism {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `prism` command line."""
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
