"""The TimeSeries contract, through freshly generated Series classes, unchanged on every backend that serves it."""

from __future__ import annotations

import asyncio
import datetime
import importlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from backends import BACKENDS as SQL_BACKENDS
from backends import fresh_database
from google.protobuf import timestamp_pb2
from styles import STYLES, Twins, styled

import prism_runtime
from prism_runtime.timeseries import Event, EventIdentity, digest, event_id

BACKENDS = ["sqlite", "postgres", "kafka", "nats"]
UTC = datetime.UTC
T0 = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path
) -> AsyncIterator[prism_runtime.Database]:
    kind = request.param
    if kind in SQL_BACKENDS:
        # A fresh SQLite file or Postgres schema with the generated SQL provisioned, as `prism provision` does.
        async with fresh_database(request, tmp_path, generated) as handle:
            yield handle
        return
    if kind == "kafka":
        # Tansu refuses idempotent producers (docs/backends-notes.md); real Kafka keeps the default (on).
        url = f"kafka://{request.getfixturevalue('kafka_bootstrap')}?idempotence=false"
    else:
        url = request.getfixturevalue("nats_url")
    async with prism_runtime.connect(url) as handle:
        yield handle


@pytest.fixture(params=STYLES)
def events(request: pytest.FixtureRequest, generated: Path) -> Iterator[tuple[ModuleType, Any]]:
    """The generated module in each client style (tests/styles.py): one suite proves async and blocking."""
    twins = Twins()
    yield (
        importlib.import_module("acme.events.v1.events_pb2"),
        styled(importlib.import_module("acme.events.v1.events_prism"), request.param, twins),
    )
    twins.close()


def key() -> str:
    """Return a key no other test uses: stream backends keep data for the whole session."""
    return f"user-{uuid.uuid4().hex[:12]}"


def click(pb2: Any, user: str, seconds: float, page: str = "/") -> Any:
    event = pb2.ClickEvent(user_id=user, page=page)
    event.at.FromNanoseconds(int((T0.timestamp() + seconds) * 1e9))
    return event


async def collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


async def test_query_returns_a_keys_events_in_event_time_order(
    db: prism_runtime.Database, events: Any
) -> None:
    pb2, prism = events
    series = prism.ClickEventSeries(db)
    user, other = key(), key()
    await series.append_many([click(pb2, user, s, f"/p{s}") for s in (30, 10, 20, 0, 40)])
    await series.append(click(pb2, other, 15))
    assert [e.page for e in await collect(series.query(user))] == ["/p0", "/p10", "/p20", "/p30", "/p40"]
    assert [e.user_id for e in await collect(series.query(other))] == [other]
    assert await collect(series.query(key())) == []


async def test_query_bounds_are_start_inclusive_end_exclusive_with_limit(
    db: prism_runtime.Database, events: Any
) -> None:
    pb2, prism = events
    series = prism.ClickEventSeries(db)
    user = key()
    await series.append_many([click(pb2, user, s, f"/p{s}") for s in range(0, 100, 10)])
    window = series.query(user, T0 + datetime.timedelta(seconds=20), T0 + datetime.timedelta(seconds=50))
    assert [e.page for e in await collect(window)] == ["/p20", "/p30", "/p40"]
    first_two = series.query(user, start=T0 + datetime.timedelta(seconds=55), limit=2)
    assert [e.page for e in await collect(first_two)] == ["/p60", "/p70"]
    millis = int(T0.timestamp() * 1000)
    assert [e.page for e in await collect(series.query(user, end=millis + 10_000))] == ["/p0"]
    assert await collect(series.query(user, limit=0)) == []
    with pytest.raises(ValueError, match="limit"):
        series.query(user, limit=-1)


async def test_a_retried_append_is_stored_once(db: prism_runtime.Database, events: Any) -> None:
    pb2, prism = events
    series = prism.ClickEventSeries(db)
    user = key()
    event = click(pb2, user, 5, "/once")
    await series.append(event)
    await series.append(event)
    await series.append_many([event, click(pb2, user, 5, "/twin"), event])
    assert sorted(e.page for e in await collect(series.query(user))) == ["/once", "/twin"]


