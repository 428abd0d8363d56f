"""`prism provision`: make the databases, topics and streams match the schema, idempotently.

SQL (tables, indexes, migrations) goes to each SQL backend named (by --url, or in --config's `backends:`, or
$PRISM_URL / ./prism.db when neither is given) and is recorded in `prism_schema_history`; Kafka topics and
JetStream streams go to the kafka and nats URLs of --config, from the plan. SOURCE is a generated directory
(what `prism generate` or `protoc --prism_out` wrote) or a directory of .proto files, generated on the fly.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prism_runtime
from prism_runtime.backends import registry
from prism_runtime.backends.registry import Capability
from prism_runtime.config import URL_ENV, BackendUrl, Config, load_config
from prism_runtime.provision_streams import provision_streams
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.keyvalue import purge_expired_rows
from prism_runtime.stream_plans import PlannedStream
from protoc_gen_prism import protoc_runner
from protoc_gen_prism.plan_source import LoadedPlan, PlanUnavailable, compile_protos, load_plan
from protoc_gen_prism.settings import Profile
from protoc_gen_prism.sql.provision import provision


async def purge_expired(db: prism_runtime.Database, tables: Sequence[str]) -> list[tuple[str, int]]:
    """Delete the expired rows of `tables` that exist in the database of `db`; return (table, count) each."""
    driver = db.backend
    assert isinstance(driver, SqlDriver)  # provision() refused any other backend already
    out = []
    for table in tables:
        if await driver.fetch(driver.dialect.object_exists(), ["table", table], namespace=table):
            out.append((table, await purge_expired_rows(driver, table)))
    return out


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "provision", help="create or update tables, indexes, migrations, topics and streams (idempotent)"
    )
    parser.add_argument("source", help="a generated directory, or a directory of .proto files")
    parser.add_argument(
        "--url", default=None, help=f"one SQL database URL (default: ${URL_ENV}, else ./prism.db)"
    )
    parser.add_argument("--config", default=None, help="prism.yaml naming backend URLs by kind")
    parser.add_argument("--profile", choices=list(Profile), help="deployment profile, for a .proto directory")
    parser.add_argument("-I", "--include", action="append", default=[], help="extra include directory")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    parser.add_argument(
        "--migrations",
        default=None,
        help="directory `prism migrate -o` wrote to (default: <generated>/migrations); applied before the DDL",
    )
    parser.add_argument(
        "--purge-expired",
        action="store_true",
        help="also delete the expired items of entities with (prism.ttl_seconds), in batches, and print counts",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Provision; 1 when a server fails or a change is refused, 2 on bad input."""
    try:
        config = load_config(args.url, args.config)
        with generated_source(Path(args.source), args.profile, [Path(p) for p in args.include]) as generated:
            streams = args.config is not None
            migrations = Path(args.migrations) if args.migrations else None
            return asyncio.run(
                _provision(
                    generated,
                    config,
                    streams=streams,
                    dry_run=args.dry_run,
                    migrations=migrations,
                    purge=args.purge_expired,
                )
            )
    except PlanUnavailable as error:
        print(f"prism provision: {error}", file=sys.stderr)
        return 2
    except prism_runtime.PrismError as error:
        print(f"prism provision: {error}", file=sys.stderr)
        return 1


@dataclass(frozen=True)
class Source:
    """A generated directory to provision SQL from, and its plan (None: no prism.plan.json in it)."""

    generated: Path
    plan: LoadedPlan | None

    @property
    def streams(self) -> Sequence[PlannedStream] | None:
        """Return the planned topics and streams, typed; None without a plan."""
        return None if self.plan is None else self.plan.streams

    @property
    def expiring(self) -> Sequence[str] | None:
        """Return the tables of the entities with a TTL; None without a plan."""
        return None if self.plan is None else _expiring(self.plan.document)


@contextmanager
def generated_source(source: Path, profile: str | None, includes: list[Path]) -> Iterator[Source]:
    """Yield the generated directory of `source` (compiled into a temporary one for a .proto directory)."""
    if (source / "sql").is_dir() or (source / "prism.plan.json").is_file():
        if profile is not None:
            raise PlanUnavailable(f"{source} is generated already; --profile applies to a .proto directory")
        yield Source(source, load_plan(source) if (source / "prism.plan.json").is_file() else None)
        return
    if not source.is_dir() or not protoc_runner.find_protos(source):
        raise PlanUnavailable(f"{source} is neither a generated directory nor a directory of .proto files")
    # Compiled in-process: the plan stays typed; the files are written only for the SQL provisioning reads.
    compiled = compile_protos(source, profile=profile, includes=includes)
    with tempfile.TemporaryDirectory(prefix="prism-provision-") as out:
        for f in compiled.files:
            path = Path(out) / f.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f.content)
        yield Source(Path(out), compiled.plan)


def sql_urls(config: Config) -> list[BackendUrl]:
    """Return the SQL databases a config names (by --url or under `backends:`); with neither, the default."""
    if not config.named:
        return [config.default]
    return [
        u
        for k, u in config.backends.items()
        if registry.entry(u.kind).can(Capability.SQL) and k in config.named
    ]


def _expiring(plan: dict[str, Any]) -> list[str]:
    """Return the tables of the plan's entities with a TTL (their SQL settings name it)."""
    return [str(e["settings"]["table"]) for e in plan["entities"] if e.get("settings", {}).get("ttl_seconds")]


async def _provision(
    source: Source,
    config: Config,
    *,
    streams: bool,
    dry_run: bool,
    migrations: Path | None = None,
    purge: bool = False,
) -> int:
    if purge and source.expiring is None:
        raise PlanUnavailable(f"{source.generated} holds no prism.plan.json: --purge-expired needs the plan")
    generated = source.generated
    for url in sql_urls(config):
        async with prism_runtime.connect(url.url) as db:
            report = await provision(db, generated, dry_run=dry_run, migrations=migrations)
            verb = "would apply" if dry_run else "applied"
            print(f"{url.kind}: {verb} {len(report.applied)} file(s), {len(report.unchanged)} unchanged")
            if purge and dry_run:
                print(f"{url.kind}: would purge the expired items of {len(source.expiring or ())} table(s)")
            elif purge:
                for table, count in await purge_expired(db, source.expiring or ()):
                    print(f"{url.kind}: purged {count} expired item(s) from {table}")
    if streams:  # a config says where streams live; the plan must find every kind it needs there
        if source.streams is None:
            raise PlanUnavailable(f"{generated} holds no .proto files and no prism.plan.json")
        for change in await provision_streams(source.streams, config, dry_run=dry_run):
            print(change)
    if dry_run:
        print("dry run: nothing was changed")
    return 0
