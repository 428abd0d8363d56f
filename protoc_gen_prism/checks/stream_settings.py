"""What a breaking check compares about where an entity's data lives: the capacity planner's choices.

Each side's entities are planned with the production profile (`protoc_gen_prism.planner`) when their image is
built, and the two plans are compared: backend, Kafka partitions, NATS storage type. Retention is the schema's
retention_days, which every plan only converts into its backend's unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from protoc_gen_prism.model import Entity
from protoc_gen_prism.planner import Plan


@dataclass(frozen=True)
class StreamSettings:
    """The settings of one entity that existing data depends on."""

    backend: str
    partitions: int | None  # Kafka topics only
    retention_days: int  # 0 keeps records forever
    storage: str | None  # NATS JetStream streams only: "file" or "memory"
    keyed: bool  # records are routed by key, so a partition count change reorders a key's records


def settings_of(entity: Entity, plan: Plan) -> StreamSettings:
    """Return where the plan puts an entity's data, and with which settings."""
    return StreamSettings(
        backend=str(plan.backend),
        partitions=plan.kafka.partitions if plan.kafka is not None else None,
        retention_days=entity.options.retention_days,
        storage=plan.nats.storage if plan.nats is not None else None,
        keyed=entity.key is not None,
    )
