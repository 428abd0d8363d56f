"""The Shadow migrations page: each migration of the config (prism.yaml `migrations:`), through the functions
`prism migration` and `prism backfill` use (`prism_runtime.migrations`): phase, backfill progress, and the
rate of shadow-read mismatches the service reports on its metrics endpoint; and advancing a phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import prism_runtime
from prism_runtime import migrations as control
from prism_runtime.config import PHASES
from prism_runtime.errors import ConfigError
from protoc_gen_prism.admin.deployment import Deployment
from protoc_gen_prism.admin.sources.databases import problem
from protoc_gen_prism.admin.sources.metrics import MISMATCHES, Scraper


class NotConfigured(ConfigError):
    """The deployment has no such migration to show or change."""


@dataclass(frozen=True)
class MigrationRow:
    """One namespace moving between backends."""

    namespace: str
    source: str
    target: str
    phase: str
    next_phase: str | None  # None: the last phase
    backfill: float | None  # 0..1; None before the backfill starts
    backfill_rows: str  # "copied of total", or why there is no number
    mismatches_per_s: float | None  # shadow reads whose answers differed; None without metrics
    updated_at: str
    updated_by: str


@dataclass(frozen=True)
class MigrationsView:
    """The page: the migrations, or why there are none."""

    rows: list[MigrationRow]
    problem: str = ""


NOT_CONFIGURED = (
    "not configured: the config has no `migrations:` section (docs/migrations-between-backends.md)"
)


def next_phase(phase: str) -> str | None:
    """Return the phase after `phase`, None after the last."""
    at = PHASES.index(phase) if phase in PHASES else len(PHASES)
    return PHASES[at + 1] if at + 1 < len(PHASES) else None


def _row(status: control.MigrationStatus, scraper: Scraper | None) -> MigrationRow:
    progress = status.backfill
    if not progress.state:
        share, rows = None, "not started"
    else:
        share = min(1.0, progress.rows / progress.total) if progress.total else 1.0
        rows = f"{progress.rows} of {progress.total} rows ({progress.state})"
    return MigrationRow(
        namespace=status.namespace,
        source=status.source,
        target=status.target,
        phase=status.phase,
        next_phase=next_phase(status.phase),
        backfill=share,
        backfill_rows=rows,
        mismatches_per_s=scraper.window.rate(MISMATCHES, status.namespace) if scraper else None,
        updated_at=status.updated_at,
        updated_by=status.updated_by,
    )


async def migrations(deployment: Deployment, scraper: Scraper | None = None) -> MigrationsView:
    """Return every configured migration's status."""
    if not deployment.config.migrations:
        return MigrationsView([], NOT_CONFIGURED)
    try:
        async with prism_runtime.connect(config=deployment.settings.config) as db:
            found = await control.statuses(db)
    except Exception as error:
        return MigrationsView([], problem(error))
    return MigrationsView([_row(status, scraper) for status in found])


async def advance(deployment: Deployment, namespace: str, phase: str) -> str:
    """Move `namespace`'s migration to `phase` as the admin's actor; `set_phase` audits it (action "migrate")."""
    if namespace not in deployment.config.migrations:
        raise NotConfigured(f"{namespace!r} has no migration in the config")
    async with prism_runtime.connect(config=deployment.settings.config) as db:
        status = await control.set_phase(db, namespace, phase, deployment.settings.actor)
    return f"{namespace} is in phase {status.phase}, set by {status.updated_by} (audited as migrate)"
