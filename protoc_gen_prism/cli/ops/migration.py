"""`prism migration status|phase`: read or change the phase of a namespace's migration between backends."""

from __future__ import annotations

import argparse
import getpass
import os

import prism_runtime
from prism_runtime.config import PHASES
from prism_runtime.migrations import MigrationStatus, set_phase, status
from prism_runtime.pii.audit import ACTOR_ENV
from protoc_gen_prism.cli.ops.database import run


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser("migration", help="read or change the phase of a migration between backends")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("status", help="print a migration's phase and backfill progress")
    show.add_argument("namespace")
    show.add_argument("--config", required=True, help="the service's prism.yaml")
    change = actions.add_parser("phase", help="move a migration to another phase (services follow it)")
    change.add_argument("namespace")
    change.add_argument("phase", choices=PHASES)
    change.add_argument("--config", required=True, help="the service's prism.yaml")
    change.add_argument(
        "--actor",
        default=None,
        help=f"who makes the change, for the audit log (default ${ACTOR_ENV}, else the user)",
    )
    parser.set_defaults(run=run_migration)


def run_migration(args: argparse.Namespace) -> int:
    """Print or change the phase."""

    async def work() -> int:
        async with prism_runtime.connect(config=args.config) as db:
            if args.action == "phase":
                who = args.actor or os.environ.get(ACTOR_ENV) or getpass.getuser()
                found = await set_phase(db, args.namespace, args.phase, who)
            else:
                found = await status(db, args.namespace)
        print("\n".join(lines(found)))
        return 0

    return run("migration", work)


def lines(found: MigrationStatus) -> list[str]:
    """Return the status as lines for a terminal."""
    p = found.backfill
    share = f" ({100 * p.rows / p.total:.0f}%)" if p.total else ""
    return [
        f"{found.namespace}: {found.source} -> {found.target}, phase {found.phase} "
        f"(set {found.updated_at} by {found.updated_by})",
        f"  backfill: {p.state or 'not started'}, {p.rows:,}/{p.total:,} rows{share}, {p.skipped:,} skipped as deleted",
    ]
