"""The TimeSeries contract over any SQL driver: a table per namespace, deduped inserts, keyset reads.

The table (protoc_gen_prism.sql.expressions.create_series_table) holds the entity's columns plus `prism_event_id`
(the event id; unique with key and event time, so a retried append inserts nothing) and `prism_seq`
(insertion order, which `tail` follows).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from prism_runtime.drive import SetupLock, pause
from prism_runtime.pii.sealer import ProtectedRows
from prism_runtime.pii.vault import vault_for
from prism_runtime.schema import ColumnKind, EntitySpec
from prism_runtime.sql import partitions
from prism_runtime.sql.codec import RowCodec
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.driver import After, Row, SqlDriver
from prism_runtime.sql.names import EVENT_ID_COLUMN, SEQUENCE_COLUMN, table_name
from prism_runtime.timeseries import Event

M = TypeVar("M", bound=Message)

PAGE_SIZE = 1000
# A long-running writer creates the coming days' partitions and drops expired ones about hourly.
MAINTAIN_EVERY_SECONDS = 3600.0
POLL_SECONDS = 0.05


class _Statements:
    """The DML of one TimeSeries table, rendered once."""

    def __init__(self, spec: EntitySpec, dialect: SqlDialect) -> None:
        assert spec.event_time is not None
        q = dialect.quote
        self.dialect = dialect
        names = [c.name for c in spec.columns]
        self.columns = ", ".join(q(n) for n in names)
        self.table = q(table_name(spec))
        self.key, self.time, self.event_id, self.seq = (
            q(spec.key),
            q(spec.event_time),
            q(EVENT_ID_COLUMN),
            q(SEQUENCE_COLUMN),
        )
        marks = ", ".join(dialect.placeholder(i + 1) for i in range(len(names) + 1))
        self.insert = (
            f"INSERT INTO {self.table} ({self.columns}, {self.event_id}) VALUES ({marks}) "
            f"ON CONFLICT ({self.key}, {self.time}, {self.event_id}) DO NOTHING"
        )
        self.last_seq = f"SELECT MAX({self.seq}) FROM {self.table}"

    def query(self, *, start: bool, end: bool, after: bool) -> str:
        """Return one page of a key's events by (event time, event id)."""
        p = self.dialect.placeholder
        conditions = [f"{self.key} = {p(1)}"]
        n = 1
        if start:
            n += 1
            conditions.append(f"{self.time} >= {p(n)}")
        if end:
            n += 1
            conditions.append(f"{self.time} < {p(n)}")
        if after:
            conditions.append(
                f"({self.time} > {p(n + 1)} OR ({self.time} = {p(n + 2)} AND {self.event_id} > {p(n + 3)}))"
            )
            n += 3
        return (
            f"SELECT {self.columns}, {self.event_id} FROM {self.table} WHERE {' AND '.join(conditions)} "
            f"ORDER BY {self.time}, {self.event_id} LIMIT {p(n + 1)}"
        )

    def follow(self, *, key: bool, since: bool) -> str:
        """Return the rows inserted after a sequence number, in insertion order."""
        p = self.dialect.placeholder
        conditions = [f"{self.seq} > {p(1)}"]
        n = 1
        if key:
            n += 1
            conditions.append(f"{self.key} = {p(n)}")
        if since:
            n += 1
            conditions.append(f"{self.time} >= {p(n)}")
        return (
            f"SELECT {self.columns}, {self.event_id}, {self.seq} FROM {self.table} WHERE {' AND '.join(conditions)} "
            f"ORDER BY {self.seq} LIMIT {p(n + 1)}"
        )


