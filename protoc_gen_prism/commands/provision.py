"""`prism provision`: apply generated SQL to a database, idempotently, recording what was applied."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import prism_runtime
from prism_runtime.config import DEFAULT_URL, URL_ENV
from prism_runtime.provision import Report, provision


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "provision", help="apply generated SQL (tables, indexes, migrations) to a database"
    )
    parser.add_argument("generated", help="the directory prism generate / protoc --prism_out wrote to")
    parser.add_argument("--url", default=None, help=f"database URL (default: ${URL_ENV}, else {DEFAULT_URL})")
    parser.add_argument("--dry-run", action="store_true", help="print what would be applied; change nothing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Provision and report."""
    url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    try:
        report = asyncio.run(_provision(url, Path(args.generated), args.dry_run))
    except prism_runtime.PrismError as error:
        print(f"prism provision: {error}", file=sys.stderr)
        return 1
    verb = "would apply" if args.dry_run else "applied"
    print(
        f"prism provision ({report.dialect}): {verb} {len(report.applied)} file(s), {len(report.unchanged)} unchanged"
    )
    return 0


async def _provision(url: str, generated: Path, dry_run: bool) -> Report:
    async with prism_runtime.connect(url) as db:
        return await provision(db, generated, dry_run=dry_run)
