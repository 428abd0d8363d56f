"""Create or update the topics and streams of a plan, idempotently, on every backend whose registry entry has
Capability.STREAM_ADMIN (Kafka topics, JetStream streams: each backend's `admin()`).

The plan comes typed (`prism_runtime.stream_plans.PlannedStream`): built in-process by the compiler, or read
back from prism.plan.json with `planned_streams`.

Everything is compared first; if any change cannot be applied (fewer partitions, other replicas, a
storage or retention type change) nothing is applied and `ProvisionRefused` lists every reason.
Otherwise missing topics and streams are created and differing ones updated where the servers allow
(partitions only up, topic configs altered, stream limits updated). `dry_run` returns the diff only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

from prism_runtime.backends import loader, registry
from prism_runtime.backends.contract import AdministersStreams, Change, StreamAdmin, Wanted
from prism_runtime.backends.registry import Capability
from prism_runtime.config import Config
from prism_runtime.errors import ConfigError, PrismError
from prism_runtime.stream_plans import PlannedStream


class ProvisionRefused(PrismError):
    """A planned change that the servers cannot apply; nothing was changed."""


@asynccontextmanager
async def _opened(
    streams: Sequence[PlannedStream], config: Config
) -> AsyncIterator[list[tuple[StreamAdmin, list[Wanted]]]]:
    """Yield an open admin per stream backend kind the plan uses, with the topics or streams it plans there."""
    administered = registry.with_capability(Capability.STREAM_ADMIN)
    planned: dict[str, list[Wanted]] = {
        kind: [s for s in streams if s.backend == kind] for kind in administered
    }
    planned = {kind: items for kind, items in planned.items() if items}
    missing = [kind for kind in planned if kind not in config.backends]
    if missing:
        raise ConfigError(
            f"the plan has {' and '.join(missing)} namespaces but the config names no URL for "
            f"{', '.join(missing)}; add it under backends"
        )
    # Every backend class (and so its driver) is loaded before any server is dialled: a missing extra is
    # named first, whichever it is.
    classes = {
        kind: loader.backend_class(kind, f"provisioning {kind} ({config.backends[kind].redacted})")
        for kind in planned
    }
    admins: dict[str, StreamAdmin] = {
        kind: cast("AdministersStreams", cls(config.backends[kind])).admin() for kind, cls in classes.items()
    }
    opened: list[StreamAdmin] = []
    try:
        for admin in admins.values():
            await admin.open()
            opened.append(admin)
        yield [(admin, planned[kind]) for kind, admin in admins.items()]
    finally:
        for admin in opened:
            await admin.close()


@dataclass(frozen=True)
class Surveyed:
    """One planned topic or stream: what provisioning would do to it, and how many records it holds."""

    change: Change
    records: int | None  # None: it does not exist yet


async def survey_streams(streams: Sequence[PlannedStream], config: Config) -> list[Surveyed]:
    """Compare the planned topics and streams with the servers named in `config` and count their records;
    change nothing. Unlike a dry run of `provision_streams`, changes the servers would refuse are returned
    (in `Change.refused`), not raised."""
    async with _opened(streams, config) as admins:
        return [
            Surveyed(await admin.diff(w), await admin.records(w)) for admin, wanted in admins for w in wanted
        ]


async def provision_streams(
    streams: Sequence[PlannedStream], config: Config, *, dry_run: bool = False
) -> list[Change]:
    """Bring the servers named in `config` in line with the planned topics and streams; return changes."""
    async with _opened(streams, config) as admins:
        compared = [(admin, w, await admin.diff(w)) for admin, wanted in admins for w in wanted]
        changes = [change for _, _, change in compared]
        refused = [f"{c.backend} {c.name}: {r}" for c in changes for r in c.refused]
        if refused:
            raise ProvisionRefused("cannot apply the plan, nothing was changed:\n  " + "\n  ".join(refused))
        if not dry_run:
            for admin, w, change in compared:
                await admin.apply(change, w)
        return changes
