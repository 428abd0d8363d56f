"""`prism migrate`: write numbered, idempotent SQL migrations per dialect from a baseline schema to the current one."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from protoc_gen_prism.diagnostics import SchemaError
from protoc_gen_prism.images import ImageError, compile_image, load_baseline
from protoc_gen_prism.migrations import DIALECTS, MigrationPlan, default_name, plan_migration, render, slug

DEFAULT_DIR = "migrations"
PENDING = "pending"
_NUMBERED = re.compile(r"^(\d{4})_")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "migrate", help="write SQL migrations (postgres, sqlite) from a baseline schema to the current one"
    )
    parser.add_argument("proto_root", help="directory containing the .proto files (also the include root)")
    parser.add_argument(
        "--against",
        required=True,
        help="baseline: an image from `prism snapshot`, a directory, or .git#ref=REF[,subdir=DIR]",
    )
    parser.add_argument(
        "-o",
        "--out",
        default=DEFAULT_DIR,
        help=f"migrations directory; files go to <out>/<dialect>/NNNN_<name>.sql (default: {DEFAULT_DIR}); "
        "apply with `prism provision <generated> --migrations <out>`",
    )
    parser.add_argument("--name", default=None, help="the migration's name (default: from its first step)")
    parser.add_argument(
        "--allow-destructive",
        action="store_true",
        help="also plan removed columns and tables: an expand step now, a contract step in <out>/<dialect>/pending/",
    )
    parser.add_argument("-I", "--include", action="append", default=[], help="extra include directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Plan, write the files and say what was withheld; 1, writing nothing, when the schema cannot be reached."""
    root = Path(args.proto_root)
    includes = [Path(p) for p in args.include]
    try:
        after = compile_image(root, includes).schema()
        before = load_baseline(args.against, root, includes).schema()
    except (ImageError, SchemaError) as error:
        print(f"prism migrate: {error}", file=sys.stderr)
        return 2
    plan = plan_migration(before, after, allow_destructive=args.allow_destructive)
    for reason in plan.withheld:
        print(f"prism migrate: not written: {reason}", file=sys.stderr)
    if plan.blocking:
        # A partial migration would leave a database the current schema cannot run on, and a later run would
        # write its steps again: write nothing until the schema says how to get there.
        print(
            f"prism migrate: nothing written: no migration brings the database to the current schema while "
            f"{len(plan.blocking)} change(s) above stand; change the schema as they say, then run prism migrate again",
            file=sys.stderr,
        )
        return 1
    if plan.empty:
        print("prism migrate: no table changes; nothing written")
        return 0
    for path in write_plan(
        plan, Path(args.out), slug(args.name) if args.name else default_name(plan), args.against
    ):
        print(f"prism migrate: wrote {path}")
    return 0


def next_number(out: Path) -> int:
    """Return the number after the highest migration in any dialect (pending contract steps included)."""
    numbers = [
        int(m.group(1)) for path in out.glob("*/**/*.sql") if (m := _NUMBERED.match(path.name)) is not None
    ]
    return max(numbers, default=0) + 1


def write_plan(plan: MigrationPlan, out: Path, name: str, baseline: str) -> list[Path]:
    """Write the migration (and the pending contract step) for every dialect; return the files written."""
    number = next_number(out)
    written = []
    for dialect in DIALECTS:
        if plan.steps:
            path = out / dialect / f"{number:04d}_{name}.sql"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(plan.steps, dialect, f"{baseline} -> current"))
            written.append(path)
        if plan.contract:
            later = number + 1 if plan.steps else number
            path = out / dialect / PENDING / f"{later:04d}_{name}_contract.sql"
            path.parent.mkdir(parents=True, exist_ok=True)
            title = (
                f"contract step after {baseline}; move this file up into {out / dialect} once no running "
                "version reads what it drops"
            )
            path.write_text(render(plan.contract, dialect, title))
            written.append(path)
    return written
