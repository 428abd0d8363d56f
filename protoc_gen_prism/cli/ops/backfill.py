"""`prism backfill NAMESPACE --config prism.yaml`: copy a migrating namespace's source into its target, or
compare the two (`--verify`)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import TextIO

import prism_runtime
from prism_runtime.migrations import Differences, Progress, backfill, verify
from protoc_gen_prism.cli.ops.database import run


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "backfill",
        help="copy a migrating namespace from its source backend to its target (resumable), or --verify",
    )
    parser.add_argument("namespace", help="a namespace with an entry under `migrations:` in the config")
    parser.add_argument("--config", required=True, help="the service's prism.yaml")
    parser.add_argument("--rate", type=float, default=None, help="at most this many rows per second")
    parser.add_argument("--page-size", type=int, default=500, help="rows per page (default 500)")
    parser.add_argument("--restart", action="store_true", help="start again from the first key")
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        help="a generated module to import (a series moving to a stream needs its messages), e.g. acme.events.v1.events_prism",
    )
    parser.add_argument(
        "--verify", action="store_true", help="compare source and target; exit 1 on any difference"
    )
    parser.set_defaults(run=run_backfill)


def run_backfill(args: argparse.Namespace) -> int:
    """Run the backfill or the verification."""

    async def work() -> int:
        for module in args.module:
            importlib.import_module(module)
        async with prism_runtime.connect(config=args.config) as db:
            if args.verify:
                found = await verify(db, args.namespace, page_size=args.page_size)
                print("\n".join(report(found)))
                return 1 if found.total else 0
            bar = ProgressBar(sys.stderr)
            done = await backfill(
                db,
                args.namespace,
                rate=args.rate,
                page_size=args.page_size,
                restart=args.restart,
                on_page=bar.update,
            )
            bar.finish(done)
            return 0

    return run("backfill", work)


def report(found: Differences) -> list[str]:
    """Return the lines of a verification: counts, and keys where the entity has no PII."""
    lines = [
        f"{found.namespace}: {found.compared} source rows compared; missing {found.missing}, "
        f"extra {found.extra}, different {found.different}"
    ]
    for kind, keys in found.keys.items():
        lines += [f"  {kind}: {key!r}" for key in keys]
    return lines


class ProgressBar:
    """Rows, rows/s and ETA on one line of a terminal (rewritten in place), or a line every few seconds."""

    def __init__(self, out: TextIO, every: float = 2.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = every
        self._last = 0.0

    def line(self, p: Progress, rate: float) -> str:
        """Return the progress line."""
        share = f" ({100 * p.rows / p.total:.0f}%)" if p.total else ""
        left = max(p.total - p.rows, 0)
        eta = time.strftime("%H:%M:%S", time.gmtime(left / rate)) if rate > 0 else "?"
        return (
            f"backfill {p.namespace}: {p.rows:,}/{p.total:,} rows{share}, {rate:,.0f} rows/s, ETA {eta} "
            f"(skipped as deleted: {p.skipped:,})"
        )

    def update(self, p: Progress, rate: float) -> None:
        """Show the progress after a page."""
        now = time.monotonic()
        if self.tty:
            self.out.write("\r" + self.line(p, rate).ljust(100))
        elif now - self._last >= self.every:
            self.out.write(self.line(p, rate) + "\n")
            self._last = now
        else:
            return
        self.out.flush()

    def finish(self, p: Progress) -> None:
        """Say the backfill is done."""
        self.out.write(
            ("\n" if self.tty else "") + f"backfill {p.namespace}: done, {p.rows:,} rows read, "
            f"{p.copied:,} offered to the target, {p.skipped:,} skipped as deleted\n"
        )
        self.out.flush()
