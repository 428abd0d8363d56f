"""A TimeSeries moving from an SQL backend to a stream backend (Kafka, NATS): the backfill's pages are appended
to the stream as events, and the verification compares each key's events by identity.

A stream cannot take part in the source's transactions, so the checkpoint lives on the source (the control
backend): a page is appended, then its checkpoint written. After a kill -9 the last page may be appended
again; its events keep their ids, so the stream drops the repeat (NATS within its duplicate window) or its
readers do (every Prism reader drops an event id it has seen). Encrypted series are not supported here yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from prism_runtime.errors import ConfigError
from prism_runtime.migrations.rows import Layout, layout_of
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.driver import Row, SqlDriver
from prism_runtime.sql.names import EVENT_ID_COLUMN, table_name
from prism_runtime.sql.timeseries import SqlTimeSeries
from prism_runtime.timeseries import Event, EventIdentity, TimeSeriesBackend, event_id


def message_class(spec: EntitySpec) -> type[Message]:
    """Return the message class of an entity, from a generated module imported in this process."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(spec.message_name)
    except KeyError:
        raise ConfigError(
            f"namespace {spec.namespace!r}: moving a series to a stream needs its messages; import the "
            f"generated module of {spec.message_name} (prism backfill --module PACKAGE.MODULE_prism)"
        ) from None
    found: type[Message] = message_factory.GetMessageClass(descriptor)
    return found


@dataclass
class StreamCopy:
    """The backfill's page copy into a stream target."""

    spec: EntitySpec
    source: SqlTimeSeries[Any]
    target: TimeSeriesBackend[Any]
    checkpoints: SqlDriver
    layout: Layout

    @classmethod
    def of(cls, spec: EntitySpec, source: SqlDriver, target: TimeSeriesBackend[Any]) -> StreamCopy:
        """Return the copy of `spec`'s rows on `source` into the stream series `target`."""
        if spec.protects_pii:
            raise ConfigError(
                f"migration {spec.namespace!r}: an encrypted series moves between SQL backends only"
            )
        return cls(spec, SqlTimeSeries(spec, message_class(spec), source), target, source, layout_of(spec))

    async def append(self, rows: Sequence[Row]) -> None:
        """Append stored rows to the stream as the events they are (same key, event time and event id)."""
        identity: EventIdentity[Any] = EventIdentity(self.spec)
        at_id = self.layout.names.index(EVENT_ID_COLUMN)
        events = []
        for row in rows:
            message = self.source.codec.decode(row)
            data = message.SerializeToString(deterministic=True)
            events.append(
                Event(
                    getattr(message, self.spec.key), identity.time_ns(message), str(row[at_id]), message, data
                )
            )
        await self.target.append(events)


async def compare(
    copy: StreamCopy, max_keys: int
) -> tuple[int, dict[str, list[tuple[Any, ...]]], dict[str, int]]:
    """Compare every key of the source with the stream by event id; return (events compared, keys, counts)."""
    driver = copy.source.driver
    q = driver.dialect.quote
    keys = [
        r[0]
        for r in await driver.fetch(
            f"SELECT DISTINCT {q(copy.spec.key)} FROM {q(table_name(copy.spec))}",
            (),
            namespace=copy.spec.namespace,
        )
    ]
    found: dict[str, list[tuple[Any, ...]]] = {"missing": [], "extra": [], "different": []}
    counts = dict.fromkeys(found, 0)
    compared = 0
    show = not copy.spec.holds_pii
    for key in keys:
        mine = {event_id(m) for m in [m async for m in copy.source.query(key, None, None, None)]}
        theirs = {event_id(m) for m in [m async for m in copy.target.query(key, None, None, None)]}
        compared += len(mine)
        for kind, ids in (("missing", mine - theirs), ("extra", theirs - mine)):
            counts[kind] += len(ids)
            if show:
                found[kind] += [(key, i) for i in sorted(ids)][: max(0, max_keys - len(found[kind]))]
    return compared, found if show else {}, counts
