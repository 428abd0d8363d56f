"""`prism include`: print the directory to pass to protoc with -I for prism/options.proto."""

from __future__ import annotations

import argparse

from protoc_gen_prism import protoc_runner


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser("include", help="print the include directory holding prism/options.proto")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the include directory."""
    print(protoc_runner.prism_include())
    return 0
