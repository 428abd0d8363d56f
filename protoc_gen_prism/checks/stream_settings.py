"""What a breaking check compares about where an entity's data lives: backend, partitions, retention, storage.

The capacity planner decides these; until it is part of the compiler only what the schema states explicitly
is known ((prism.backend), (prism.consumer_parallelism) as the partition floor, (prism.retention_days)), and
an unknown value (None, "") never fires a rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from protoc_gen_prism.model import Entity


@dataclass(frozen=True)
class StreamSettings:
    """The settings of one entity that existing data depends on."""

    backend: str  # "" when the planner chooses and its choice is not known here
    partitions: int | None
    retention_days: int  # 0 keeps records forever
    storage: str | None  # NATS JetStream storage type: "file" or "memory"
    keyed: bool  # records are routed by key, so a partition count change reorders a key's records


def settings_of(entity: Entity) -> StreamSettings:
    """Return the stream settings of an entity as far as the schema states them."""
    return StreamSettings(
        backend=str(entity.options.backend or ""),
        partitions=entity.options.consumer_parallelism,
        retention_days=entity.options.retention_days,
        storage=None,
        keyed=entity.key is not None,
    )
