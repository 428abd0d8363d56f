"""Apply generated SQL to a database, idempotently, and remember what was applied.

Reads `<generated dir>/sql/<dialect>/**/*.sql` (and, when present, `<generated dir>/migrations/<dialect>/*.sql`),
runs each file that is new or changed in one transaction, and records it with its SHA-256 in
`prism_schema_history`. A second run finds every file recorded and changes nothing.
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

HISTORY_TABLE = "prism_schema_history"
_NS = HISTORY_TABLE  # errors while provisioning name the history as their namespace


@dataclass(frozen=True)
class Step:
    """One object a file creates, and what provisioning did about it."""

    source: str
    kind: str  # "table", "index", "comment", "statement"
    name: str
    action: str  # "create", "exists", "apply"

    def describe(self, *, dry_run: bool = False) -> str:
        """Return the progress line of this step."""
        done = {"create": "created", "exists": "already exists", "apply": "applied"}
        planned = {"create": "would be created", "exists": "already exists", "apply": "would be applied"}
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


def sql_files(generated: Path, dialect: str) -> list[Path]:
    """Return the DDL files, then the migrations, for `dialect`, in the order they apply."""
    ddl = sorted((generated / "sql" / dialect).rglob("*.sql"))
    migrations = sorted((generated / "migrations" / dialect).glob("*.sql"))
    return ddl + migrations


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
    db: Database, generated: Path, *, dry_run: bool = False, echo: Callable[[str], None] = print
) -> Report:
    """Apply the generated SQL for `db`'s dialect; print a line per object; return what happened."""
    driver = db.backend
    if not isinstance(driver, SqlDriver):
        raise ConfigError(
            f"{db.url.redacted}: provisioning SQL needs a SQL backend (sqlite:// or postgresql://)"
        )
    dialect = driver.dialect.name
    files = sql_files(generated, dialect)
    if not files:
        raise ConfigError(
            f"no generated SQL for {dialect} under {generated}/sql/{dialect}: run prism generate first"
        )
    history = await _history(driver, create=not dry_run)
    report = Report(dialect=dialect)
    for path in files:
        source = path.relative_to(generated).as_posix()
        text = path.read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()
        if history.get(source) == digest:
            report.unchanged.append(source)
            echo(f"{source}: unchanged (sha256 {digest[:12]})")
            continue
        statements = [s for s in sqlglot.parse(text, read=dialect) if isinstance(s, exp.Expression)]
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
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        record = (
            f"INSERT INTO {HISTORY_TABLE} (source, sha256, applied_at) VALUES "
            f"({_literal(source)}, {_literal(digest)}, {_literal(now)})"
        )
        await driver.execute_script([s.sql(dialect=dialect) for s in statements] + [record], namespace=_NS)
    if not report.changed:
        echo(f"nothing to do: all {len(report.unchanged)} file(s) already applied")
    return report


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
