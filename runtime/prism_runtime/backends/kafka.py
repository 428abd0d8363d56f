"""Kafka (aiokafka): TimeSeries as one topic per namespace, a series key per record key.

URL: ``kafka://host:port[,host:port...][?idempotence=true|false]``. Records are written with acks=all,
the record key is the series key (so a key's events share a partition), the record timestamp is the
event time, and the event id rides in a header.

Idempotent producers are on by default (real Kafka). Tansu, the broker the tests use, refuses them
(docs/backends-notes.md), so the tests connect with ``?idempotence=false``; either way readers drop a
duplicate by its event-id header, so a retried append is seen once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic  # type: ignore[import-untyped]
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped]
    ConfigResource,
    ConfigResourceType,
)
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
)
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]
from google.protobuf.message import Message

from prism_runtime import telemetry
from prism_runtime.backends.acks import acknowledged
from prism_runtime.backends.contract import Change, Wanted
from prism_runtime.backends.registry import BackendKind
from prism_runtime.config import BackendUrl
from prism_runtime.errors import BackendError, BackendUnavailable, ConfigError
from prism_runtime.payload_codecs import payload_codec
from prism_runtime.schema import EntitySpec
from prism_runtime.stream_codec import EVENT_ID_HEADER, key_bytes
from prism_runtime.stream_plans import TopicSettings
from prism_runtime.timeseries import Event, EventIdentity, window

M = TypeVar("M", bound=Message)
T = TypeVar("T")

log = logging.getLogger(__name__)

_OPTIONS = ("idempotence",)
_FETCH_MS = 500
_NS_PER_MS = 1_000_000
# How long an append (or a topic lookup) may wait for the brokers before it fails with
# BackendUnavailable; aiokafka's own limit is 40 s. The producer keeps reconnecting meanwhile, so calls
# succeed again as soon as a broker is back, without a new producer.
SEND_TIMEOUT_S = 5.0
IDEMPOTENCE_HINT = (
    "a broker without idempotent producers (Tansu, some Kafka-compatible servers) refuses them: add "
    "?idempotence=false to the Kafka URL; readers still drop a retried append's duplicate by its event id"
)


class KafkaBackend:
    """A Kafka cluster: one shared producer, a consumer per read, connected on first use."""

    kind = BackendKind.KAFKA

    def __init__(self, url: BackendUrl) -> None:
        parts = urlsplit(url.url)
        self.bootstrap = parts.netloc.rsplit("@", 1)[-1]
        if not self.bootstrap:
            raise ConfigError(f"Kafka URL {url.redacted!r} names no broker; use kafka://host:port")
        options = dict(parse_qsl(parts.query))
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"unknown Kafka URL option {unknown[0]!r} in {url.redacted!r}; allowed: {', '.join(_OPTIONS)}"
            )
        flag = options.get("idempotence", "true").lower()
        if flag not in ("true", "false"):
            raise ConfigError(f"idempotence={flag!r} in {url.redacted!r}; allowed: true, false")
        self.idempotence = flag == "true"
        self.name = f"kafka ({self.bootstrap})"
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._partitions: dict[str, list[int]] = {}

    async def open(self) -> None:
        """Nothing to do: the producer connects on first use, so errors can name the namespace."""

    async def close(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    def timeseries(self, spec: EntitySpec, message: type[M]) -> KafkaTimeSeries[M]:
        """Return the TimeSeries backend of one entity."""
        return KafkaTimeSeries(self, spec, message)

    async def guard(
        self, namespace: str, work: Callable[[], Awaitable[T]], *, timeout: float | None = None
    ) -> T:
        """Run `work`, turning aiokafka's errors into typed errors that name the namespace.

        With `timeout`, a call the brokers do not answer in time fails with BackendUnavailable.
        """
        try:
            async with asyncio.timeout(timeout):
                return await work()
        except TimeoutError:
            raise BackendUnavailable(
                f"no answer from the brokers within {timeout:g}s",
                namespace=namespace,
                backend=self.name,
                hint="is the broker running? the producer reconnects by itself once it is back",
            ) from None
        except (KafkaConnectionError, NodeNotReadyError, RequestTimedOutError) as error:
            raise BackendUnavailable(
                f"cannot reach the brokers: {type(error).__name__}", namespace=namespace, backend=self.name
            ) from None
        except (KafkaTimeoutError, UnknownTopicOrPartitionError) as error:
            raise BackendError(
                f"{type(error).__name__} on topic {namespace!r}",
                namespace=namespace,
                backend=self.name,
                hint="the topic may not exist where auto-creation is off: run `prism provision`",
            ) from None
        except KafkaError as error:
            raise BackendError(type(error).__name__, namespace=namespace, backend=self.name) from None

    async def producer(self, namespace: str) -> Any:
        """Return the started producer (acks=all; idempotent unless the URL says otherwise)."""
        if self._producer is None:
            async with self._lock:
                if self._producer is None:
                    producer = AIOKafkaProducer(
                        bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=self.idempotence
                    )
                    try:
                        await self.guard(namespace, producer.start)
                    except BackendUnavailable:
                        await producer.stop()
                        raise
                    except BackendError as error:
                        await producer.stop()
                        if not self.idempotence:
                            raise
                        # Connected, then refused: an idempotent producer starts by asking for a
                        # producer id, and this broker said no.
                        raise BackendError(
                            f"the broker refused to give the idempotent producer an id "
                            f"(InitProducerId: {error.detail})",
                            namespace=namespace,
                            backend=self.name,
                            hint=IDEMPOTENCE_HINT,
                        ) from None
                    except BaseException:
                        await producer.stop()
                        raise
                    self._producer = producer
        return self._producer

    async def consumer(self, namespace: str) -> Any:
        """Return a started consumer outside any group: positions are set by the reader."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        try:
            await self.guard(namespace, consumer.start)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def partitions(self, topic: str, namespace: str) -> list[int]:
        """Return a topic's partitions, sorted (asking for them creates the topic where auto-creation is on)."""
        known = self._partitions.get(topic)
        if known is None:
            producer = await self.producer(namespace)
            found = await self.guard(
                namespace, lambda: producer.partitions_for(topic), timeout=SEND_TIMEOUT_S
            )
            known = self._partitions[topic] = sorted(found)
        return known

    def admin(self) -> KafkaAdmin:
        """Return an admin connection to the brokers, which `prism provision` creates and updates topics with."""
        return KafkaAdmin(self.bootstrap, self.name)


