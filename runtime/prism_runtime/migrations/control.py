"""The phase of each migration: kept in `prism_migrations`, changed by an operator, followed by services.

prism.yaml gives a migration's first phase. The control table holds the current one: it is written once from
the yaml (insert-if-absent) and from then on only by `set_phase` (`prism migration phase`). A running service
re-reads it at most every `phase_poll_seconds` from one background task of its Database, never on the path
of a read or write: an operation reads the phase from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prism_runtime.backends.contract import Backend
from prism_runtime.backends.registry import runs_sql
from prism_runtime.config import PHASES, Config, Migration
from prism_runtime.errors import ConfigError
from prism_runtime.migrations.tables import CONTROL, TOMBSTONES
from prism_runtime.pii.tables import insert_sql, prepare
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.driver import SqlDriver

log = logging.getLogger("prism_runtime.migrations")


class MigratingDatabase(Protocol):
    """What the migration layer (this watcher, the routing backends) uses of the Database it serves.

    Stated here, since the Database builds this layer over itself when its config has migrations."""

    @property
    def config(self) -> Config:
        """The binding that names each migration and its two ends."""
        ...

    def named_backend(self, name: str) -> Backend:
        """Return the open backend configured under `name`."""
        ...

    def serving(self, spec: EntitySpec, name: str) -> Backend:
        """Return the open backend `name`, checked to serve `spec`'s abstraction (a stream end of a series)."""
        ...


@dataclass
class PhaseCell:
    """The phase a service currently follows for one migration (updated in place by the watcher)."""

    migration: Migration
    phase: str


@dataclass(frozen=True)
class PhaseRow:
    """One row of the control table."""

    namespace: str
    source: str
    target: str
    phase: str
    updated_at: str
    updated_by: str
    spec: str


def now() -> str:
    """Return the current UTC time as text, as every Prism bookkeeping table stores it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sql_end(db: MigratingDatabase, name: str, namespace: str) -> SqlDriver:
    """Return the open backend `name` of a migration as an SQL driver, or say that it must be one."""
    backend = db.named_backend(name)
    if not runs_sql(backend):
        raise ConfigError(
            f"migrations.{namespace}: backend {name!r} ({backend.name}) does not run SQL; "
            "a KeyValue migration moves between sqlite and postgres backends"
        )
    return backend


def control_driver(db: MigratingDatabase, migration: Migration) -> SqlDriver:
    """Return the backend holding a migration's control row: the source when it runs SQL, else the target."""
    source = db.named_backend(migration.source)
    if runs_sql(source):
        return source
    return sql_end(db, migration.target, migration.namespace)


async def ensure_row(driver: SqlDriver, migration: Migration, spec_json: str = "") -> PhaseRow:
    """Create the control table and the migration's row (the yaml's phase) unless there; return the row."""
    await prepare(driver, CONTROL)
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    row = (
        migration.namespace,
        migration.source,
        migration.target,
        migration.phase,
        now(),
        "prism.yaml",
        spec_json,
    )
    await driver.execute(
        f"{insert_sql(driver, CONTROL)} ON CONFLICT ({q('namespace')}) DO NOTHING",
        row,
        namespace=CONTROL.namespace,
    )
    if spec_json:
        await driver.execute(
            f"UPDATE {q(CONTROL.namespace)} SET {q('spec')} = {ph(1)} WHERE {q('namespace')} = {ph(2)}",
            (spec_json, migration.namespace),
            namespace=CONTROL.namespace,
        )
    found = await read_rows(driver, [migration.namespace])
    return found[migration.namespace]


async def read_rows(driver: SqlDriver, namespaces: Sequence[str]) -> dict[str, PhaseRow]:
    """Return the control rows of `namespaces` that exist."""
    q = driver.dialect.quote
    names = ", ".join(q(c.name) for c in CONTROL.columns)
    marks = ", ".join(driver.dialect.placeholder(i + 1) for i in range(len(namespaces)))
    rows = await driver.fetch(
        f"SELECT {names} FROM {q(CONTROL.namespace)} WHERE {q('namespace')} IN ({marks})",
        tuple(namespaces),
        namespace=CONTROL.namespace,
    )
    return {str(r[0]): PhaseRow(*(str(v) for v in r)) for r in rows}


def check_transition(namespace: str, current: str, wanted: str) -> None:
    """Raise ConfigError unless a migration may go from phase `current` to `wanted`.

    Every phase is reversible until the last: `done` is reached only from `promoted`, and never left.
    """
    if wanted not in PHASES:
        raise ConfigError(f"migration {namespace!r}: unknown phase {wanted!r}; allowed: {', '.join(PHASES)}")
    if current == "done" and wanted != "done":
        raise ConfigError(
            f"migration {namespace!r} is done: the source is no longer written, so it cannot go back"
        )
    if wanted == "done" and current not in ("promoted", "done"):
        raise ConfigError(
            f"migration {namespace!r} is in {current}; allowed next: dual_write, shadow_read, promoted "
            "(done only after promoted)"
        )


def update_phase_sql(
    driver: SqlDriver, namespace: str, phase: str, actor: str
) -> tuple[str, tuple[str, ...]]:
    """Return the statement (and its arguments) storing a new phase in the control row."""
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    return (
        f"UPDATE {q(CONTROL.namespace)} SET {q('phase')} = {ph(1)}, {q('updated_at')} = {ph(2)}, "
        f"{q('updated_by')} = {ph(3)} WHERE {q('namespace')} = {ph(4)}",
        (phase, now(), actor, namespace),
    )


async def drop_tombstones(driver: SqlDriver, namespace: str) -> None:
    """Delete the namespace's tombstones from the target (at `done`: no backfill runs any more)."""
    await prepare(driver, TOMBSTONES)
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    await driver.execute(
        f"DELETE FROM {q(TOMBSTONES.namespace)} WHERE {q('namespace')} = {ph(1)}",
        (namespace,),
        namespace=namespace,
    )


class Watcher:
    """The Database's background task that follows the control table's phases."""

    def __init__(self, db: MigratingDatabase) -> None:
        self.db = db
        self.cells: dict[str, PhaseCell] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Write the yaml's rows where missing, read every current phase, and start polling."""
        for migration in self.db.config.migrations.values():
            row = await ensure_row(control_driver(self.db, migration), migration)
            self.cells[migration.namespace] = PhaseCell(migration, row.phase)
        if self.cells:
            poll = min(c.migration.phase_poll_seconds for c in self.cells.values())
            self._task = asyncio.create_task(self._follow(poll), name="prism migration phases")

    async def _follow(self, poll: float) -> None:
        while True:
            await asyncio.sleep(poll)
            await self.refresh()

    async def refresh(self) -> None:
        """Read the current phases now (a failed read keeps the phase known so far, and says so)."""
        by_driver: dict[SqlDriver, list[str]] = {}
        for cell in self.cells.values():
            if cell.phase != "done":
                by_driver.setdefault(control_driver(self.db, cell.migration), []).append(
                    cell.migration.namespace
                )
        for driver, namespaces in by_driver.items():
            try:
                rows = await read_rows(driver, namespaces)
            except Exception as error:  # the service goes on in the phase it knows
                log.warning(
                    "prism migration: cannot read phases on %s: %s", driver.name, type(error).__name__
                )
                continue
            for namespace, row in rows.items():
                cell = self.cells[namespace]
                if row.phase != cell.phase and row.phase in PHASES:
                    log.info("prism migration %s: phase %s -> %s", namespace, cell.phase, row.phase)
                    cell.phase = row.phase

    async def stop(self) -> None:
        """Stop polling."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
