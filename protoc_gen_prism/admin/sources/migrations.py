"""The Shadow migrations page: the seam to the migrations control (issue 18, `prism.yaml` `migrations:`).

The page calls only `migrations()` and `advance()`. Until the shadow-traffic control lands, nothing is
configured and the page says so; wiring it is then these two functions, reading the control's status
(phase, backfill progress, mismatch rate) and setting a phase, and nothing in the routes or templates.
"""

from __future__ import annotations

from dataclasses import dataclass

from prism_runtime.errors import ConfigError
from protoc_gen_prism.admin.deployment import Deployment


class NotConfigured(ConfigError):
    """The deployment has no shadow migrations to show or change."""


@dataclass(frozen=True)
class MigrationRow:
    """One namespace moving between backends."""

    namespace: str
    source: str
    target: str
    phase: str
    next_phase: str | None  # None: the last phase
    backfill: float | None  # 0..1; None before the backfill starts
    mismatch_rate: float | None  # shadow reads that differed, 0..1
    updated_at: str
    updated_by: str


@dataclass(frozen=True)
class MigrationsView:
    """The page: the migrations, or why there are none."""

    rows: list[MigrationRow]
    problem: str = ""


NOT_CONFIGURED = (
    "not configured: shadow migrations (prism.yaml `migrations:`) are not available in this Prism"
)


async def migrations(deployment: Deployment) -> MigrationsView:
    """Return every configured migration's status."""
    return MigrationsView([], NOT_CONFIGURED)


async def advance(deployment: Deployment, namespace: str, phase: str) -> str:
    """Move `namespace`'s migration to `phase`, attributed to the admin's actor; return what was done."""
    raise NotConfigured(NOT_CONFIGURED)
