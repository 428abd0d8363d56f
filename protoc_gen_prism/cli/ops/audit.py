"""`prism audit verify|export|checkpoint`: check the access audit hash chain; export entries and a checkpoint."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from dataclasses import asdict

from prism_runtime.pii.audit import AuditLog
from protoc_gen_prism.cli.ops.database import add_url, open_vault, run


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser("audit", help="verify or export the PII access audit log")
    actions = parser.add_subparsers(dest="audit_action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="walk the hash chain to its authenticated head; name the first entry that does not hold",
    )
    add_url(verify)
    verify.add_argument(
        "--checkpoint",
        type=_checkpoint,
        default=None,
        metavar="SEQ:HASH",
        help="a checkpoint kept outside the database (from `prism audit export`) that the chain must hold",
    )
    verify.set_defaults(run=run_verify)
    sign = actions.add_parser(
        "checkpoint",
        help="verify the chain, then sign its head; once, for a log written before head checkpoints existed",
    )
    add_url(sign)
    sign.set_defaults(run=run_checkpoint)
    export = actions.add_parser("export", help="print entries as JSON lines, then a checkpoint line")
    add_url(export)
    export.add_argument("--since", default=None, help="only entries at or after this UTC time (RFC 3339)")
    export.add_argument("--after-seq", type=int, default=0, help="only entries after this sequence number")
    export.set_defaults(run=run_export)


def run_verify(args: argparse.Namespace) -> int:
    """Verify the chain; exit 1 when it is broken."""

    async def work() -> int:
        async with open_vault(args.url) as (_, vault):
            result = await vault.audit.verify(args.checkpoint)
        if result.ok:
            print(f"prism audit verify: ok, {result.entries} entries chain correctly")
            return 0
        print(f"prism audit verify: TAMPERED at entry {result.first_bad_seq}: {result.reason}")
        return 1

    return run("audit verify", work)


def run_checkpoint(args: argparse.Namespace) -> int:
    """Sign the head of a verified chain that has no checkpoint; exit 1 when the chain is broken."""

    async def work() -> int:
        async with open_vault(args.url) as (_, vault):
            result = await vault.audit.sign_head()
        if result.ok:
            print(f"prism audit checkpoint: signed the head of {result.entries} entries")
            return 0
        print(f"prism audit checkpoint: TAMPERED at entry {result.first_bad_seq}: {result.reason}")
        return 1

    return run("audit checkpoint", work)


def _checkpoint(text: str) -> tuple[int, str]:
    seq, _, entry_hash = text.partition(":")
    if (
        not seq.isdigit()
        or int(seq) < 1
        or len(entry_hash) != 64
        or not all(c in "0123456789abcdef" for c in entry_hash)
    ):
        raise argparse.ArgumentTypeError(
            "expected SEQ:HASH, a sequence number from 1 and a 64-digit hex entry hash"
        )
    return int(seq), entry_hash


def run_export(args: argparse.Namespace) -> int:
    """Print the entries; the last line is the checkpoint (last seq and hash) to keep elsewhere."""

    async def work() -> int:
        async with open_vault(args.url) as (_, vault):
            async for line in export_lines(vault.audit, after_seq=args.after_seq, since=args.since):
                print(line)
        return 0

    return run("audit export", work)


async def export_lines(
    audit: AuditLog, *, after_seq: int = 0, since: str | None = None
) -> AsyncIterator[str]:
    """Yield each entry as a JSON line, then a line with the checkpoint (last seq and hash) to keep elsewhere."""
    last = None
    async for entry in audit.entries(after_seq=after_seq, since=since):
        yield json.dumps(asdict(entry), sort_keys=True)
        last = entry
    checkpoint = {"seq": last.seq, "entry_hash": last.entry_hash} if last else None
    yield json.dumps({"checkpoint": checkpoint})
