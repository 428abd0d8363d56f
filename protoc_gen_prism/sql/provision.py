"""Apply generated SQL to a database, idempotently, and remember what was applied.

Reads `<migrations dir>/<dialect>/*.sql` (default `<generated dir>/migrations`, written by `prism migrate`), then
`<generated dir>/sql/<dialect>/**/*.sql`, runs each file that is new or changed, and records it with its SHA-256
in `prism_schema_history`. A second run finds every file recorded and changes nothing.

Migrations run first: they bring existing tables up to the current schema (ADD/RENAME COLUMN), so that the DDL
after them (CREATE ... IF NOT EXISTS, indexes on new columns, comments) finds every column it names. A DDL file
runs in one transaction. A migration runs statement by statement, each only while its guard
(`prism_runtime.sql.guards`) says there is work left: on a fresh database every table is missing and the
DDL creates it whole, and a file interrupted halfway resumes where it stopped. That is also what lets
CREATE INDEX CONCURRENTLY run, as it must, outside any transaction.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp

from prism_runtime.database import Database
from prism_runtime.errors import ConfigError
from prism_runtime.sql.driver import SqlDriver
from protoc_gen_prism.sql.guards import Guard, guard_of, outside_transaction

HISTORY_TABLE = "prism_schema_history"
_NS = HISTORY_TABLE  # errors while provisioning name the history as their namespace


@dataclass(frozen=True)
class Step:
    """One object a file creates, and what provisioning did about it."""

    source: str
    kind: str  # "table", "index", "comment", "statement"
    name: str
    action: str  # "create", "exists", "apply", "skip"

    def describe(self, *, dry_run: bool = False) -> str:
        """Return the progress line of this step."""
        skip = "skipped (already done, or its table is created whole by the DDL)"
        done = {"create": "created", "exists": "already exists", "apply": "applied", "skip": skip}
        planned = {
            "create": "would be created",
            "exists": "already exists",
            "apply": "would be applied",
            "skip": skip,
        }
        verb = (planned if dry_run else done)[self.action]
        what = f"{self.kind} {self.name}" if self.name else self.kind
        return f"{self.source}: {what} {verb}"


@dataclass
class Report:
    """What one provisioning run found and did."""

    dialect: str
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Return whether anything was (or, in a dry run, would be) applied."""
        return bool(self.applied)


MIGRATIONS = "migrations"


def sql_files(generated: Path, dialect: str, migrations: Path | None = None) -> list[tuple[str, Path]]:
    """Return (source name, path) of the migrations, then the DDL files, for `dialect`, in the order they apply."""
    folder = (migrations if migrations is not None else generated / MIGRATIONS) / dialect
    steps = [(f"{MIGRATIONS}/{dialect}/{p.name}", p) for p in sorted(folder.glob("*.sql"))]
    ddl = [
        (p.relative_to(generated).as_posix(), p) for p in sorted((generated / "sql" / dialect).rglob("*.sql"))
    ]
    return steps + ddl


def _describe(statement: exp.Expression) -> tuple[str, str]:
    if isinstance(statement, exp.Create):
        kind = str(statement.args.get("kind", "")).lower()
        target = statement.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Index):
            return "index", target.name
        return kind or "object", target.name if isinstance(target, exp.Expression) else ""
    if isinstance(statement, exp.Comment):
        return "comment", statement.this.sql()
    return "statement", ""


async def provision(
    db: Database,
    generated: Path,
    *,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    migrations: Path | None = None,
) -> Report:
    """Apply the generated SQL for `db`'s dialect; print a line per object; return what happened."""
    driver = db.backend
    if not isinstance(driver, SqlDriver):
        raise ConfigError(
            f"{db.url.redacted}: provisioning SQL needs a SQL backend (sqlite:// or postgresql://)"
        )
    dialect = driver.dialect.name
    files = sql_files(generated, dialect, migrations)
    if not files:
        raise ConfigError(
            f"no generated SQL for {dialect} under {generated}/sql/{dialect}: run prism generate first"
        )
    history = await _history(driver, create=not dry_run)
    report = Report(dialect=dialect)
    for source, path in files:
        text = path.read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()
        if history.get(source) == digest:
            report.unchanged.append(source)
            echo(f"{source}: unchanged (sha256 {digest[:12]})")
            continue
        statements = [s for s in sqlglot.parse(text, read=dialect) if isinstance(s, exp.Expression)]
        if source.startswith(f"{MIGRATIONS}/"):
            await _migrate(driver, source, statements, report, dry_run, echo)
            if not dry_run:
                await driver.execute_script([_record(source, digest)], namespace=_NS)
            report.applied.append(source)
            continue
        for statement in statements:
            kind, name = _describe(statement)
            action = "apply"
            if kind in ("table", "index"):
                found = await driver.fetch(driver.dialect.object_exists(), [kind, name], namespace=_NS)
                action = "exists" if found else "create"
            step = Step(source, kind, name, action)
            report.steps.append(step)
            echo(step.describe(dry_run=dry_run))
        report.applied.append(source)
        if dry_run:
            continue
        record = _record(source, digest)
        await driver.execute_script([s.sql(dialect=dialect) for s in statements] + [record], namespace=_NS)
    if not report.changed:
        echo(f"nothing to do: all {len(report.unchanged)} file(s) already applied")
    return report


def _record(source: str, digest: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (
        f"INSERT INTO {HISTORY_TABLE} (source, sha256, applied_at) VALUES "
        f"({_literal(source)}, {_literal(digest)}, {_literal(now)})"
    )


async def _migrate(
    driver: SqlDriver,
    source: str,
    statements: list[exp.Expression],
    report: Report,
    dry_run: bool,
    echo: Callable[[str], None],
) -> None:
    """Run a migration statement by statement, each while its guard holds (see the module docstring)."""
    for statement in statements:
        kind, name = _describe(statement)
        guard = guard_of(statement)
        holds = dry_run or guard is None or await _holds(driver, guard)
        step = Step(source, kind, name, "apply" if holds else "skip")
        report.steps.append(step)
        echo(step.describe(dry_run=dry_run))
        if not holds or dry_run:
            continue
        sql = statement.sql(dialect=driver.dialect.name)
        if outside_transaction(statement):
            await driver.execute(sql, [], namespace=_NS)
        else:
            await driver.execute_script([sql], namespace=_NS)


async def _holds(driver: SqlDriver, guard: Guard) -> bool:
    """Return whether the guard's table exists and its column is as the statement needs it."""
    if not await driver.fetch(driver.dialect.object_exists(), ["table", guard.table], namespace=_NS):
        return False
    if not guard.column:
        return True
    found = await driver.fetch(driver.dialect.column_exists(), [guard.table, guard.column], namespace=_NS)
    return bool(found) is guard.column_present


async def _history(driver: SqlDriver, *, create: bool) -> dict[str, str]:
    """Return the latest recorded digest per source file, creating the history table if asked."""
    exists = await driver.fetch(driver.dialect.object_exists(), ["table", HISTORY_TABLE], namespace=_NS)
    if not exists:
        if not create:
            return {}
        await driver.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (source TEXT NOT NULL, sha256 TEXT NOT NULL, "
                "applied_at TEXT NOT NULL, PRIMARY KEY (source, sha256))"
            ],
            namespace=_NS,
        )
    rows = await driver.fetch(
        f"SELECT source, sha256 FROM {HISTORY_TABLE} ORDER BY applied_at", [], namespace=_NS
    )
    return {row[0]: row[1] for row in rows}


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql()
