"""`prism check`: lint a schema for what the plugin accepts but a reviewer should not."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prism_runtime.errors import ConfigError
from protoc_gen_prism.checks.config import find_config
from protoc_gen_prism.checks.report import Format, add_arguments, emit
from protoc_gen_prism.checks.runner import lint_image
from protoc_gen_prism.images import ImageError, compile_image
from protoc_gen_prism.vendoring import stale_copy


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "check", help="lint the schema (pii, keys, streams, names); exit 1 on any error"
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Lint and print the findings."""
    try:
        config = find_config(Path(args.config) if args.config else None)
        image = compile_image(Path(args.proto_root), [Path(p) for p in args.include])
    except (ConfigError, ImageError) as error:
        print(f"prism check: {error}", file=sys.stderr)
        return 2
    stale = stale_copy(Path(args.proto_root))
    if stale is not None:
        print(f"prism check: warning: {stale}", file=sys.stderr)
    return emit("check", lint_image(image, config), Format(args.format), args.proto_root)
