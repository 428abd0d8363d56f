"""Moving a namespace between backends with shadow traffic: phases, routing, backfill, verification.

The functions here are what tools call (the `prism migration` and `prism backfill` commands, the admin UI):

- `status(db, namespace)`: the migration's configured ends, current phase, who set it, and backfill progress
  (`statuses(db)`: every migration's);
- `set_phase(db, namespace, phase, actor)`: change the phase (audited; services follow within
  `phase_poll_seconds`);
- `progress(db, namespace)`: the backfill checkpoint alone;
- `backfill(db, namespace, ...)` and `verify(db, namespace)`.

docs/migrations-between-backends.md is the design and the operator's runbook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prism_runtime.config import PHASES
from prism_runtime.migrations.control import (
    check_transition,
    control_driver,
    drop_tombstones,
    ensure_row,
    read_rows,
    sql_end,
    update_phase_sql,
)
from prism_runtime.migrations.transfer import Differences, Progress, backfill, migration_of, progress, verify
from prism_runtime.pii.audit import AuditEvent
from prism_runtime.pii.audit import actor as acting
from prism_runtime.pii.vault import vault_for
from prism_runtime.sql.driver import After

if TYPE_CHECKING:
    from prism_runtime.database import Database

__all__ = [
    "PHASES",
    "Differences",
    "MigrationStatus",
    "Progress",
    "backfill",
    "progress",
    "set_phase",
    "status",
    "statuses",
    "verify",
]


@dataclass(frozen=True)
class MigrationStatus:
    """Where one namespace's migration stands."""

    namespace: str
    source: str
    """The source backend's name under `backends:`."""
    target: str
    phase: str
    """The current phase, from the control table."""
    updated_at: str
    updated_by: str
    following: str | None
    """The phase this Database's service follows now (None when it routes no traffic for the namespace)."""
    backfill: Progress


async def status(db: Database, namespace: str) -> MigrationStatus:
    """Return the state of a namespace's migration, read from its backends now."""
    migration = migration_of(db, namespace)
    driver = control_driver(db, migration)
    # connect() wrote the row; a tool reading status does not write unless it is somehow missing.
    row = (await read_rows(driver, [namespace])).get(namespace) or await ensure_row(driver, migration)
    cell = db.watcher.cells.get(namespace) if db.watcher is not None else None
    return MigrationStatus(
        namespace,
        migration.source,
        migration.target,
        row.phase,
        row.updated_at,
        row.updated_by,
        cell.phase if cell is not None else None,
        await progress(db, namespace),
    )


async def statuses(db: Database) -> list[MigrationStatus]:
    """Return the state of every migration in the database's config, by namespace."""
    return [await status(db, namespace) for namespace in sorted(db.config.migrations)]


async def set_phase(db: Database, namespace: str, phase: str, actor: str) -> MigrationStatus:
    """Move a namespace's migration to `phase`, as `actor` (who, for the audit log); return the new status.

    The change and its audit entry (action "migrate", on the control backend's audit chain) are one
    transaction. At `done` the target's tombstones of the namespace are dropped.
    """
    migration = migration_of(db, namespace)
    driver = control_driver(db, migration)
    current = (await ensure_row(driver, migration)).phase
    check_transition(namespace, current, phase)
    if phase != current:
        sql, args = update_phase_sql(driver, namespace, phase, actor)
        event = AuditEvent(
            action="migrate",
            message=namespace,
            field=0,
            pii="",
            subject_ref="",
            record_ref=f"{current}->{phase}",
        )

        async def write(after: Sequence[After]) -> None:
            await driver.execute_many(sql, [args], namespace=namespace, after=list(after))

        with acting(actor, "migration phase"):
            await vault_for(driver).audit.append_with([event], write)
        if phase == "done":
            await drop_tombstones(sql_end(db, migration.target, namespace), namespace)
    if db.watcher is not None and namespace in db.watcher.cells:
        await db.watcher.refresh()
    return await status(db, namespace)
