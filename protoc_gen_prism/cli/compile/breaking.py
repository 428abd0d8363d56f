"""`prism breaking`: compare a schema with a baseline for wire, storage, stream and data-protection breaks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prism_runtime.errors import ConfigError
from protoc_gen_prism.checks.config import find_config
from protoc_gen_prism.checks.report import Format, add_arguments, emit
from protoc_gen_prism.checks.runner import breaking_changes
from protoc_gen_prism.images import Compilation, ImageError, load_baseline, warm


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "breaking", help="find breaking changes against a baseline image or git ref; exit 1 on any error"
    )
    add_arguments(parser)
    parser.add_argument(
        "--against",
        required=True,
        help="baseline: an image from `prism snapshot`, a directory, or .git#ref=REF[,subdir=DIR]",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Compare and print the findings."""
    root = Path(args.proto_root)
    includes = [Path(p) for p in args.include]
    try:
        config = find_config(Path(args.config) if args.config else None)
        pending = Compilation(root, includes)
        before = load_baseline(args.against, root, includes)
        warm(before)  # the baseline's model is built while protoc compiles the current schema
        after = pending.result()
    except (ConfigError, ImageError) as error:
        print(f"prism breaking: {error}", file=sys.stderr)
        return 2
    return emit("breaking", breaking_changes(before, after, config), Format(args.format), args.proto_root)
