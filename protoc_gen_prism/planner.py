"""The capacity planner: entity options + a deployment profile -> a Plan whose every number is explained.

Pure: no I/O, no clock. Every rule here is a row of the table in docs/planner.md, and each row has a
test in tests/test_planner.py; change the three together.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prism_runtime.schema import Abstraction
from prism_runtime.stream_plans import PlannedStream, StreamSettings, TopicSettings
from protoc_gen_prism.model import Entity, Field, Schema
from protoc_gen_prism.settings import Profile
from protoc_gen_prism.storage import TIMESTAMP
from protoc_gen_prism.vocabulary import BackendKind

# -- thresholds (docs/planner.md, "Choosing a backend") ------------------------------------------------
KAFKA_MIN_WRITE_RPS = 1000
"""At or above this many writes/s an append_heavy stream goes to Kafka: partitions spread the load."""
KAFKA_MIN_RETENTION_DAYS = 30
"""At or above this retention an append_heavy stream goes to Kafka: its log scales on disk per partition."""

# -- Kafka sizing (docs/planner.md, "Kafka partitions") -------------------------------------------------
PARTITION_RECORDS_PER_S = 500
"""Records/s one partition is sized for: what one Python consumer handles at ~2 ms per record."""
PARTITION_BYTES_PER_S = 5 * 1024 * 1024
"""Bytes/s one partition is sized for: well under a broker disk's sequential write rate."""
MIN_PARTITIONS = 1
MAX_PARTITIONS = 1000
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
"""Kafka's own default for max.message.bytes; raised only for records estimated larger."""

# -- storage (docs/planner.md, "Storage") ---------------------------------------------------------------
HEADROOM = 1.25
"""Storage limits are the estimate plus 25%: bursts and estimation error should not drop data early."""
_HEADROOM_RATIO = (5, 4)
"""HEADROOM as a fraction, so that the storage estimate is exact integer arithmetic at any size."""
NATS_DUPLICATE_WINDOW_NS = 120 * 1_000_000_000
"""JetStream's default dedupe window (2 min): a retried append within it is stored once."""

MS_PER_DAY = 86_400_000
NS_PER_DAY = MS_PER_DAY * 1_000_000

# -- message size estimate (docs/planner.md, "Message size") --------------------------------------------
_VALUE_BYTES = {
    "bool": 1,
    "int32": 3,
    "uint32": 3,
    "sint32": 3,
    "enum": 2,
    "int64": 6,
    "uint64": 6,
    "sint64": 6,
    "fixed32": 4,
    "sfixed32": 4,
    "float": 4,
    "fixed64": 8,
    "sfixed64": 8,
    "double": 8,
    "string": 25,
    "bytes": 33,
    "message": 48,
}
_TIMESTAMP_BYTES = 12
_REPEATED_ITEMS = 4


@dataclass(frozen=True)
class ProfileSettings:
    """What a deployment profile fixes regardless of load."""

    replicas: int
    min_insync_replicas: int


PROFILES = {
    Profile.LOCAL: ProfileSettings(replicas=1, min_insync_replicas=1),
    Profile.PRODUCTION: ProfileSettings(replicas=3, min_insync_replicas=2),
}


# Topics and streams are planned as the runtime's own types, which provisioning takes as they are.
KafkaTopicPlan = TopicSettings
NatsStreamPlan = StreamSettings


@dataclass(frozen=True)
class SqlTablePlan:
    """An SQL table as planned: time-partitioned with old partitions dropped, for TimeSeries."""

    table: str
    partition_by: str = ""
    drop_after_days: int = 0
    ttl_seconds: int = 0  # KeyValue: items expire this long after their last put; 0: never


@dataclass(frozen=True)
class Plan:
    """Where one entity lives and with what settings, with the reasons in plain sentences."""

    namespace: str
    message: str
    abstraction: Abstraction
    backend: BackendKind
    profile: Profile
    message_bytes: int
    write_bytes_per_s: int
    storage_bytes: int
    kafka: KafkaTopicPlan | None = None
    nats: NatsStreamPlan | None = None
    sql: SqlTablePlan | None = None
    rationale: tuple[str, ...] = field(default_factory=tuple)

    def settings(self) -> dict[str, object]:
        """Return the backend settings as plain data, for the plan file and the table."""
        if self.kafka is not None:
            return self.kafka.to_json()
        if self.nats is not None:
            return self.nats.to_json()
        assert self.sql is not None
        out: dict[str, object] = {"table": self.sql.table}
        if self.sql.partition_by:
            out |= {"partition_by": self.sql.partition_by, "drop_after_days": self.sql.drop_after_days}
        if self.sql.ttl_seconds:
            out["ttl_seconds"] = self.sql.ttl_seconds
        return out

    def stream(self) -> PlannedStream | None:
        """Return what provisioning needs of a plan on Kafka or NATS (None on SQL)."""
        settings = self.kafka or self.nats
        return None if settings is None else PlannedStream(self.namespace, settings)

    def to_json(self) -> dict[str, object]:
        """Return the plan as the JSON object `prism.plan.json` holds for it."""
        return {
            "namespace": self.namespace,
            "message": self.message,
            "abstraction": str(self.abstraction),
            "backend": str(self.backend),
            "profile": str(self.profile),
            "estimates": {
                "message_bytes": self.message_bytes,
                "write_bytes_per_s": self.write_bytes_per_s,
                "storage_bytes": self.storage_bytes,
            },
            "settings": self.settings(),
            "rationale": list(self.rationale),
        }


