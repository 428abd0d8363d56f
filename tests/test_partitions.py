"""Postgres TimeSeries tables are range-partitioned by event time: day partitions ahead, expired days dropped."""

from __future__ import annotations

import datetime
import importlib
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from backends import drop_schema, new_schema

import prism_runtime
from prism_runtime.sql import partitions
from protoc_gen_prism.sql.provision import provision

UTC = datetime.UTC
NOW = datetime.datetime(2031, 3, 10, 15, 30, tzinfo=UTC)  # far from today: the backend maintains today itself


@pytest.fixture
async def pg(postgres_dsn: str, generated: Path) -> Any:
    url = await new_schema(postgres_dsn)
    async with prism_runtime.connect(url) as db:
        await provision(db, generated, echo=lambda line: None)
        yield db, url
    await drop_schema(url)


@pytest.fixture
def events(generated: Path) -> tuple[Any, Any]:
    return importlib.import_module("acme.events.v1.events_pb2"), importlib.import_module(
        "acme.events.v1.events_prism"
    )


async def where_rows_are(url: str, table: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f'SELECT tableoid::regclass::text AS part, count(*) FROM "{table}" GROUP BY 1'
        )
    finally:
        await conn.close()
    return {r[0].strip('"').rsplit(".", 1)[-1].strip('"'): r[1] for r in rows}


async def test_maintenance_creates_days_ahead_and_moves_waiting_rows(pg: Any, events: Any) -> None:
    db, url = pg
    pb2, prism = events
    spec = prism.ClickEventSeries(db).spec
    series = prism.ClickEventSeries(db)
    # Written before any day partition exists for it: the DEFAULT partition keeps it, nothing is refused.
    later = pb2.ClickEvent(user_id="u1", page="/later")
    later.at.FromDatetime(NOW + datetime.timedelta(days=20))
    await series.append(later)
    report = await partitions.maintain(db.backend, spec, now=NOW, days_ahead=3)
    assert report.created == [
        f"acme_events_v1_click_event__p{d:%Y%m%d}"
        for d in (NOW.date() + datetime.timedelta(days=k) for k in range(-1, 4))
    ]
    today = pb2.ClickEvent(user_id="u1", page="/now")
    today.at.FromDatetime(NOW)
    await series.append(today)
    placement = await where_rows_are(url, spec.namespace)
    assert placement == {"acme_events_v1_click_event__p20310310": 1, "acme_events_v1_click_event__default": 1}
    # Twenty days on, maintenance creates that day's partition and moves the waiting row into it.
    moved = await partitions.maintain(db.backend, spec, now=NOW + datetime.timedelta(days=20), days_ahead=1)
    assert moved.moved_rows == 1
    assert (await where_rows_are(url, spec.namespace))["acme_events_v1_click_event__p20310330"] == 1
    again = await partitions.maintain(db.backend, spec, now=NOW + datetime.timedelta(days=20), days_ahead=1)
    assert again.created == [] and again.moved_rows == 0
    got = [
        e.page
        async for e in series.query("u1", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=30))
    ]
    assert got == ["/now", "/later"]


async def test_expired_days_are_dropped_by_retention(pg: Any, events: Any) -> None:
    db, _ = pg
    pb2, prism = events
    series = prism.StockLevelSeries(db)  # retention_days = 7, event time in epoch milliseconds
    spec = series.spec
    await partitions.maintain(db.backend, spec, now=NOW, days_ahead=1)
    old = pb2.StockLevel(
        warehouse_id="w1",
        sku="a",
        quantity=1,
        at_ms=int((NOW - datetime.timedelta(hours=20)).timestamp() * 1000),
    )
    await series.append(old)
    report = await partitions.maintain(db.backend, spec, now=NOW + datetime.timedelta(days=9), days_ahead=1)
    assert "acme_events_v1_stock_level__p20310309" in report.dropped
    assert [e async for e in series.query("w1", 0, None)] == []


async def test_sqlite_series_are_not_partitioned(tmp_path: Path, generated: Path, events: Any) -> None:
    _, prism = events
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'ts.db'}") as db:
        report = await partitions.maintain(db.backend, prism.ClickEventSeries(db).spec, now=NOW)
    assert report.created == [] and report.dropped == []
