"""The TimeSeries abstraction: append events, query a key's events by event time, tail new events.

Generated `<Message>Series` classes subclass `TimeSeries` with their message and key types; the methods
here are the whole public API, the same on every backend. An event's identity is (key, event time,
event id), where the event id is a digest of the event's deterministic encoding: appending the same
event twice (a retry) stores it once, and readers drop any duplicate a backend could not refuse.
"""

from __future__ import annotations

import datetime
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf.message import Message

from prism_runtime import telemetry
from prism_runtime.drive import SetupLock
from prism_runtime.inputs import key_check, message_checks
from prism_runtime.schema import ColumnKind, EntitySpec

M = TypeVar("M", bound=Message)
M_co = TypeVar("M_co", bound=Message, covariant=True)
K = TypeVar("K")

TimeBound = datetime.datetime | int
"""A point in event time: an aware datetime (naive means UTC), or epoch milliseconds."""

_NS_PER_MS = 1_000_000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
# Readers remember this many recent event ids to drop duplicates a backend delivered twice.
_SEEN_IDS = 100_000
_DIGEST_SIZE = 12  # bytes of an event id's digest (24 hex digits)


class Event(Generic[M]):
    """One event as backends store it: its identity and the message. Read-only by convention.

    A slots class with a written __init__, not a frozen dataclass: a frozen one sets each field through
    object.__setattr__, which made building it a third of append_many's own cost per event. Nothing
    hashes or compares events (readers key on `event_id`), so they need neither __eq__ nor __hash__.
    """

    __slots__ = ("event_id", "key", "message", "serialized", "time_ns")

    def __init__(self, key: Any, time_ns: int, event_id: str, message: M, serialized: bytes = b"") -> None:
        self.key = key
        self.time_ns = time_ns
        self.event_id = event_id
        self.message = message
        self.serialized = serialized
        """The message's deterministic encoding, computed once for the id; payload codecs may reuse it."""

    def __repr__(self) -> str:
        # Keys and messages (and so their encoding) may hold personal data: never in a repr.
        return f"Event(time_ns={self.time_ns!r}, event_id={self.event_id!r})"


class Follower(Protocol[M_co]):
    """A backend's cursor that follows new events (what `tail` reads)."""

    async def start(self) -> None:
        """Fix the start position: events appended after this call are never missed."""
        ...

    async def next_batch(self) -> Sequence[M_co]:
        """Return the next events in arrival order; may return none after a short wait."""
        ...

    async def close(self) -> None:
        """Release the cursor."""
        ...


class TimeSeriesBackend(Protocol[M]):
    """What a backend implements to serve the TimeSeries abstraction."""

    async def append(self, events: Sequence[Event[M]]) -> None:
        """Store events durably (acknowledged), ignoring any whose identity is already stored."""
        ...

    def query(
        self, key: Any, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> AsyncIterator[M]:
        """Yield a key's events with start <= event time < end, by (event time, event id), at most limit."""
        ...

    def follow(self, key: Any | None, from_ns: int | None) -> Follower[M]:
        """Return a follower from `from_ns` (a lower bound: earlier events may come and are dropped) or from now."""
        ...


class EventIdentity(Generic[M]):
    """Computes (key, event time in ns, event id) of an entity's messages."""

    def __init__(self, spec: EntitySpec) -> None:
        assert spec.event_time is not None, "the model builder guarantees an event time on TimeSeries"
        self.namespace = spec.namespace
        self.key_field = spec.key
        self.time_field = spec.event_time
        self.time_is_timestamp = spec.column(spec.event_time).kind is ColumnKind.TIMESTAMP
        # Set for entities with encrypted fields: the id is then a keyed digest, which says nothing
        # about the encrypted values (an unkeyed one could be checked against guesses of them).
        self.secret = b""

    def time_ns(self, message: M) -> int:
        """Return the event time of a message in epoch nanoseconds."""
        value = getattr(message, self.time_field)
        if self.time_is_timestamp:  # Timestamp.ToNanoseconds's sum, without its call (a third of the time)
            nanoseconds: int = value.seconds * 1_000_000_000 + value.nanos
            return nanoseconds
        return int(value) * _NS_PER_MS

    def event(self, message: M) -> Event[M]:
        """Return the event of a message, with its identity; an unset Timestamp event time is refused."""
        return self.events((message,))[0]

    def events(self, messages: Iterable[M]) -> list[Event[M]]:
        """Return the events of messages, with their identities; an unset Timestamp event time is refused.

        One loop with its lookups hoisted, rather than a call of `event` per message: append_many runs it
        for every event, and a call and its attribute lookups cost as much as the digest itself.
        """
        key_field, time_field, secret, time_ns = self.key_field, self.time_field, self.secret, self.time_ns
        needs_time = self.time_is_timestamp  # an unset Timestamp reads as the epoch: refused, not stored
        out: list[Event[M]] = []
        add = out.append
        for m in messages:
            if needs_time and not m.HasField(time_field):
                raise ValueError(
                    f"namespace {self.namespace!r}: an event needs its event time; set {time_field}"
                )
            data = m.SerializeToString(deterministic=True)
            add(Event(getattr(m, key_field), time_ns(m), digest(data, secret), m, data))
        return out


def digest(serialized: bytes, secret: bytes = b"") -> str:
    """Return the event id of a deterministic encoding (keyed by `secret` when one is given)."""
    return hashlib.blake2b(serialized, digest_size=_DIGEST_SIZE, key=secret).hexdigest()


def event_id(message: Message) -> str:
    """Return the id of an event: a digest of its deterministic encoding (the same event, the same id)."""
    return digest(message.SerializeToString(deterministic=True))


def to_ns(bound: TimeBound) -> int:
    """Return a time bound in epoch nanoseconds."""
    if isinstance(bound, datetime.datetime):
        aware = bound if bound.tzinfo is not None else bound.replace(tzinfo=datetime.UTC)
        delta = aware - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(bound, int) and not isinstance(bound, bool):
        return bound * _NS_PER_MS
    raise TypeError(f"a time bound is a datetime or epoch milliseconds (int), not {type(bound).__name__}")


def window(
    events: Iterable[Event[M]], start_ns: int | None, end_ns: int | None, limit: int | None
) -> list[M]:
    """Return the events in [start, end), without duplicates, by (event time, event id), at most limit.

    Shared by backends that cannot sort by event time themselves (Kafka, NATS): they read a superset.
    """
    unique: dict[str, Event[M]] = {}
    for e in events:
        if (start_ns is None or e.time_ns >= start_ns) and (end_ns is None or e.time_ns < end_ns):
            unique.setdefault(e.event_id, e)
    ordered = sorted(unique.values(), key=lambda e: (e.time_ns, e.event_id))
    return [e.message for e in (ordered if limit is None else ordered[:limit])]


class Tail(Generic[M]):
    """Follows new events until cancelled; `async with` fixes the start before you append."""

    def __init__(self, follower: Follower[M], identity: EventIdentity[M], from_ns: int | None) -> None:
        self._follower = follower
        self._identity = identity
        self._from_ns = from_ns
        self._buffer: list[M] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._started = False
        self._lock = SetupLock()

    async def start(self) -> Tail[M]:
        """Fix the start position; return self."""
        if not self._started:
            await self._follower.start()
            self._started = True
        return self

    async def close(self) -> None:
        """Stop following."""
        await self._follower.close()

    async def __aenter__(self) -> Tail[M]:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> Tail[M]:
        return self

    async def __anext__(self) -> M:
        async with self._lock:
            await self.start()
            while not self._buffer:
                self._buffer = [m for m in await self._follower.next_batch() if self._keep(m)]
                self._buffer.reverse()
            return self._buffer.pop()

    def _keep(self, message: M) -> bool:
        if self._from_ns is not None and self._identity.time_ns(message) < self._from_ns:
            return False
        key = event_id(message)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)
        return True


