"""The `prism` command line; each subcommand lives in protoc_gen_prism/commands/<name>.py.

Only the module of the command being run is imported (its name is its module's name), so `prism check`
does not pay for the Kafka, NATS and PII imports of the operational commands; `prism --help` loads all.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from protoc_gen_prism import __version__

COMMANDS = [
    "include",
    "generate",
    "plan",
    "provision",
    "stack",
    "audit",
    "forget",
    "keys",
    "snapshot",
    "check",
    "breaking",
    "migrate",
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser of every `prism` command, or of just the command `only`."""
    parser = argparse.ArgumentParser(prog="prism", description="Protobuf-driven data access.")
    parser.add_argument("--version", action="version", version=f"prism {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if only is None else [only]:
        importlib.import_module(f"protoc_gen_prism.commands.{name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `prism` command line."""
    args_in = sys.argv[1:] if argv is None else argv
    first = next((a for a in args_in if not a.startswith("-")), None)
    if first is None and "--version" in args_in:
        print(f"prism {__version__}")  # answered before loading any command
        return 0
    args = build_parser(first if first in COMMANDS else None).parse_args(args_in)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
