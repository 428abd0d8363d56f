"""NATS JetStream (nats-py): TimeSeries as one stream per namespace, a subject per series key.

URL: ``nats://host:port``. Stream ``<namespace>`` captures ``prism.<namespace>.>``; a key's events go to
``prism.<namespace>.k<base64url(key)>``. Each message carries its event id in ``Nats-Msg-Id`` (the server
drops a repeat within the duplicate window; readers drop any later one).

JetStream stamps messages with the time it stores them and cannot seek by any other time, so reads
start by store time: at `start` minus `LATE_ALLOWANCE` (producers' clocks may run ahead of the
server's), and keep only events whose event time is in range. An event stored more than the allowance
before its own event time (future-dated) is found only by reads that start at or before its store time.
A missing stream is created with the entity's retention on first use, as the embedded SQLite default
creates its tables; `prism provision` creates it as planned (replicas, limits) instead.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import nats
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.errors import ConnectionClosedError, ConnectionReconnectingError, NoRespondersError, NoServersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext, api
from nats.js.errors import NoStreamResponseError, NotFoundError, ServiceUnavailableError

from prism_runtime import telemetry
from prism_runtime.backends.acks import acknowledged
from prism_runtime.backends.contract import Change, Wanted
from prism_runtime.backends.registry import BackendKind
from prism_runtime.config import BackendUrl
from prism_runtime.errors import BackendError, BackendUnavailable, ConfigError
from prism_runtime.payload_codecs import payload_codec
from prism_runtime.schema import EntitySpec
from prism_runtime.stream_codec import NATS_MSG_ID_HEADER, key_bytes
from prism_runtime.stream_plans import StreamSettings
from prism_runtime.timeseries import Event, EventIdentity, window

M = TypeVar("M", bound=Message)
T = TypeVar("T")

log = logging.getLogger(__name__)

LATE_ALLOWANCE = datetime.timedelta(minutes=5)
DUPLICATE_WINDOW_S = 120.0
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_BATCH = 256
#: How long `append` waits for the acknowledgements of a batch: nats-py's futures of `publish_async` have
#: no deadline of their own, and the ack of a message the server died with never comes.
ACK_TIMEOUT_S = 5.0
_WAIT_S = 0.5
_NS_PER_S = 1_000_000_000
# Connecting: a first connection tries twice, then fails (the caller gets BackendUnavailable). Once up,
# a lost connection is retried forever, every RECONNECT_WAIT_S: appends and tails resume within about
# that long of the server's return, whatever the outage's length.
CONNECT_TIMEOUT_S = 2.0
RECONNECT_WAIT_S = 0.5
_FIRST_CONNECT_RETRIES = 1
# A follower's consumer sends a heartbeat this often when idle; two missed ones (a server restart lost
# the consumer) make nats-py recreate it from the last stream sequence delivered.
FOLLOW_HEARTBEAT_S = 1.0
# Errors that say the server (or its JetStream) cannot serve now, rather than that the request is wrong.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    NoServersError,
    OSError,  # includes TimeoutError and so nats-py's TimeoutError: no answer in time
    ConnectionClosedError,
    ConnectionReconnectingError,
    NoRespondersError,  # JetStream not (yet) listening, e.g. right after a restart
    ServiceUnavailableError,
    NoStreamResponseError,
)


def subject_prefix(namespace: str) -> str:
    """Return the subject prefix of a namespace's stream."""
    return f"prism.{namespace}"


@functools.lru_cache(maxsize=65536, typed=True)
def subject_of(namespace: str, key: object) -> str:
    """Return the subject of one series key: a base64url token, so any key is a valid single token.

    Cached: a series appends to the same keys over and over, and this is on every append's path.
    """
    token = base64.urlsafe_b64encode(key_bytes(key)).decode().rstrip("=")
    return f"{subject_prefix(namespace)}.k{token}"


@functools.lru_cache(maxsize=65536)
def key_of_subject(subject: str) -> bytes | None:
    """Return the key bytes a subject from `subject_of` carries, or None for a subject it did not make.

    Cached: every message a query reads carries its key's one subject.
    """
    token = subject.rsplit(".", 1)[-1]
    if not token.startswith("k"):
        return None
    try:
        return base64.urlsafe_b64decode(token[1:] + "=" * (-len(token[1:]) % 4))
    except ValueError:  # binascii.Error is one
        return None


