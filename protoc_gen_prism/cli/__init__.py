"""The `prism` command line: one module per subcommand, in two packages a reader can tell apart.

- `cli/compile/`: commands that need only the compiler (they read .proto files, write code and reports) and
  never import a backend driver;
- `cli/ops/`: operations on a database or local servers, through prism_runtime and its drivers.

Only the module of the command being run is imported (its name is its module's name); `prism --help` loads
every command's parser, and no command imports a driver before it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from protoc_gen_prism import __version__

COMPILE_COMMANDS = ("init", "include", "generate", "plan", "check", "breaking", "migrate", "snapshot")
OPS_COMMANDS = ("provision", "stack", "audit", "forget", "keys", "migration", "backfill")
COMMANDS = [*COMPILE_COMMANDS, *OPS_COMMANDS]


def command_module(name: str) -> str:
    """Return the module of the command `name`."""
    return f"protoc_gen_prism.cli.{'compile' if name in COMPILE_COMMANDS else 'ops'}.{name}"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser of every `prism` command, or of just the command `only`."""
    parser = argparse.ArgumentParser(
        prog="prism",
        description="Protobuf-driven data access.",
        epilog=f"compile-time: {', '.join(COMPILE_COMMANDS)}; operations: {', '.join(OPS_COMMANDS)}",
    )
    parser.add_argument("--version", action="version", version=f"prism {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if only is None else [only]:
        importlib.import_module(command_module(name)).register(commands)
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
