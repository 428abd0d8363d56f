"""Partition maintenance for TimeSeries tables range-partitioned by event time (Postgres).

One partition per UTC day, named `<table>__pYYYYMMDD`, plus a DEFAULT partition so that no event is ever
refused. `maintain` creates the partitions of the coming days (moving any rows the DEFAULT partition
already holds for a day into that day's new partition), drops whole days older than the retention, and
purges expired rows from the DEFAULT partition. It is idempotent; the SQL TimeSeries backend runs it on first
use and then at most once an hour, and operators may run it from cron through `prism_runtime.maintain_partitions`.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from prism_runtime.schema import ColumnKind, EntitySpec
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.names import default_partition_name, short_name, table_name

DAYS_AHEAD = 7
_DAY = datetime.timedelta(days=1)
_BOUND = re.compile(r"FROM \('?([^')]+)'?\) TO \('?([^')]+)'?\)")


@dataclass
class PartitionReport:
    """What one maintenance pass did to one table."""

    table: str
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved_rows: int = 0
    purged_rows: int = 0


def partition_name(spec: EntitySpec, day: datetime.date, driver: SqlDriver) -> str:
    """Return the name of the partition of `day`."""
    return short_name(table_name(spec), f"p{day:%Y%m%d}", dialect=driver.dialect)


def _bound(spec: EntitySpec, moment: datetime.datetime) -> str:
    """Return a partition bound literal (SQL text) in the event-time column's own unit."""
    assert spec.event_time is not None
    if spec.column(spec.event_time).kind is ColumnKind.TIMESTAMP:
        return moment.strftime("'%Y-%m-%d %H:%M:%S+00'")
    return str(int(moment.timestamp() * 1000))  # epoch milliseconds


def _value(spec: EntitySpec, moment: datetime.datetime) -> Any:
    """Return `moment` as a bind value comparable with the event-time column."""
    assert spec.event_time is not None
    if spec.column(spec.event_time).kind is ColumnKind.TIMESTAMP:
        return moment
    return int(moment.timestamp() * 1000)


def _parse_bound(spec: EntitySpec, text: str) -> datetime.datetime:
    assert spec.event_time is not None
    if spec.column(spec.event_time).kind is ColumnKind.TIMESTAMP:
        return datetime.datetime.fromisoformat(text.replace(" ", "T")).astimezone(datetime.UTC)
    return datetime.datetime.fromtimestamp(int(text) / 1000, datetime.UTC)


async def maintain(
    driver: SqlDriver, spec: EntitySpec, *, now: datetime.datetime | None = None, days_ahead: int = DAYS_AHEAD
) -> PartitionReport:
    """Create the coming days' partitions and drop the expired ones of one TimeSeries table."""
    assert spec.event_time is not None
    report = PartitionReport(table_name(spec))
    if not driver.dialect.partitions_series:
        return report
    ns = spec.namespace
    now = now or datetime.datetime.now(datetime.UTC)
    today = datetime.datetime(now.year, now.month, now.day, tzinfo=datetime.UTC)
    q = driver.dialect.quote
    table, time = q(table_name(spec)), q(spec.event_time)
    default = q(default_partition_name(spec, driver.dialect))
    existing = await _partitions(driver, spec)

    for offset in range(-1, days_ahead + 1):
        low = today + offset * _DAY
        high = low + _DAY
        name = partition_name(spec, low.date(), driver)
        if name in existing or any(lo < high and low < hi for lo, hi in existing.values()):
            continue
        in_default = [_value(spec, low), _value(spec, high)]
        where = f"{time} >= {driver.dialect.placeholder(1)} AND {time} < {driver.dialect.placeholder(2)}"
        waiting = await driver.fetch(
            f"SELECT count(*) FROM {default} WHERE {where}", in_default, namespace=ns
        )
        since, until = _bound(spec, low), _bound(spec, high)
        create = f"CREATE TABLE IF NOT EXISTS {q(name)} PARTITION OF {table} FOR VALUES FROM ({since}) TO ({until})"
        if not waiting[0][0]:
            await driver.execute_script([create], namespace=ns)
        else:
            # Rows for this day sit in DEFAULT: Postgres refuses the new partition until they move out of it.
            moved = f"{time} >= {since} AND {time} < {until}"
            await driver.execute_script(
                [
                    f"ALTER TABLE {table} DETACH PARTITION {default}",
                    create,
                    f"INSERT INTO {q(name)} SELECT * FROM {default} WHERE {moved}",
                    f"DELETE FROM {default} WHERE {moved}",
                    f"ALTER TABLE {table} ATTACH PARTITION {default} DEFAULT",
                ],
                namespace=ns,
            )
            report.moved_rows += int(waiting[0][0])
        report.created.append(name)

    if spec.retention_days > 0:
        cutoff = today - spec.retention_days * _DAY
        for name, (_, high) in sorted(existing.items()):
            if high <= cutoff:
                await driver.execute_script([f"DROP TABLE IF EXISTS {q(name)}"], namespace=ns)
                report.dropped.append(name)
        report.purged_rows = await driver.execute(
            f"DELETE FROM {default} WHERE {time} < {driver.dialect.placeholder(1)}",
            [_value(spec, cutoff)],
            namespace=ns,
        )
    return report


async def _partitions(
    driver: SqlDriver, spec: EntitySpec
) -> dict[str, tuple[datetime.datetime, datetime.datetime]]:
    """Return the day partitions of a table with their [low, high) bounds (the DEFAULT partition excluded)."""
    rows = await driver.fetch(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = $1 AND p.relnamespace = current_schema()::regnamespace",
        [table_name(spec)],
        namespace=spec.namespace,
    )
    found = {}
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match:
            found[name] = (_parse_bound(spec, match.group(1)), _parse_bound(spec, match.group(2)))
    return found