def partition_of(key: bytes, partitions: list[int]) -> int:
    """Return the partition of a key: murmur2, as Kafka's Java client and aiokafka's default partitioner do."""
    index: int = murmur2(key) & 0x7FFFFFFF
    return partitions[index % len(partitions)]


class KafkaTimeSeries(Generic[M]):
    """One namespace's events on its topic."""

    def __init__(self, backend: KafkaBackend, spec: EntitySpec, message: type[M]) -> None:
        self.backend = backend
        self.spec = spec
        self.topic = spec.namespace
        self.codec = payload_codec(spec, message, backend)
        self.identity: EventIdentity[M] = EventIdentity(spec)
        self._ns = spec.namespace

    async def append(self, events: Sequence[Event[M]]) -> None:
        """Send every event, then wait for all acknowledgements (acks=all)."""
        producer = await self.backend.producer(self._ns)
        partitions = await self.backend.partitions(self.topic, self._ns)
        encode = self.codec.encode_event
        await self.codec.prepare_encode(events)

        # The span context of this append (when traced), so a tail's span links to it.
        carried = [(k, v.encode()) for k, v in telemetry.trace_headers().items()]

        async def send_all() -> None:
            pending = []
            for e in events:
                key = key_bytes(e.key)
                pending.append(
                    await producer.send(
                        self.topic,
                        value=encode(e),
                        key=key,
                        partition=partition_of(key, partitions),
                        timestamp_ms=e.time_ns // _NS_PER_MS,
                        headers=[(EVENT_ID_HEADER, e.event_id.encode()), *carried],
                    )
                )
            await acknowledged(pending)  # within the guard's SEND_TIMEOUT_S

        await self.backend.guard(self._ns, send_all, timeout=SEND_TIMEOUT_S)

    async def query(
        self, key: Any, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> AsyncIterator[M]:
        """Read the key's partition from the first record at or after `start`, keep the window, sort."""
        raw_key = key_bytes(key)
        partitions = await self.backend.partitions(self.topic, self._ns)
        tp = TopicPartition(self.topic, partition_of(raw_key, partitions))
        consumer = await self.backend.consumer(self._ns)
        try:
            found = await self.backend.guard(self._ns, lambda: self._read(consumer, tp, raw_key, start_ns))
        finally:
            await consumer.stop()
        for message in window(found, start_ns, end_ns, limit):
            yield message

    async def _read(self, consumer: Any, tp: Any, raw_key: bytes, start_ns: int | None) -> list[Event[M]]:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        begin = (await consumer.beginning_offsets([tp]))[tp]
        first = await start_offset(consumer, tp, start_ns, begin, end)
        if first >= end:
            return []
        consumer.seek(tp, first)
        out: list[Event[M]] = []
        checked = start_ns is None or first == begin
        stalled, last = 0, first
        while True:
            batch = (await consumer.getmany(tp, timeout_ms=_FETCH_MS)).get(tp, [])
            if not batch:
                # A broker that lists records up to `end` but serves none (seen on Tansu after a restart)
                # must not make a query wait forever: give up after SEND_TIMEOUT_S without progress.
                position = await consumer.position(tp)
                stalled = 0 if position != last else stalled + 1
                last = position
                if stalled * _FETCH_MS >= SEND_TIMEOUT_S * 1000:
                    raise BackendUnavailable(
                        f"partition {tp.partition} lists records up to offset {end} but none past "
                        f"{position} arrived within {SEND_TIMEOUT_S:g}s",
                        namespace=self._ns,
                        backend=self.backend.name,
                    )
            if batch and not checked:
                checked = True
                assert start_ns is not None
                if batch[0].timestamp < start_ns // _NS_PER_MS:
                    # The broker answered an offset whose record is earlier than asked: Kafka promises
                    # the first record at or after the time, so its answer cannot be trusted. Scan.
                    log.warning("%s: offsets_for_times answered a wrong offset; scanning %s", self._ns, tp)
                    consumer.seek(tp, begin)
                    continue
            await self.codec.prepare_decode([r.value for r in batch if r.key == raw_key])
            out.extend(self._events(batch, raw_key))
            if await consumer.position(tp) >= end:
                return out

    def _events(self, records: Sequence[Any], raw_key: bytes | None) -> list[Event[M]]:
        out = []
        for record in records:
            if raw_key is not None and record.key != raw_key:
                continue
            message = self.codec.decode_record(record.value, record.key, self.backend.name)
            if message is None:
                continue  # its subject was forgotten
            telemetry.carried(record.headers)
            ids = [v for k, v in record.headers or () if k == EVENT_ID_HEADER]
            event_id = ids[0].decode() if ids else ""
            out.append(Event(record.key, self.identity.time_ns(message), event_id, message))
        return out

    def follow(self, key: Any | None, from_ns: int | None) -> KafkaFollower[M]:
        """Return a follower of the key's partition (or every partition) from now or from `from_ns`."""
        return KafkaFollower(self, None if key is None else key_bytes(key), from_ns)


async def start_offset(consumer: Any, tp: Any, start_ns: int | None, begin: int, end: int) -> int:
    """Return the first offset whose record may be at or after `start_ns` (beginning when there is no start)."""
    if start_ns is None:
        return begin
    answer = (await consumer.offsets_for_times({tp: start_ns // _NS_PER_MS}))[tp]
    if answer is None:
        return end  # no record at or after the time
    return int(min(max(answer.offset, begin), end))


class KafkaFollower(Generic[M]):
    """Follows a topic's partitions from fixed positions with an unassigned consumer."""

    def __init__(self, series: KafkaTimeSeries[M], raw_key: bytes | None, from_ns: int | None) -> None:
        self.series = series
        self.raw_key = raw_key
        self.from_ns = from_ns
        self.consumer: Any = None

    async def start(self) -> None:
        """Assign the partitions and seek: to the end now, or to the first record at `from_ns`."""
        s = self.series
        partitions = await s.backend.partitions(s.topic, s._ns)
        if self.raw_key is not None:
            partitions = [partition_of(self.raw_key, partitions)]
        tps = [TopicPartition(s.topic, p) for p in partitions]
        self.consumer = await s.backend.consumer(s._ns)

        async def position() -> None:
            consumer = self.consumer
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            for tp in tps:
                # From a time, an early answer only costs reading records the Tail drops (see query).
                offset = await start_offset(consumer, tp, self.from_ns, begins[tp], ends[tp])
                consumer.seek(tp, ends[tp] if self.from_ns is None else offset)

        await s.backend.guard(s._ns, position)

    async def next_batch(self) -> list[M]:
        """Return the records fetched within half a second, the key's only."""
        s = self.series
        batches = await s.backend.guard(s._ns, lambda: self.consumer.getmany(timeout_ms=_FETCH_MS))
        await s.codec.prepare_decode(
            [r.value for rs in batches.values() for r in rs if self.raw_key in (None, r.key)]
        )
        return [e.message for records in batches.values() for e in s._events(records, self.raw_key)]

    async def close(self) -> None:
        """Stop the consumer."""
        if self.consumer is not None:
            await self.consumer.stop()


# -- provisioning: topics as the plan says (`prism provision`, prism_runtime.provision_streams) ----------


class KafkaAdmin:
    """Creates and updates topics; partitions only grow, and a replication change is refused."""

    def __init__(self, bootstrap: str, name: str) -> None:
        self.bootstrap = bootstrap
        self.name = name
        self.admin: Any = None

    async def open(self) -> None:
        """Connect the admin client."""
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
        """Close the admin client."""
        if self.admin is not None:
            await self.admin.close()

    async def diff(self, wanted: Wanted) -> Change:
        """Compare the topic with the planned one: partitions, replicas and topic configs."""
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

    async def records(self, wanted: Wanted) -> int | None:
        """Return how many records the topic holds (end minus start offsets), None when it does not exist."""
        s = wanted.settings
        assert isinstance(s, TopicSettings)
        if s.name not in await self.admin.list_topics():
            return None  # never asked by name: a metadata request would create it where auto-creation is on
        described = (await self.admin.describe_topics([s.name]))[0]
        tps = [TopicPartition(s.name, p["partition"]) for p in described["partitions"]]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            await consumer.start()
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
        except KafkaError as error:
            raise BackendUnavailable(
                f"cannot read the offsets of {s.name}: {type(error).__name__}", backend=self.name
            ) from None
        finally:
            await consumer.stop()
        return sum(int(ends[tp]) - int(begins[tp]) for tp in tps)

    async def _configs(self, name: str) -> dict[str, str]:
        responses = await self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        out: dict[str, str] = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                for entry in resource["config_entries"]:
                    out[entry["config_names"]] = entry["config_value"]
        return out

    async def apply(self, change: Change, wanted: Wanted) -> None:
        """Create the topic, or add partitions and alter its configs."""
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