@dataclass(frozen=True)
class Plans:
    """The plan stage's result: a plan per entity of the schema, in schema order, for one profile."""

    profile: Profile
    all: tuple[Plan, ...]

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    def on(self, backend: BackendKind) -> list[Plan]:
        """Return the plans placed on `backend`."""
        return [p for p in self.all if p.backend is backend]

    def streams(self) -> list[PlannedStream]:
        """Return the topics and streams to provision, typed."""
        return [s for p in self.all if (s := p.stream()) is not None]

    def by_namespace(self) -> dict[str, Plan]:
        """Return each plan by its namespace."""
        return {p.namespace: p for p in self.all}


def plan_schema(schema: Schema, profile: Profile) -> Plans:
    """Plan every entity of a validated schema (see `validate.check_plans` for the rules on the result)."""
    return Plans(profile, tuple(plan_entity(entity, profile) for entity in schema.entities))


def plan_entity(entity: Entity, profile: Profile) -> Plan:
    """Plan one entity (its options are already validated)."""
    opts = entity.options
    why: list[str] = []
    size = opts.estimated_message_bytes
    if size is None:
        size = estimate_message_bytes(entity.fields)
        why.append(f"a record is about {size} bytes, estimated from the field types")
    else:
        why.append(f"a record is {size} bytes, as (prism.estimated_message_bytes) says")
    rps = opts.estimated_write_rps
    write_bytes = rps * size
    retention_s = opts.retention_days * 86_400
    numerator, denominator = _HEADROOM_RATIO
    storage = _ceil_div(write_bytes * retention_s * numerator, denominator)
    if rps and opts.retention_days:
        why.append(
            f"storage: {rps} writes/s x {size} B x {opts.retention_days} days x {HEADROOM} headroom = "
            f"{_human_bytes(storage)} per replica"
        )
    backend = _choose_backend(entity, profile, why)
    settings = PROFILES[profile]
    kafka = nats = None
    sql = None
    if backend is BackendKind.KAFKA:
        kafka = _kafka_topic(entity, size, settings, why)
    elif backend is BackendKind.NATS:
        nats = _nats_stream(entity, storage, settings, why)
    elif entity.abstraction is Abstraction.TIME_SERIES and opts.retention_days:
        sql = SqlTablePlan(entity.namespace, partition_by="day", drop_after_days=opts.retention_days)
        why.append(
            f"retention {opts.retention_days} days: daily partitions, dropped after {opts.retention_days} days"
        )
    else:
        sql = SqlTablePlan(table=entity.namespace, ttl_seconds=opts.ttl_seconds)
        if opts.ttl_seconds:
            why.append(
                f"ttl {opts.ttl_seconds} s ({_human_seconds(opts.ttl_seconds)}): expired items are never read; "
                f"they are purged in batches in the background and by prism provision --purge-expired"
            )
    return Plan(
        namespace=entity.namespace,
        message=entity.full_name,
        abstraction=entity.abstraction,
        backend=backend,
        profile=profile,
        message_bytes=size,
        write_bytes_per_s=write_bytes,
        storage_bytes=storage,
        kafka=kafka,
        nats=nats,
        sql=sql,
        rationale=tuple(why),
    )


