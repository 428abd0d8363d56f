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
from prism_runtime.errors import ConfigError, DatabaseDamaged, SchemaMismatch
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
    if dialect == "sqlite" and await _drop_indexes_on_strings(driver, dry_run, echo):
        # Their files may be recorded already: forget the DDL files, so that (idempotent) they run again and
        # build the dropped indexes on their columns, after the migrations have added them.
        history = {source: digest for source, digest in history.items() if source.startswith(MIGRATIONS)}
    migrated = False
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
            migrated = True
            continue
        if not (dry_run and migrated):  # a dry run's migrations changed nothing that the check would see
            await _check_columns(driver, source, statements)
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
    if dialect == "sqlite":
        await _check_integrity(driver)
    return report


async def _columns(driver: SqlDriver, table: str) -> set[str]:
    """Return the stored columns of `table`, none when it does not exist."""
    rows = await driver.fetch(driver.dialect.table_columns(), [table], namespace=_NS)
    return {str(row[0]) for row in rows}


def _index_target(statement: object) -> tuple[str, list[exp.Expression]] | None:
    """Return the table and the indexed expressions of a CREATE INDEX, else None."""
    if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Index):
        return None
    table = statement.this.args.get("table")
    params = statement.this.args.get("params")
    if not isinstance(table, exp.Table):
        return None
    parts = (params.args.get("columns") or []) if isinstance(params, exp.IndexParameters) else []
    return table.name, [p.this if isinstance(p, exp.Ordered) else p for p in parts]


def _missing(table: str, wanted: list[str], present: set[str], driver: SqlDriver, source: str) -> None:
    missing = [name for name in wanted if name not in present]
    if missing:
        raise SchemaMismatch(
            f"table {table!r} lacks columns {', '.join(missing)}",
            namespace=table,
            backend=driver.name,
            hint=f"{source} was not run; write the migration that adds them with `prism migrate <protos> "
            "--against <previous protos> -o migrations/`, then `prism provision <generated dir> --migrations "
            "migrations/`",
        )


async def _check_columns(driver: SqlDriver, source: str, statements: list[exp.Expression]) -> None:
    """Check, before any of a DDL file's statements run, that every column they name is there.

    CREATE TABLE IF NOT EXISTS leaves an existing table as it is, so an existing table must already have the
    file's columns (fewer stored ones need a migration); an index must name columns its table has (or gets
    from the same file). On SQLite an index on a missing column would index a string constant instead.
    """
    tables: dict[str, set[str]] = {}
    for statement in statements:
        if isinstance(statement, exp.Create) and isinstance(statement.this, exp.Schema):
            name = statement.this.this.name
            declared = [c.name for c in statement.this.expressions if isinstance(c, exp.ColumnDef)]
            stored = await _columns(driver, name)
            if stored:
                _missing(name, declared, stored, driver, source)
            tables[name] = stored or set(declared)
            continue
        target = _index_target(statement)
        if target is not None:
            table, parts = target
            present = tables[table] if table in tables else await _columns(driver, table)
            _missing(table, [p.name for p in parts if isinstance(p, exp.Column)], present, driver, source)


async def _drop_indexes_on_strings(driver: SqlDriver, dry_run: bool, echo: Callable[[str], None]) -> int:
    """Drop the SQLite indexes whose definition names a column the table lacked: they index a string.

    SQLite reads a double-quoted name it cannot resolve as a string literal, so an earlier Prism, which ran an
    entity's DDL before checking its columns, could index the constant 'country' on a table without that
    column. Adding the column afterwards makes the index disagree with its table (a corrupt file). SQLite
    reports such an index's part as an expression (cid -2) while its text names a plain column.
    """
    dropped = 0
    indexes = await driver.fetch(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        [],
        namespace=_NS,
    )
    for name, table, sql in indexes:
        info = await driver.fetch(
            "SELECT seqno, cid FROM pragma_index_xinfo(?) WHERE key = 1", [name], namespace=_NS
        )
        expressions = {int(seqno) for seqno, cid in info if cid == -2}
        target = _index_target(sqlglot.parse_one(str(sql), read="sqlite")) if expressions else None
        if target is None:
            continue
        strings = [p.name for i, p in enumerate(target[1]) if i in expressions and isinstance(p, exp.Column)]
        if not strings:
            continue  # a real expression index: not ours, and not this fault
        verb = "would be dropped" if dry_run else "dropped"
        echo(
            f"{table}: index {name} indexes the string {strings[0]!r}, not a column (an earlier Prism made it "
            f"before the column existed): {verb}, to be built again"
        )
        if not dry_run:
            await driver.execute_script(
                [f"DROP INDEX IF EXISTS {driver.dialect.quote(str(name))}"], namespace=_NS
            )
        dropped += 1
    return dropped


async def _check_integrity(driver: SqlDriver) -> None:
    """Raise DatabaseDamaged unless SQLite's own integrity check of the whole file says "ok"."""
    found = [str(row[0]) for row in await driver.fetch("PRAGMA integrity_check", [], namespace=_NS)]
    if found != ["ok"]:
        raise DatabaseDamaged(
            f"PRAGMA integrity_check reports {len(found)} problem(s): {'; '.join(found[:5])}",
            backend=driver.name,
            hint="the file is damaged; when only indexes are named, `REINDEX` (sqlite3 <file> REINDEX) rebuilds "
            "them from their tables; otherwise restore it from a backup",
        )


def _record(source: str, digest: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # A file applied again (its index rebuilt, or an earlier version brought back) moves to the front.
    return (
        f"INSERT INTO {HISTORY_TABLE} (source, sha256, applied_at) VALUES "
        f"({_literal(source)}, {_literal(digest)}, {_literal(now)}) "
        "ON CONFLICT (source, sha256) DO UPDATE SET applied_at = excluded.applied_at"
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
        target = _index_target(statement)
        if holds and not dry_run and target is not None:
            # The statements before it added the index's columns, or the index would be on a string (SQLite).
            table, parts = target
            wanted = [p.name for p in parts if isinstance(p, exp.Column)]
            _missing(table, wanted, await _columns(driver, table), driver, f"{source} (from its {name} on)")
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


@dataclass(frozen=True)
class Applied:
    """One row of `prism_schema_history`: a file, its digest, and when it was (last) applied."""

    source: str
    sha256: str
    applied_at: str


async def history(driver: SqlDriver) -> list[Applied]:
    """Return what `prism_schema_history` records, newest first; none when nothing was ever provisioned."""
    exists = await driver.fetch(driver.dialect.object_exists(), ["table", HISTORY_TABLE], namespace=_NS)
    if not exists:
        return []
    rows = await driver.fetch(
        f"SELECT source, sha256, applied_at FROM {HISTORY_TABLE} ORDER BY applied_at DESC", [], namespace=_NS
    )
    return [Applied(str(r[0]), str(r[1]), str(r[2])) for r in rows]


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
