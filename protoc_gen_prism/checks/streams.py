"""Stream rules: changes to topics and streams that lose data, cannot be applied, or reorder records."""

from __future__ import annotations

from collections.abc import Iterator

from prism_runtime.schema import Abstraction
from protoc_gen_prism.checks.compare import Comparison
from protoc_gen_prism.checks.rules import Category, Hit, Severity, rule
from protoc_gen_prism.checks.stream_settings import StreamSettings, settings_of
from protoc_gen_prism.model import Entity


def _stream(days: int, extra: str = "") -> str:
    return (
        'message Click {\n  option (prism.access_pattern) = "append_heavy";\n'
        f'  option (prism.retention_days) = "{days}";\n{extra}'
        "  string user_id = 1 [(prism.key) = true];\n  int64 at_ms = 2 [(prism.event_time) = true];\n}"
    )


_KAFKA = '  option (prism.backend) = "kafka";\n'


def _settings(change: Comparison) -> Iterator[tuple[Entity, Entity, StreamSettings, StreamSettings]]:
    """Yield each pair of entities with the settings their plans give them."""
    if not change.entity_pairs:
        return  # one side has no model, so no plans either
    before, after = change.before.plans(), change.after.plans()
    for old, new in change.entity_pairs:
        yield old, new, settings_of(old, before[old.full_name]), settings_of(new, after[new.full_name])


def _series(change: Comparison) -> Iterator[tuple[Entity, StreamSettings, StreamSettings]]:
    for old, new, was, now in _settings(change):
        if old.abstraction is Abstraction.TIME_SERIES and new.abstraction is Abstraction.TIME_SERIES:
            yield new, was, now


def _days(days: int) -> str:
    return "forever" if days == 0 else f"{days} days"


@rule(
    "STREAM_RETENTION_SHORTENED",
    Category.STREAMS,
    Severity.ERROR,
    "retention_days was lowered: records older than the new limit are deleted when it applies",
    _stream(90),
    _stream(30),
)
def retention_shortened(change: Comparison) -> Iterator[Hit]:
    """Find entities that keep records for less time than before."""
    for _, new, before, after in _settings(change):
        was, now = before.retention_days, after.retention_days
        if now and (was == 0 or now < was):
            yield Hit(
                new.location,
                f"{new.full_name}: retention shortened from {_days(was)} to {_days(now)}; records older than "
                f"{now} days will be deleted",
            )


@rule(
    "STREAM_PARTITIONS_DECREASED",
    Category.STREAMS,
    Severity.ERROR,
    "a topic's partition count went down: Kafka cannot remove partitions",
    _stream(7, _KAFKA + '  option (prism.consumer_parallelism) = "8";\n'),
    _stream(7, _KAFKA + '  option (prism.consumer_parallelism) = "4";\n'),
)
def partitions_decreased(change: Comparison) -> Iterator[Hit]:
    """Find topics planned with fewer partitions."""
    for entity, was, now in _series(change):
        if was.partitions is not None and now.partitions is not None and now.partitions < was.partitions:
            yield Hit(
                entity.location,
                f"{entity.full_name}: partitions decrease from {was.partitions} to {now.partitions}; a topic "
                "cannot lose partitions: keep the count or create a new namespace",
            )


@rule(
    "STREAM_PARTITIONS_INCREASED_KEYED",
    Category.STREAMS,
    Severity.ERROR,
    "a keyed topic's partition count went up: a key's new records land on another partition, out of order",
    _stream(7, _KAFKA + '  option (prism.consumer_parallelism) = "4";\n'),
    _stream(7, _KAFKA + '  option (prism.consumer_parallelism) = "8";\n'),
)
def partitions_increased(change: Comparison) -> Iterator[Hit]:
    """Find keyed topics planned with more partitions."""
    for entity, was, now in _series(change):
        if (
            now.keyed
            and was.partitions is not None
            and now.partitions is not None
            and now.partitions > was.partitions
        ):
            yield Hit(
                entity.location,
                f"{entity.full_name}: partitions increase from {was.partitions} to {now.partitions} on a topic "
                "keyed by its key; per-key ordering breaks across the change: drain consumers first or use a "
                "new namespace",
            )


@rule(
    "STREAM_NATS_STORAGE_CHANGED",
    Category.STREAMS,
    Severity.ERROR,
    "a JetStream stream's storage type (file, memory) changed: the stream must be recreated",
    _stream(7, '  option (prism.backend) = "nats";\n'),
    _stream(7, '  option (prism.backend) = "nats";\n  // planned with memory storage\n'),
)
def nats_storage_changed(change: Comparison) -> Iterator[Hit]:
    """Find NATS streams planned with another storage type."""
    for entity, was, now in _series(change):
        if (
            was.storage
            and now.storage
            and was.storage != now.storage
            and was.backend == now.backend == "nats"
        ):
            yield Hit(
                entity.location,
                f"{entity.full_name}: JetStream storage changes from {was.storage} to {now.storage}; NATS "
                "cannot update it: the stream must be recreated and its messages copied",
            )


@rule(
    "STREAM_BACKEND_CHANGED",
    Category.STREAMS,
    Severity.ERROR,
    "an entity's backend changed: its data must be migrated (dual writes through shadow traffic)",
    _stream(7, '  option (prism.backend) = "nats";\n'),
    _stream(7, '  option (prism.backend) = "kafka";\n'),
)
def backend_changed(change: Comparison) -> Iterator[Hit]:
    """Find entities whose data now lives on another backend."""
    for _, new, before, after in _settings(change):
        was, now = before.backend, after.backend
        if was != now:
            yield Hit(
                new.location,
                f"{new.full_name}: backend changes from {was} to {now}; migrate through shadow traffic "
                f'(dual write, backfill, switch reads), or pin (prism.backend) = "{was}"',
            )