class NatsBackend:
    """A NATS server with JetStream, connected on first use."""

    kind = BackendKind.NATS

    def __init__(self, url: BackendUrl) -> None:
        parts = urlsplit(url.url)
        if not parts.hostname:
            raise ConfigError(f"NATS URL {url.redacted!r} names no server; use nats://host:port")
        self.url = urlunsplit(parts._replace(query="", fragment=""))
        self.name = f"nats ({parts.hostname}:{parts.port or 4222})"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._lock = asyncio.Lock()
        self._streams: set[str] = set()
        # Calls waiting on the server now, and those of them a lost connection cancelled (see guard).
        self._inflight: set[asyncio.Task[Any]] = set()
        self._cut_off: set[asyncio.Task[Any]] = set()
        self.failed_connects = 0
        """Connection attempts that failed, first ones and reconnects: what an outage has cost so far."""

    async def open(self) -> None:
        """Nothing to do: the connection opens on first use, so errors can name the namespace."""

    async def close(self) -> None:
        """Drain and close the connection."""
        if self._nc is not None:
            nc, self._nc, self._js = self._nc, None, None
            await nc.close()

    def timeseries(self, spec: EntitySpec, message: type[M]) -> NatsTimeSeries[M]:
        """Return the TimeSeries backend of one entity."""
        return NatsTimeSeries(self, spec, message)

    def admin(self) -> NatsAdmin:
        """Return an admin connection to the server, which `prism provision` creates and updates streams with."""
        return NatsAdmin(self.url, self.name)

    def unavailable(self, namespace: str, why: str) -> BackendUnavailable:
        """Return the error of a call made while the server cannot be reached."""
        return BackendUnavailable(
            why,
            namespace=namespace,
            backend=self.name,
            hint=f"the client reconnects every {RECONNECT_WAIT_S:g}s; retry once the server is back",
        )

    def connected(self) -> bool:
        """Return whether the client is connected now (False before the first use)."""
        return self._nc is not None and self._nc.is_connected

    async def guard(self, namespace: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work`, turning nats-py's errors into typed errors that name the namespace.

        While the client is reconnecting, fail at once: nats-py would buffer the request and wait for
        an answer that cannot come before the server is back. A call in flight when the connection drops
        is cancelled by `_lost` and fails at once too, instead of waiting for its request timeout.
        """
        nc = self._nc
        if nc is not None and not nc.is_connected:
            raise self.unavailable(namespace, "the connection to the server is lost; reconnecting")
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            return await work()
        except asyncio.CancelledError:
            if task is None or task not in self._cut_off:
                raise  # cancelled by its caller: not ours to turn into an error
            self._cut_off.discard(task)
            task.uncancel()
            raise self.unavailable(
                namespace, "the connection to the server was lost during the call"
            ) from None
        except _UNAVAILABLE as error:
            if isinstance(error, (NoRespondersError, ServiceUnavailableError, NoStreamResponseError)):
                self._streams.discard(namespace)  # a server back without its store: check the stream again
            raise self.unavailable(namespace, f"cannot reach the server: {type(error).__name__}") from None
        except NatsError as error:
            raise BackendError(
                f"{type(error).__name__}: {error}", namespace=namespace, backend=self.name
            ) from None
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _lost(self) -> None:
        """nats-py's disconnected callback: cancel the calls waiting on the server (they fail in guard)."""
        for task in self._inflight - self._cut_off:
            self._cut_off.add(task)
            task.cancel()

    async def _error(self, error: Exception) -> None:
        """nats-py's error callback: one log line per failure (its default logs a traceback each time)."""
        if self._nc is None or not self._nc.is_connected:
            self.failed_connects += 1
        log.warning("%s: %s (%s)", self.name, type(error).__name__, error)

    async def jetstream(self, spec: EntitySpec) -> JetStreamContext:
        """Return the JetStream context, connecting and making sure the namespace's stream exists."""
        ns = spec.namespace
        if self._nc is not None and self._nc.is_closed:
            # Closed for good (closed by nats-py itself, or by the server): start over with a new client.
            self._nc = self._js = None
            self._streams.clear()
        if self._js is None:
            async with self._lock:
                if self._js is None:

                    async def connect() -> Client:
                        nc = await nats.connect(
                            servers=[self.url],
                            connect_timeout=CONNECT_TIMEOUT_S,
                            reconnect_time_wait=RECONNECT_WAIT_S,
                            max_reconnect_attempts=_FIRST_CONNECT_RETRIES,
                            allow_reconnect=True,
                            disconnected_cb=self._lost,
                            error_cb=self._error,
                        )
                        # nats-py has one limit for the first connection and for reconnecting; once
                        # connected, reconnect forever (-1) so an outage of any length heals by itself.
                        nc.options["max_reconnect_attempts"] = -1
                        return nc

                    self._nc = await self.guard(ns, connect)
                    self._js = self._nc.jetstream()
        js = self._js
        if ns not in self._streams:
            await self.guard(ns, lambda: _ensure_stream(js, spec))
            self._streams.add(ns)
        return js


async def _ensure_stream(js: JetStreamContext, spec: EntitySpec) -> None:
    try:
        await js.stream_info(spec.namespace)
    except NotFoundError:
        await js.add_stream(
            name=spec.namespace,
            subjects=[f"{subject_prefix(spec.namespace)}.>"],
            storage=api.StorageType.FILE,
            max_age=spec.retention_days * 86_400.0 if spec.retention_days else None,
            duplicate_window=DUPLICATE_WINDOW_S,
        )


def _start_time(ns: int) -> datetime.datetime:
    """Return the store time to start reading at for events from event time `ns`."""
    return _EPOCH + datetime.timedelta(microseconds=ns // 1000) - LATE_ALLOWANCE


def _deliver_from(from_ns: int | None, *, new_when_unset: bool) -> api.ConsumerConfig:
    if from_ns is None:
        policy = api.DeliverPolicy.NEW if new_when_unset else api.DeliverPolicy.ALL
        return api.ConsumerConfig(deliver_policy=policy, ack_policy=api.AckPolicy.NONE)
    return api.ConsumerConfig(
        deliver_policy=api.DeliverPolicy.BY_START_TIME,
        opt_start_time=_start_time(from_ns),
        ack_policy=api.AckPolicy.NONE,
    )


class NatsTimeSeries(Generic[M]):
    """One namespace's events on its stream."""

    def __init__(self, backend: NatsBackend, spec: EntitySpec, message: type[M]) -> None:
        self.backend = backend
        self.spec = spec
        self.codec = payload_codec(spec, message, backend)
        self.identity: EventIdentity[M] = EventIdentity(spec)
        self._ns = spec.namespace

    async def append(self, events: Sequence[Event[M]]) -> None:
        """Publish every event, then wait for all acknowledgements."""
        js = await self.backend.jetstream(self.spec)
        ns = self._ns
        encode = self.codec.encode_event
        await self.codec.prepare_encode(events)

        carried = telemetry.trace_headers()  # this append's span context (when traced), for a tail's link

        async def publish_all() -> None:
            if len(events) == 1:
                e = events[0]
                headers = {NATS_MSG_ID_HEADER: e.event_id, **carried}
                await js.publish(subject_of(ns, e.key), encode(e), headers=headers)
                return
            publish = js.publish_async  # looked up once: the loop runs once per event
            pending = [
                await publish(
                    subject_of(ns, e.key), encode(e), headers={NATS_MSG_ID_HEADER: e.event_id, **carried}
                )
                for e in events
            ]
            await acknowledged(pending, ACK_TIMEOUT_S)

        await self.backend.guard(self._ns, publish_all)

    def _events(self, msgs: Sequence[Any]) -> list[Event[M]]:
        """Return the events of fetched messages; those of forgotten subjects are skipped."""
        out = []
        for msg in msgs:
            message = self.codec.decode_record(msg.data, key_of_subject(msg.subject), self.backend.name)
            if message is not None:
                telemetry.carried(msg.headers)
                event_id = (msg.headers or {}).get(NATS_MSG_ID_HEADER, "")
                out.append(Event(None, self.identity.time_ns(message), event_id, message))
        return out

    async def query(
        self, key: Any, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> AsyncIterator[M]:
        """Read the key's subject from `start` (by store time, see the module doc), keep the window, sort."""
        js = await self.backend.jetstream(self.spec)
        subject = subject_of(self._ns, key)

        async def read() -> list[Event[M]]:
            config = _deliver_from(start_ns, new_when_unset=False)
            sub = await js.pull_subscribe(subject, stream=self._ns, config=config)
            try:
                out: list[Event[M]] = []
                info = await sub.consumer_info()
                pending = info.num_pending or 0
                while pending > 0:
                    msgs = await sub.fetch(min(pending, 1024), timeout=5)
                    await self.codec.prepare_decode([m.data for m in msgs])
                    out.extend(self._events(msgs))
                    meta = msgs[-1].metadata
                    pending = meta.num_pending
                return out
            finally:
                await sub.unsubscribe()

        found = await self.backend.guard(self._ns, read)
        for message in window(found, start_ns, end_ns, limit):
            yield message

    def follow(self, key: Any | None, from_ns: int | None) -> NatsFollower[M]:
        """Return an ordered push consumer on the key's subject (or the whole stream)."""
        subject = subject_of(self._ns, key) if key is not None else f"{subject_prefix(self._ns)}.>"
        return NatsFollower(self, subject, from_ns)


class NatsFollower(Generic[M]):
    """An ordered consumer: the server pushes messages in stream order; the client fixes any gap."""

    def __init__(self, series: NatsTimeSeries[M], subject: str, from_ns: int | None) -> None:
        self.series = series
        self.subject = subject
        self.from_ns = from_ns
        self.sub: Any = None

    async def start(self) -> None:
        """Create the consumer: new messages only, or from the store time of `from_ns`."""
        s = self.series
        js = await s.backend.jetstream(s.spec)
        config = _deliver_from(self.from_ns, new_when_unset=True)

        async def subscribe() -> Any:
            return await js.subscribe(
                self.subject,
                stream=s._ns,
                ordered_consumer=True,
                idle_heartbeat=FOLLOW_HEARTBEAT_S,
                config=config,
            )

        self.sub = await s.backend.guard(s._ns, subscribe)

    async def next_batch(self) -> list[M]:
        """Return what arrived within half a second, in stream order.

        While the connection is lost, raise BackendUnavailable (after the half second): the consumer is
        kept, and once the client has reconnected it resumes after the last message delivered.
        """
        s = self.series
        out: list[M] = []
        try:
            msg = await self.sub.next_msg(timeout=_WAIT_S)
        except NatsTimeout:
            if not s.backend.connected():
                raise s.backend.unavailable(
                    s._ns, "the connection to the server is lost; reconnecting"
                ) from None
            return out
        msgs = [msg]
        while len(msgs) < _BATCH and self.sub.pending_msgs:
            msgs.append(await self.sub.next_msg(timeout=_WAIT_S))
        await s.codec.prepare_decode([m.data for m in msgs])
        out.extend(e.message for e in s._events(msgs))
        return out

    async def close(self) -> None:
        """Delete the consumer."""
        if self.sub is not None:
            await self.sub.unsubscribe()


# -- provisioning: streams as the plan says (`prism provision`, prism_runtime.provision_streams) ---------


class NatsAdmin:
    """Creates and updates JetStream streams; a stream's storage and retention cannot change in place."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None

    async def open(self) -> None:
        """Connect once, without reconnecting: provisioning fails fast on a server that is down."""
        try:
            self.nc = await nats.connect(servers=[self.url], connect_timeout=2, max_reconnect_attempts=1)
        except (NatsError, OSError) as error:
            raise BackendUnavailable(
                f"cannot reach the server: {type(error).__name__}", backend=self.name
            ) from None
        self.js = self.nc.jetstream()

    async def close(self) -> None:
        """Close the connection."""
        if self.nc is not None:
            await self.nc.close()

    @property
    def _jetstream(self) -> JetStreamContext:
        assert self.js is not None, "open() first"
        return self.js

    async def diff(self, wanted: Wanted) -> Change:
        """Compare the stream with the planned one; storage and retention changes are refused."""
        s = wanted.settings
        assert isinstance(s, StreamSettings)
        name = s.name
        want = _stream_config(s)
        try:
            info = await self._jetstream.stream_info(name)
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
            ("max_age", _whole_ns(have.max_age), s.max_age_ns),
            ("max_bytes", have.max_bytes, want.max_bytes),
            ("duplicate_window", _whole_ns(have.duplicate_window), s.duplicate_window_ns),
            ("discard", have.discard, want.discard),
            ("storage", have.storage, want.storage),
            ("retention", have.retention, want.retention),
        )
        details: list[str] = []
        refused: list[str] = []
        for label, old, new in compare:
            if old == new:
                continue
            line = f"{label} {_shown(old)} -> {_shown(new)}"
            if label in ("storage", "retention"):
                refused.append(
                    f"{line}: JetStream cannot change a stream's {label}; create a new stream and move the data"
                )
            else:
                details.append(line)
        return Change("nats", name, "update" if details else "unchanged", tuple(details), tuple(refused))

    async def records(self, wanted: Wanted) -> int | None:
        """Return how many messages the stream holds, None when it does not exist."""
        s = wanted.settings
        assert isinstance(s, StreamSettings)
        try:
            info = await self._jetstream.stream_info(s.name)
        except NotFoundError:
            return None
        return int(info.state.messages)

    async def apply(self, change: Change, wanted: Wanted) -> None:
        """Create or update the stream."""
        assert isinstance(wanted.settings, StreamSettings)
        config = _stream_config(wanted.settings)
        try:
            if change.action == "create":
                await self._jetstream.add_stream(config)
            elif change.action == "update":
                await self._jetstream.update_stream(config)
        except NatsError as error:
            raise BackendError(
                f"{change.action} of stream {config.name!r} failed: {error}",
                namespace=wanted.namespace,
                backend=self.name,
            ) from None


def _stream_config(s: StreamSettings) -> api.StreamConfig:
    return api.StreamConfig(
        name=s.name,
        subjects=list(s.subjects),
        retention=api.RetentionPolicy(s.retention),
        storage=api.StorageType(s.storage),
        discard=api.DiscardPolicy(s.discard),
        num_replicas=s.replicas,
        max_age=s.max_age_ns / _NS_PER_S,
        max_bytes=s.max_bytes,
        duplicate_window=s.duplicate_window_ns / _NS_PER_S,
    )


def _whole_ns(seconds: float | None) -> int:
    return round((seconds or 0) * _NS_PER_S)


def _shown(value: Any) -> str:
    return str(value.value) if hasattr(value, "value") else str(value)