def _choose_backend(entity: Entity, profile: Profile, why: list[str]) -> BackendKind:
    opts = entity.options
    if opts.backend is not None:
        why.insert(0, f"backend {opts.backend}: set explicitly by (prism.backend)")
        return opts.backend
    if entity.abstraction is not Abstraction.TIME_SERIES:
        where = (
            "postgres in production (sqlite embedded when no server is configured)"
            if profile is Profile.PRODUCTION
            else "postgres when one is configured, else sqlite embedded"
        )
        why.insert(0, f"{opts.access_pattern} is served by {entity.abstraction}: {where}")
        return BackendKind.POSTGRES
    rps, days = opts.estimated_write_rps, opts.retention_days
    if rps >= KAFKA_MIN_WRITE_RPS:
        why.insert(0, f"append_heavy at {rps} writes/s (>= {KAFKA_MIN_WRITE_RPS}): kafka, partitioned")
        return BackendKind.KAFKA
    if days >= KAFKA_MIN_RETENTION_DAYS:
        why.insert(
            0, f"append_heavy kept {days} days (>= {KAFKA_MIN_RETENTION_DAYS}): kafka, for long retention"
        )
        return BackendKind.KAFKA
    if opts.estimated_read_rps > rps:
        why.insert(
            0,
            f"append_heavy read more than written ({opts.estimated_read_rps} > {rps} per s): postgres, "
            f"queried by time through an index",
        )
        return BackendKind.POSTGRES
    why.insert(
        0,
        f"append_heavy at {rps} writes/s (< {KAFKA_MIN_WRITE_RPS}) kept {days} days "
        f"(< {KAFKA_MIN_RETENTION_DAYS}): nats jetstream",
    )
    return BackendKind.NATS


def kafka_partitions(write_rps: int, message_bytes: int, consumer_parallelism: int | None) -> int:
    """Return max(records rule, bytes rule, consumer parallelism), clamped to [1, 1000]."""
    by_records = _ceil_div(write_rps, PARTITION_RECORDS_PER_S)
    by_bytes = _ceil_div(write_rps * message_bytes, PARTITION_BYTES_PER_S)
    wanted = max(by_records, by_bytes, consumer_parallelism or 0)
    return min(max(wanted, MIN_PARTITIONS), MAX_PARTITIONS)


def _kafka_topic(entity: Entity, size: int, profile: ProfileSettings, why: list[str]) -> KafkaTopicPlan:
    opts = entity.options
    rps = opts.estimated_write_rps
    partitions = kafka_partitions(rps, size, opts.consumer_parallelism)
    why.append(
        f"partitions {partitions} = max(ceil({rps} / {PARTITION_RECORDS_PER_S} records/s), "
        f"ceil({rps * size} B/s / {PARTITION_BYTES_PER_S} B/s), consumer parallelism "
        f"{opts.consumer_parallelism or 0}), clamped to [{MIN_PARTITIONS}, {MAX_PARTITIONS}]"
    )
    retention_ms = opts.retention_days * MS_PER_DAY if opts.retention_days else -1
    if opts.retention_days:
        why.append(f"retention.ms {retention_ms} = {opts.retention_days} days")
    else:
        why.append("retention.ms -1: retention_days is 0, records are kept forever")
    max_message = max(KAFKA_DEFAULT_MAX_MESSAGE_BYTES, size * 2)
    why.append(
        f"replicas {profile.replicas}, min.insync.replicas {profile.min_insync_replicas}: "
        f"producers write with acks=all"
    )
    config = {
        "cleanup.policy": "delete",
        "compression.type": "producer",
        "max.message.bytes": str(max_message),
        "min.insync.replicas": str(profile.min_insync_replicas),
        "retention.ms": str(retention_ms),
    }
    return KafkaTopicPlan(entity.namespace, partitions, profile.replicas, config)


def _nats_stream(entity: Entity, storage: int, profile: ProfileSettings, why: list[str]) -> NatsStreamPlan:
    days = entity.options.retention_days
    max_age = days * NS_PER_DAY
    max_bytes = storage if storage > 0 else -1
    if days:
        why.append(f"max_age {days} days; max_bytes {max_bytes} (the storage estimate), discard old")
    else:
        why.append("max_age 0: retention_days is 0, messages are kept until max_bytes")
    why.append(f"replicas {profile.replicas}; file storage; dedupe window 2m on Nats-Msg-Id")
    return NatsStreamPlan(
        name=entity.namespace,
        subjects=(f"prism.{entity.namespace}.>",),
        replicas=profile.replicas,
        max_age_ns=max_age,
        max_bytes=max_bytes,
        duplicate_window_ns=NATS_DUPLICATE_WINDOW_NS,
    )


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def estimate_message_bytes(fields: tuple[Field, ...]) -> int:
    """Return a typical encoded size: tag + value per field, repeated and map fields as four items."""
    total = 0
    for f in fields:
        tag = 1 if f.number < 16 else 2
        value = _TIMESTAMP_BYTES if f.type_name == TIMESTAMP else _VALUE_BYTES[f.proto_type]
        items = _REPEATED_ITEMS if f.repeated or f.is_map else 1
        total += (tag + value) * items
    return max(total, 1)


def _human_seconds(n: int) -> str:
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if n % size == 0:
            return f"{n // size} {unit}{'' if n == size else 's'}"
    raise AssertionError("every count of seconds is whole seconds")


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} PiB"
