"""`prism forget SUBJECT`: crypto-shred a data subject and delete its rows; print the receipt."""

from __future__ import annotations

import argparse

import prism_runtime
from protoc_gen_prism.cli.ops.database import add_url, open_vault, run


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser("forget", help="forget a data subject: destroy its keys, delete its rows")
    parser.add_argument("subject", help="the subject's id, as stored in its key or (prism.subject) field")
    parser.add_argument("--int", dest="as_int", action="store_true", help="the subject id is an integer")
    add_url(parser)
    parser.add_argument(
        "--config",
        default=None,
        help="a prism.yaml: forget on every SQL backend it names (both sides of a migration), instead of --url",
    )
    parser.set_defaults(run=run_forget)


def run_forget(args: argparse.Namespace) -> int:
    """Forget the subject; the receipt names it by its pseudonymous ref only."""

    async def work() -> int:
        subject: str | int = int(args.subject) if args.as_int else args.subject
        if args.config is not None:
            async with prism_runtime.connect(config=args.config) as db:
                receipt = await prism_runtime.forget(db, subject)
        else:
            async with open_vault(args.url) as (db, _):
                receipt = await prism_runtime.forget(db, subject)
        print("\n".join(receipt.lines()))
        return 0

    return run("forget", work)