async def test_event_time_keeps_microseconds_and_events_round_trip(
    db: prism_runtime.Database, events: Any
) -> None:
    pb2, prism = events
    series = prism.ClickEventSeries(db)
    user = key()
    event = pb2.ClickEvent(user_id=user, page="/ns", referrer="ключ 🔑", dwell_ms=-(2**62))
    # Microseconds: the precision every backend keeps (Postgres TIMESTAMPTZ truncates nanoseconds).
    event.at.FromNanoseconds(1_714_564_800_123_456_000)
    await series.append(event)
    assert await collect(series.query(user)) == [event]
    end = datetime.datetime(2024, 5, 1, 12, 0, 0, 123457, tzinfo=UTC)
    assert await collect(series.query(user, end=end)) == [event]


async def test_many_events_across_pages(db: prism_runtime.Database, events: Any) -> None:
    pb2, prism = events
    series = prism.ClickEventSeries(db)
    user = key()
    await series.append_many([click(pb2, user, s / 1000, f"/{s}") for s in range(2500)])
    got = await collect(series.query(user))
    assert [e.page for e in got] == [f"/{s}" for s in range(2500)]
    assert len(await collect(series.query(user, limit=1001))) == 1001


async def test_millisecond_event_time_series(db: prism_runtime.Database, events: Any) -> None:
    pb2, prism = events
    series = prism.StockLevelSeries(db)
    warehouse = key()
    base = 1_714_564_800_000
    await series.append_many(
        pb2.StockLevel(warehouse_id=warehouse, at_ms=base + d, sku="s", quantity=d) for d in (3, 1, 2)
    )
    assert [s.quantity for s in await collect(series.query(warehouse, base + 2))] == [2, 3]
    since = datetime.datetime.fromtimestamp((base + 1) / 1000, UTC) + datetime.timedelta(microseconds=1)
    assert [s.quantity for s in await collect(series.query(warehouse, since))] == [2, 3]


async def test_tail_follows_new_events_of_a_key(db: prism_runtime.Database, events: Any) -> None:
    pb2, prism = events
    series = prism.ClickEventSeries(db)
    user, other = key(), key()
    await series.append(click(pb2, user, 1, "/before"))
    async with series.tail(user) as tail:
        await series.append(click(pb2, other, 2, "/other"))
        await series.append_many([click(pb2, user, 3, "/a"), click(pb2, user, 2, "/b")])
        await series.append(click(pb2, user, 3, "/a"))  # a retry: not delivered twice
        await series.append(click(pb2, user, 4, "/c"))
        got = [await asyncio.wait_for(anext(tail), 20) for _ in range(3)]
    assert [e.page for e in got] == ["/a", "/b", "/c"]


async def test_tail_of_every_key_from_an_event_time(db: prism_runtime.Database, events: Any) -> None:
    pb2, prism = events
    series = prism.ClickEventSeries(db)
    user, other = key(), key()
    # Now: later than every event of earlier tests and earlier runs against the same server.
    start = datetime.datetime.now(UTC)

    def at(seconds: int, page: str, who: str) -> Any:
        event = pb2.ClickEvent(user_id=who, page=page)
        event.at.FromDatetime(start + datetime.timedelta(seconds=seconds))
        return event

    await series.append_many([at(-1, "/old", user), at(1, "/new", user)])
    seen: list[str] = []
    async with series.tail(from_=start) as tail:
        await series.append(at(2, "/later", other))
        async for event in tail:
            # Every key's events: those of a run moments before (the other client style's) may follow too.
            if event.user_id in (user, other):
                seen.append(event.page)
            if len(seen) == 2:
                break
    # Order is promised within a key only: on Kafka two keys may sit on different partitions.
    assert sorted(seen) == ["/later", "/new"]


async def test_use_before_open_is_a_typed_error(events: Any, tmp_path: Path) -> None:
    _, prism = events
    with pytest.raises(prism_runtime.NotOpen, match="acme_events_v1_click_event"):
        prism.ClickEventSeries(prism_runtime.connect(f"sqlite:///{tmp_path / 'x.db'}"))


async def test_an_event_without_its_event_time_is_refused(db: prism_runtime.Database, events: Any) -> None:
    pb2, prism = events
    with pytest.raises(
        ValueError, match="namespace 'acme_events_v1_click_event': an event needs its event time; set at"
    ):
        await prism.ClickEventSeries(db).append_many([pb2.ClickEvent(user_id="u")])


