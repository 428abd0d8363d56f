"""`prism keys init|rotate|reencrypt|retire|status`: the lifecycle of PII encryption keys.

Only `init` creates anything (the database's key tables and, with the local wrapper, the master key file);
the others need both to exist already and fail naming what is missing.
"""

from __future__ import annotations

import argparse

from prism_runtime.pii import rotation
from protoc_gen_prism.cli.ops.database import add_url, open_vault, run


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser("keys", help="rotate, re-encrypt and retire PII encryption keys")
    actions = parser.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    init = actions.add_parser(
        "init", help="set up keys for a database: its key tables and, if absent, the master key file"
    )
    add_url(init)
    init.set_defaults(run=run_init)
    rotate = actions.add_parser(
        "rotate", help="new key-encryption key and data key generation; old data still decrypts"
    )
    add_url(rotate)
    rotate.set_defaults(run=run_rotate)
    sweep = actions.add_parser(
        "reencrypt", help="move existing ciphertext and wrapped keys onto the current keys"
    )
    add_url(sweep)
    sweep.add_argument("--dry-run", action="store_true", help="count what would move, change nothing")
    sweep.set_defaults(run=run_reencrypt)
    retire = actions.add_parser("retire", help="set the minimum decryption generation; destroy older keys")
    add_url(retire)
    retire.add_argument(
        "--below", type=int, required=True, help="destroy data keys of generations below this"
    )
    retire.add_argument("--force", action="store_true", help="even if ciphertext still uses them")
    retire.set_defaults(run=run_retire)
    status = actions.add_parser("status", help="print the key generation and minimum decryption generation")
    add_url(status)
    status.set_defaults(run=run_status)


def run_init(args: argparse.Namespace) -> int:
    """Make (or find) the master key and the database's index root key."""

    async def work() -> int:
        async with open_vault(args.url, existing=False) as (db, vault):
            print(
                f"prism keys init: keys ready in {db.url.redacted}; key wrapper: {vault.keyring.wrapper.name}"
            )
        return 0

    return run("keys init", work)


def run_rotate(args: argparse.Namespace) -> int:
    """Rotate."""

    async def work() -> int:
        async with open_vault(args.url) as (_, vault):
            generation, wrapper = await rotation.rotate(vault)
        print(f"prism keys rotate: data key generation {generation} is primary; {wrapper}")
        print("  old data still decrypts; run `prism keys reencrypt` to move it forward")
        return 0

    return run("keys rotate", work)


def run_reencrypt(args: argparse.Namespace) -> int:
    """Run the re-encrypt sweep."""

    async def work() -> int:
        async with open_vault(args.url) as (_, vault):
            report = await rotation.reencrypt(vault, dry_run=args.dry_run)
        verb = "would move" if args.dry_run else "moved"
        print(
            f"prism keys reencrypt: {report.values_seen} encrypted value(s), {verb} {report.values_moved}, "
            f"re-wrapped {report.keys_rewrapped} key(s), {report.unreadable} unreadable (forgotten or retired)"
        )
        return 0

    return run("keys reencrypt", work)


def run_retire(args: argparse.Namespace) -> int:
    """Retire old generations."""

    async def work() -> int:
        async with open_vault(args.url) as (_, vault):
            count = await rotation.retire(vault, args.below, force=args.force)
        print(f"prism keys retire: {count} data key(s) below generation {args.below} destroyed")
        return 0

    return run("keys retire", work)


def run_status(args: argparse.Namespace) -> int:
    """Print the key state."""

    async def work() -> int:
        async with open_vault(args.url) as (_, vault):
            keyring = vault.keyring
            print(f"key wrapper: {keyring.wrapper.name}")
            print(
                f"data key generation: {keyring.generation}; minimum decryption generation: {keyring.min_version}"
            )
        return 0

    return run("keys status", work)