class TimeSeriesSource(telemetry.Traced, Protocol):
    """What a series calls on the Database it is made with: the TimeSeries backend serving its entity, and
    (telemetry.Traced) the backend it lives on, whose vault keys the event ids of a series with encrypted
    fields and which telemetry names in its spans.

    Stated here, since the Database is built over this abstraction (it returns its backends)."""

    def timeseries(self, spec: EntitySpec, message: type[M]) -> TimeSeriesBackend[M]:
        """Return the TimeSeries backend serving `spec` (the routing layer while its namespace migrates)."""
        ...


class TimeSeries(Generic[M, K]):
    """A series of events per key, ordered by event time."""

    def __init__(self, db: TimeSeriesSource, spec: EntitySpec, message: type[M]) -> None:
        self.spec = spec
        self.message_type = message
        self._identity: EventIdentity[M] = EventIdentity(spec)
        self._backend: TimeSeriesBackend[M] = telemetry.timeseries(db.timeseries(spec, message), db, spec)
        self._db = db
        self._keyed = any(c.encrypted for c in spec.columns)
        self._admit, self._admit_all = message_checks(spec, message)
        self._key = key_check(spec.namespace, spec.column(spec.key))

    @property
    def namespace(self) -> str:
        """Return the namespace this series reads and writes."""
        return self.spec.namespace

    async def _identify(self) -> EventIdentity[M]:
        if self._keyed and not self._identity.secret:
            from prism_runtime.pii.vault import event_id_secret

            self._identity.secret = await event_id_secret(self._db, self.spec)
        return self._identity

    async def append(self, event: M) -> None:
        """Append one event; returns once the backend acknowledged it. A retry stores it once."""
        self._admit(event)
        await self._backend.append(((await self._identify()).event(event),))

    async def append_many(self, events: Iterable[M]) -> None:
        """Append events, all acknowledged when this returns."""
        checked = self._admit_all(events)
        identity = await self._identify()
        batch = identity.events(checked)
        if batch:
            await self._backend.append(batch)

    def query(
        self,
        key: K,
        start: TimeBound | None = None,
        end: TimeBound | None = None,
        *,
        limit: int | None = None,
    ) -> AsyncIterator[M]:
        """Iterate over `key`'s events with start <= event time < end, in event-time order."""
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        start_ns = None if start is None else to_ns(start)
        end_ns = None if end is None else to_ns(end)
        return self._backend.query(self._key(key), start_ns, end_ns, limit)

    def tail(self, key: K | None = None, *, from_: TimeBound | None = None) -> Tail[M]:
        """Follow events of `key` (or every key) as they arrive: from event time `from_`, or new ones only.

        Use `async with series.tail() as events:` to fix the start before appending, then `async for`.
        """
        from_ns = None if from_ is None else to_ns(from_)
        checked = None if key is None else self._key(key)
        return Tail(self._backend.follow(checked, from_ns), self._identity, from_ns)