async def test_a_batch_with_one_event_without_its_event_time_writes_nothing(
    db: prism_runtime.Database, events: Any
) -> None:
    pb2, prism = events
    series = prism.ClickEventSeries(db)
    user = key()
    with pytest.raises(ValueError, match="an event needs its event time"):
        await series.append_many([click(pb2, user, 1), pb2.ClickEvent(user_id=user), click(pb2, user, 2)])
    assert await collect(series.query(user)) == []


async def test_a_batch_gets_the_identities_one_event_at_a_time_gets(generated: Path, tmp_path: Path) -> None:
    pb2 = importlib.import_module("acme.events.v1.events_pb2")
    prism = importlib.import_module("acme.events.v1.events_prism")
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'ids.db'}") as db:
        clicks, stock = prism.ClickEventSeries(db).spec, prism.StockLevelSeries(db).spec
    messages = [click(pb2, "u1", 1.5), click(pb2, "u2", -3), click(pb2, "u1", 1.5, "/other")]
    levels = [pb2.StockLevel(warehouse_id="w", at_ms=1_714_564_800_007, quantity=q) for q in (1, 2)]
    for spec, batch, time_ns in (
        (clicks, messages, lambda m: m.at.ToNanoseconds()),
        (stock, levels, lambda m: m.at_ms * 1_000_000),
    ):
        identity: EventIdentity[Any] = EventIdentity(spec)
        for message, e in zip(batch, identity.events(batch), strict=True):
            one = identity.event(message)
            data = message.SerializeToString(deterministic=True)
            expected = (getattr(message, spec.key), time_ns(message), event_id(message), message, data)
            assert (e.key, e.time_ns, e.event_id, e.message, e.serialized) == expected
            assert (one.key, one.time_ns, one.event_id, one.message, one.serialized) == expected
    keyed: EventIdentity[Any] = EventIdentity(clicks)
    keyed.secret = b"k" * 32
    assert keyed.events(messages[:1])[0].event_id == digest(
        messages[0].SerializeToString(deterministic=True), keyed.secret
    )
    assert keyed.events(messages[:1])[0].event_id != event_id(messages[0])


def test_an_events_repr_shows_no_key_message_or_encoding() -> None:
    secret = "jane.roe@example.com"
    message = timestamp_pb2.Timestamp(seconds=7)  # any message: the repr must not show it
    e = Event(secret, 7_000_000_000, "a1b2c3", message, secret.encode())
    shown = repr(e)
    assert shown == "Event(time_ns=7000000000, event_id='a1b2c3')"
    assert secret not in shown and "seconds" not in shown and secret not in str([e])


async def test_a_wrong_time_bound_type_is_refused(db: prism_runtime.Database, events: Any) -> None:
    _, prism = events
    with pytest.raises(TypeError, match="datetime or epoch milliseconds"):
        prism.ClickEventSeries(db).query("u", start="2024-01-01")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["kafka", "nats"])
async def test_a_down_stream_backend_is_a_typed_error_naming_the_namespace(scheme: str, events: Any) -> None:
    pb2, prism = events
    async with prism_runtime.connect(f"{scheme}://127.0.0.1:{free_port()}") as db:
        series = prism.ClickEventSeries(db)
        with pytest.raises(prism_runtime.BackendUnavailable, match="namespace 'acme_events_v1_click_event'"):
            await asyncio.wait_for(series.append(click(pb2, "u", 1)), 30)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "kafka://127.0.0.1:1?idempotence=maybe",
            "idempotence='maybe' in 'kafka://127.0.0.1:1?idempotence=maybe'; allowed: true, false",
        ),
        (
            "kafka://127.0.0.1:1?acks=1",
            "unknown Kafka URL option 'acks' in 'kafka://127.0.0.1:1?acks=1'; allowed: idempotence",
        ),
        ("nats://", "NATS URL 'nats://' names no server; use nats://host:port"),
    ],
)
async def test_a_wrong_stream_url_is_a_config_error(url: str, expected: str) -> None:
    with pytest.raises(prism_runtime.ConfigError) as error:
        await prism_runtime.connect(url).open()
    assert str(error.value) == expected