class SqlTimeSeries(Generic[M]):
    """One entity's TimeSeries operations on one SQL driver."""

    def __init__(self, spec: EntitySpec, message: type[M], driver: SqlDriver) -> None:
        assert spec.event_time is not None
        self.spec = spec
        self.driver = driver
        self.codec = RowCodec(spec, message, driver.dialect, driver.name)
        self.sql = _Statements(spec, driver.dialect)
        dialect = driver.dialect
        self._encode_key = dialect.encoder(spec.column(spec.key))
        time_kind = spec.column(spec.event_time).kind
        self._encode_time = dialect.encoder(spec.column(spec.event_time))
        self._time_is_timestamp = time_kind is ColumnKind.TIMESTAMP
        self._time_index = self.codec.column_index(spec.event_time)
        self._width = len(spec.columns)
        self._ready = False
        self._ready_lock = SetupLock()
        self._maintain_due = 0.0 if driver.dialect.partitions_series else math.inf
        self._ns = spec.namespace
        # Encryption and audit of PII columns: the same row sealer as the KeyValue store.
        self.pii = (
            ProtectedRows(
                spec, message, vault_for(driver), [*(c.name for c in spec.columns), EVENT_ID_COLUMN]
            )
            if spec.protects_pii
            else None
        )

    async def decode_rows(self, rows: Sequence[Row]) -> list[M]:
        """Return the messages of fetched rows, decrypted; events of forgotten subjects are skipped."""
        if self.pii is not None:
            rows = await self.pii.open(rows, skip_forgotten=True)
        return [self.codec.decode(row) for row in rows]

    async def prepare(self) -> None:
        """Create the table (embedded backends) or check it, once; keep its day partitions current."""
        async with self._ready_lock:
            if not self._ready:
                await self.driver.prepare_table(self.spec, self.spec.ddl_for(self.driver.dialect.name))
                if self.pii is None and self.spec.holds_pii:
                    # Clear pii fields: no sealer registers the entity, yet `forget` must find its rows.
                    await vault_for(self.driver).catalog.register(self.spec)
                self._ready = True
            if self.driver.dialect.partitions_series and time.monotonic() >= self._maintain_due:
                await partitions.maintain(self.driver, self.spec)
                self._maintain_due = time.monotonic() + MAINTAIN_EVERY_SECONDS

    def time_bound(self, ns: int) -> Any:
        """Return an event-time bound as the event-time column stores it."""
        if self._time_is_timestamp:
            return self._encode_time(divmod(ns, 1_000_000_000))
        # Whole milliseconds: t_ms * 1e6 >= ns exactly when t_ms >= ceil(ns / 1e6); the same for <.
        return self._encode_time(math.ceil(ns / 1_000_000))

    async def append(self, events: Sequence[Event[M]]) -> None:
        """Insert events; one already stored (same key, time and id) is skipped."""
        if not self._ready or time.monotonic() >= self._maintain_due:
            await self.prepare()
        encode = self.codec.encode
        rows: Sequence[Row] = [(*encode(e.message), e.event_id) for e in events]
        if self.pii is None:
            await self._insert(rows)
            return
        sealed, audit = await self.pii.seal(rows)
        await self.pii.write_audited(audit, lambda after: self._insert(sealed, after))

    async def _insert(self, rows: Sequence[Row], after: Sequence[After] = ()) -> None:
        if len(rows) == 1 and not after:
            await self.driver.execute(self.sql.insert, rows[0], namespace=self._ns)
        else:
            await self.driver.execute_many(self.sql.insert, rows, namespace=self._ns, after=after)

    async def query(
        self, key: Any, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> AsyncIterator[M]:
        """Yield a key's events in [start, end) by (event time, event id), a page at a time."""
        if not self._ready:
            await self.prepare()
        bounds = [self.time_bound(ns) for ns in (start_ns, end_ns) if ns is not None]
        base = [self._encode_key(key), *bounds]
        cursor: tuple[Any, Any] | None = None
        remaining = limit
        while remaining is None or remaining > 0:
            want = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            sql = self.sql.query(start=start_ns is not None, end=end_ns is not None, after=cursor is not None)
            args = [*base, *((cursor[0], cursor[0], cursor[1]) if cursor else ()), want]
            rows = await self.driver.fetch(sql, args, namespace=self._ns)
            for message in await self.decode_rows(rows):
                yield message
            if len(rows) < want:
                return
            if remaining is not None:
                remaining -= len(rows)
            last = rows[-1]
            cursor = (last[self._time_index], last[self._width])

    def follow(self, key: Any | None, from_ns: int | None) -> SqlFollower[M]:
        """Return a follower of rows inserted from now (or every row from event time `from_ns`)."""
        return SqlFollower(self, key, from_ns)


class SqlFollower(Generic[M]):
    """Polls for rows past the last sequence number seen."""

    def __init__(self, series: SqlTimeSeries[M], key: Any | None, from_ns: int | None) -> None:
        self.series = series
        self.sql = series.sql.follow(key=key is not None, since=from_ns is not None)
        self.args: list[Any] = []
        if key is not None:
            self.args.append(series._encode_key(key))
        if from_ns is not None:
            self.args.append(series.time_bound(from_ns))
        self.from_ns = from_ns
        self.last_seq = 0

    async def start(self) -> None:
        """Start after the last row now stored, or at the first row when following from an event time."""
        s = self.series
        if not s._ready:
            await s.prepare()
        if self.from_ns is None:
            rows: list[Row] = await s.driver.fetch(s.sql.last_seq, (), namespace=s.spec.namespace)
            self.last_seq = int(rows[0][0] or 0)

    async def next_batch(self) -> list[M]:
        """Return rows inserted since the last batch, or none after a short poll interval."""
        s = self.series
        rows = await s.driver.fetch(
            self.sql, [self.last_seq, *self.args, PAGE_SIZE], namespace=s.spec.namespace
        )
        if not rows:
            await pause(POLL_SECONDS)
            return []
        self.last_seq = int(rows[-1][-1])
        return await s.decode_rows(rows)

    async def close(self) -> None:
        """Nothing to release: polling holds no cursor open."""
