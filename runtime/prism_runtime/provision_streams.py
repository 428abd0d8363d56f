"""Create or update Kafka topics and JetStream streams from a plan, idempotently.

The plan comes typed (`prism_runtime.stream_plans.PlannedStream`): built in-process by the compiler, or read
back from prism.plan.json with `planned_streams`.

Everything is compared first; if any change cannot be applied (fewer partitions, other replicas, a
storage or retention type change) nothing is applied and `ProvisionRefused` lists every reason.
Otherwise missing topics and streams are created and differing ones updated where the servers allow
(partitions only up, topic configs altered, stream limits updated). `dry_run` returns the diff only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prism_runtime.config import Config
from prism_runtime.errors import BackendError, BackendUnavailable, ConfigError, PrismError
from prism_runtime.extras import require
from prism_runtime.stream_plans import PlannedStream, StreamSettings, TopicSettings

if TYPE_CHECKING:
    from nats.js import api

# The drivers are imported when a plan needs them (see `provision_streams`), so that provisioning SQL
# alone, or a plan with topics only, needs no NATS or Kafka driver installed.

_NS = 1_000_000_000


class ProvisionRefused(PrismError):
    """A planned change that the servers cannot apply; nothing was changed."""


@dataclass(frozen=True)
class Change:
    """What provisioning does (or would do) to one topic or stream."""

    backend: str  # "kafka" or "nats"
    name: str
    action: str  # "create", "update", "unchanged"
    details: tuple[str, ...] = ()
    refused: tuple[str, ...] = field(default=(), repr=False)

    def __str__(self) -> str:
        mark = {"create": "+", "update": "~", "unchanged": "="}[self.action]
        what = "topic" if self.backend == "kafka" else "stream"
        text = f"{mark} {self.backend} {what} {self.name}: {self.action}"
        return text + "".join(f"\n    {d}" for d in self.details)


async def provision_streams(
    planned: Sequence[PlannedStream], config: Config, *, dry_run: bool = False
) -> list[Change]:
    """Bring the servers named in `config` in line with the planned topics and streams; return the changes."""
    topics = [p for p in planned if isinstance(p.settings, TopicSettings)]
    streams = [p for p in planned if isinstance(p.settings, StreamSettings)]
    missing = [k for k, items in (("kafka", topics), ("nats", streams)) if items and k not in config.backends]
    if missing:
        raise ConfigError(
            f"the plan has {' and '.join(missing)} namespaces but the config names no URL for "
            f"{', '.join(missing)}; add it under backends"
        )
    if topics:
        require("aiokafka", "provisioning Kafka topics")
    if streams:
        require("nats", "provisioning JetStream streams")
    kafka = _KafkaSide(config.backends["kafka"].url) if topics else None
    jetstream = _NatsSide(config.backends["nats"].url) if streams else None
    try:
        changes: list[Change] = []
        if kafka is not None:
            await kafka.open()
            changes += [await kafka.diff(w) for w in topics]
        if jetstream is not None:
            await jetstream.open()
            changes += [await jetstream.diff(w) for w in streams]
        refused = [f"{c.backend} {c.name}: {r}" for c in changes for r in c.refused]
        if refused:
            raise ProvisionRefused("cannot apply the plan, nothing was changed:\n  " + "\n  ".join(refused))
        if not dry_run:
            for change in changes:
                side = kafka if change.backend == "kafka" else jetstream
                assert side is not None
                await side.apply(change, {w.namespace: w for w in (*topics, *streams)}[change.name])
        return changes
    finally:
        if kafka is not None:
            await kafka.close()
        if jetstream is not None:
            await jetstream.close()


class _KafkaSide:
    def __init__(self, url: str) -> None:
        self.bootstrap = url.split("://", 1)[1].split("?", 1)[0]
        self.name = f"kafka ({self.bootstrap})"
        self.admin: Any = None

    async def open(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
        from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await admin.start()
        except KafkaError as error:
            await admin.close()
            raise BackendUnavailable(
                f"cannot reach the brokers: {type(error).__name__}", backend=self.name
            ) from None
        self.admin = admin

    async def close(self) -> None:
        if self.admin is not None:
            await self.admin.close()

    async def diff(self, wanted: PlannedStream) -> Change:
        s = wanted.settings
        assert isinstance(s, TopicSettings)
        name = s.name
        config: dict[str, str] = dict(s.config)
        # Describe only existing topics: a metadata request for an unknown topic creates it on brokers
        # with auto-creation on (Tansu, many dev clusters).
        if name not in await self.admin.list_topics():
            created = (f"partitions {s.partitions}, replicas {s.replicas}", *_pairs(config))
            return Change("kafka", name, "create", created)
        described = (await self.admin.describe_topics([name]))[0]
        partitions = described["partitions"]
        current_partitions = len(partitions)
        current_replicas = len(partitions[0]["replicas"]) if partitions else 0
        details: list[str] = []
        refused: list[str] = []
        if s.partitions > current_partitions:
            details.append(f"partitions {current_partitions} -> {s.partitions}")
        elif s.partitions < current_partitions:
            refused.append(
                f"partitions {current_partitions} -> {s.partitions}: Kafka cannot remove partitions "
                "(records would move between keys' partitions); keep the count or recreate the topic"
            )
        if s.replicas != current_replicas:
            refused.append(
                f"replicas {current_replicas} -> {s.replicas}: a replication change needs a partition "
                "reassignment (kafka-reassign-partitions), which provisioning does not do"
            )
        current = await self._configs(name)
        details += [
            f"{k} {current.get(k, '(default)')} -> {v}" for k, v in config.items() if current.get(k) != v
        ]
        action = "update" if details else "unchanged"
        return Change("kafka", name, action, tuple(details), tuple(refused))

    async def _configs(self, name: str) -> dict[str, str]:
        from aiokafka.admin.config_resource import (  # type: ignore[import-untyped]
            ConfigResource,
            ConfigResourceType,
        )

        responses = await self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        out: dict[str, str] = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                for entry in resource["config_entries"]:
                    out[entry["config_names"]] = entry["config_value"]
        return out

    async def apply(self, change: Change, wanted: PlannedStream) -> None:
        from aiokafka.admin import NewPartitions, NewTopic
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
        from aiokafka.errors import KafkaError

        s = wanted.settings
        assert isinstance(s, TopicSettings)
        name = s.name
        try:
            if change.action == "create":
                topic = NewTopic(name, s.partitions, s.replicas, topic_configs=dict(s.config))
                response = await self.admin.create_topics([topic])
                for error in response.to_object()["topic_errors"]:
                    if error["error_code"] not in (0, 36):  # 36: created meanwhile, compared next run
                        raise BackendError(
                            f"creating topic {name!r} failed: error {error['error_code']} {error['error_message']}",
                            namespace=wanted.namespace,
                            backend=self.name,
                        )
            elif change.action == "update":
                if any(d.startswith("partitions ") for d in change.details):
                    await self.admin.create_partitions({name: NewPartitions(total_count=s.partitions)})
                if any(not d.startswith("partitions ") for d in change.details):
                    resource = ConfigResource(ConfigResourceType.TOPIC, name, configs=dict(s.config))
                    await self.admin.alter_configs([resource])
        except KafkaError as error:
            raise BackendError(
                f"updating topic {name!r} failed: {type(error).__name__}: {error}",
                namespace=wanted.namespace,
                backend=self.name,
                hint="the broker may not support CreatePartitions/AlterConfigs (Tansu does not); "
                "apply manifests/kafka/ with the Strimzi Topic Operator instead",
            ) from None


def _pairs(config: Mapping[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(config.items())]


class _NatsSide:
    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"nats ({url})"
        self.nc: Any = None
        self.js: Any = None

    async def open(self) -> None:
        import nats
        from nats.errors import Error as NatsError

        try:
            self.nc = await nats.connect(servers=[self.url], connect_timeout=2, max_reconnect_attempts=1)
        except (NatsError, OSError) as error:
            raise BackendUnavailable(
                f"cannot reach the server: {type(error).__name__}", backend=self.name
            ) from None
        self.js = self.nc.jetstream()

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()

    def desired(self, s: StreamSettings) -> api.StreamConfig:
        from nats.js import api

        return api.StreamConfig(
            name=s.name,
            subjects=list(s.subjects),
            retention=api.RetentionPolicy(s.retention),
            storage=api.StorageType(s.storage),
            discard=api.DiscardPolicy(s.discard),
            num_replicas=s.replicas,
            max_age=s.max_age_ns / _NS,
            max_bytes=s.max_bytes,
            duplicate_window=s.duplicate_window_ns / _NS,
        )

    async def diff(self, wanted: PlannedStream) -> Change:
        from nats.js.errors import NotFoundError

        s = wanted.settings
        assert isinstance(s, StreamSettings)
        name = s.name
        want = self.desired(s)
        try:
            info = await self.js.stream_info(name)
        except NotFoundError:
            created = (
                f"subjects {', '.join(want.subjects or [])}, {s.storage} storage, replicas {want.num_replicas}",
                f"max_age {s.max_age_ns}ns, max_bytes {want.max_bytes}, duplicate_window {s.duplicate_window_ns}ns",
            )
            return Change("nats", name, "create", created)
        have = info.config
        compare: Sequence[tuple[str, Any, Any]] = (
            ("subjects", sorted(have.subjects or []), sorted(want.subjects or [])),
            ("num_replicas", have.num_replicas, want.num_replicas),
            ("max_age", _ns(have.max_age), s.max_age_ns),
            ("max_bytes", have.max_bytes, want.max_bytes),
            ("duplicate_window", _ns(have.duplicate_window), s.duplicate_window_ns),
            ("discard", have.discard, want.discard),
            ("storage", have.storage, want.storage),
            ("retention", have.retention, want.retention),
        )
        details: list[str] = []
        refused: list[str] = []
        for label, old, new in compare:
            if old == new:
                continue
            line = f"{label} {_show(old)} -> {_show(new)}"
            if label in ("storage", "retention"):
                refused.append(
                    f"{line}: JetStream cannot change a stream's {label}; create a new stream and move the data"
                )
            else:
                details.append(line)
        return Change("nats", name, "update" if details else "unchanged", tuple(details), tuple(refused))

    async def apply(self, change: Change, wanted: PlannedStream) -> None:
        from nats.errors import Error as NatsError

        assert isinstance(wanted.settings, StreamSettings)
        config = self.desired(wanted.settings)
        try:
            if change.action == "create":
                await self.js.add_stream(config)
            elif change.action == "update":
                await self.js.update_stream(config)
        except NatsError as error:
            raise BackendError(
                f"{change.action} of stream {config.name!r} failed: {error}",
                namespace=wanted.namespace,
                backend=self.name,
            ) from None


def _ns(seconds: float | None) -> int:
    return round((seconds or 0) * _NS)


def _show(value: Any) -> str:
    return str(value.value) if hasattr(value, "value") else str(value)
