"""`prism provision-streams`: create or update the plan's Kafka topics and JetStream streams."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from prism_runtime.config import load_config
from prism_runtime.errors import PrismError
from prism_runtime.provision_streams import provision_streams
from protoc_gen_prism.plan_source import PlanUnavailable, load_plan
from protoc_gen_prism.settings import Profile


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "provision-streams", help="create or update the plan's Kafka topics and NATS streams (idempotent)"
    )
    parser.add_argument(
        "source", help="directory of .proto files, a generated directory, or a prism.plan.json"
    )
    parser.add_argument("--config", required=True, help="prism.yaml naming the kafka and nats URLs")
    parser.add_argument("--profile", choices=list(Profile), help="deployment profile (default: production)")
    parser.add_argument("-I", "--include", action="append", default=[], help="extra include directory")
    parser.add_argument("--dry-run", action="store_true", help="print the changes without applying them")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Provision, print each change; 1 when a change is refused or a server fails, 2 on bad input."""
    try:
        plan = load_plan(Path(args.source), profile=args.profile, includes=[Path(p) for p in args.include])
        config = load_config(None, args.config)
    except (PlanUnavailable, PrismError) as error:
        print(f"prism provision-streams: {error}", file=sys.stderr)
        return 2
    try:
        changes = asyncio.run(provision_streams(plan, config, dry_run=args.dry_run))
    except PrismError as error:
        print(f"prism provision-streams: {error}", file=sys.stderr)
        return 1
    for change in changes:
        print(change)
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0
