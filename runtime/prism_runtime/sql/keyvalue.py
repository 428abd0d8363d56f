"""The KeyValue contract over any SQL driver: upsert, point and batch reads, keyset scans."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterator, Sequence
from datetime import timedelta
from itertools import chain
from typing import Any, Generic, TypeVar, overload

from google.protobuf.message import Message

from prism_runtime.drive import SetupLock, driving
from prism_runtime.errors import CorruptRow
from prism_runtime.inputs import CheckedBatch
from prism_runtime.pii.sealer import ProtectedRows
from prism_runtime.pii.vault import vault_for
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.codec import RowCodec
from prism_runtime.sql.driver import After, SqlDriver
from prism_runtime.sql.statements import keyvalue_statements, purge_statement

M = TypeVar("M", bound=Message)
# Batch reads of up to this many keys are "a few rows by key" (SqlDriver.fetch_few): SQLite serves them on the
# event loop's thread.
FEW_KEYS = 64
# An entity with a TTL purges expired rows in the background: after a put, at most one batch of this many rows
# per interval, as a task of its own (the driver runs it off the event loop: SQLite's worker thread, asyncpg).
PURGE_BATCH = 1000
PURGE_INTERVAL_S = 60.0

_log = logging.getLogger(__name__)


def now_ms() -> int:
    """Return the wall clock in epoch milliseconds: what expiries are written in and compared with."""
    return time.time_ns() // 1_000_000


class EncodedRows(Sequence[Sequence[Any]]):
    """The rows of messages, encoded when they are read: what a driver iterates or slices is encoded then.

    In runs of rows (RowCodec.encode_rows), with no call per row; `flat` gives a run's bind values in one
    list (RowCodec.encode_flat), for a driver binding many rows per statement.
    """

    RUN = 512
    """How many rows iteration encodes at a time: a driver streaming rows (asyncpg's COPY) sends the first
    while later ones are still messages."""

    def __init__(
        self,
        messages: Sequence[Any],
        codec: RowCodec[Any],
        expires: int | None,
        wires: Sequence[bytes] | None = None,
    ) -> None:
        self.messages = messages
        self.codec = codec
        self.expires = expires
        self.wires = wires
        """The messages' wire bytes, when the input check kept them (CheckedBatch.wire)."""

    def __len__(self) -> int:
        return len(self.messages)

    @overload
    def __getitem__(self, index: int) -> Sequence[Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sequence[Any]]: ...

    def __getitem__(self, index: int | slice) -> Sequence[Any] | list[Sequence[Any]]:
        if isinstance(index, slice):
            return self.codec.encode_rows(self.messages[index], self.expires, self._wires(index))
        return self.codec.encode_expiring(self.messages[index], self.expires)

    def __iter__(self) -> Iterator[Sequence[Any]]:
        encode, messages, expires, run = self.codec.encode_rows, self.messages, self.expires, self.RUN
        return chain.from_iterable(
            encode(messages[start : start + run], expires, self._wires(slice(start, start + run)))
            for start in range(0, len(messages), run)
        )

    def flat(self, start: int, stop: int) -> list[Any]:
        """Return the bind values of rows `start` to `stop` (excluded), row after row, in one list."""
        return self.codec.encode_flat(
            self.messages[start:stop], self.expires, self._wires(slice(start, stop))
        )

    def _wires(self, index: slice) -> Sequence[bytes] | None:
        return None if self.wires is None else self.wires[index]


class SqlKeyValue(Generic[M]):
    """One entity's KeyValue operations on one SQL driver."""

    def __init__(self, spec: EntitySpec, message: type[M], driver: SqlDriver) -> None:
        self.spec = spec
        self.driver = driver
        self.codec = RowCodec(spec, message, driver.dialect, driver.name)
        self.takes_wire = self.codec.native
        """Whether put reads the wire bytes of a checked batch (KeyValueBackend): the native encoder does."""
        self.sql = keyvalue_statements(spec, driver.dialect)
        self._get = self.sql.get()
        self._ready = False
        self._ready_lock = SetupLock()
        self._ns = spec.namespace
        self._ttl_ms = spec.ttl_seconds * 1000 if spec.expires else 0
        self._next_purge = 0.0  # time.monotonic() of the next background purge
        self._purging: asyncio.Task[int] | None = None
        # Encryption, blind indexes and audit happen here, once for every SQL backend.
        self._pii = (
            ProtectedRows(spec, message, vault_for(driver), [c.name for c in spec.columns])
            if spec.protects_pii
            else None
        )

    async def _prepare(self) -> None:
        async with self._ready_lock:
            if not self._ready:
                await self.driver.prepare_table(self.spec, self.spec.ddl_for(self.driver.dialect.name))
                if self._pii is None and self.spec.holds_pii:
                    # Clear pii fields: no sealer registers the entity, yet `forget` must find its rows.
                    await vault_for(self.driver).catalog.register(self.spec)
                self._ready = True

    async def ready(self) -> None:
        """Make the table usable (created on an embedded backend, checked on a server), once."""
        if not self._ready:
            await self._prepare()

    async def put(self, items: Sequence[M], ttl: timedelta | None = None) -> None:
        """Insert or replace `items`, atomically; on an entity with a TTL, they expire after `ttl` (else its TTL)."""
        if not self._ready:
            await self._prepare()
        encode = self.codec.encode
        expires: int | None = None
        if self._ttl_ms:
            expires = now_ms() + (self._ttl_ms if ttl is None else _milliseconds(ttl))
            expiring = self.codec.encode_expiring
            encode = lambda item: expiring(item, expires)  # noqa: E731 -- bound to this put's expiry
            if time.monotonic() >= self._next_purge:
                await self._purge_in_background()
        elif ttl is not None:
            raise TypeError(f"namespace {self._ns!r} has no (prism.ttl_seconds): its items cannot expire")
        wires = items.wire if isinstance(items, CheckedBatch) else None  # the input check's bytes, if kept
        if self._pii is None:
            if len(items) == 1:
                await self.driver.execute(self.sql.upsert, encode(items[0]), namespace=self._ns)
            elif items:
                # The last write of a key wins, as if the items were put one after another. Rows are encoded
                # as the driver takes them, so a driver can encode some while the server stores others.
                key = self.codec.message_key
                distinct = isinstance(items, CheckedBatch) and items.distinct  # the input check saw the keys
                if not distinct and len(set(map(key, items))) < len(items):
                    items, wires = list(dict(zip(map(key, items), items, strict=True)).values()), None
                encoded = EncodedRows(items, self.codec, expires, wires)
                await self.driver.upsert_many(self.sql, encoded, namespace=self._ns)
            return
        rows = self.codec.encode_rows(items, expires, wires)
        sealed, events = await self._pii.seal(rows)
        await self._pii.write_audited(events, lambda after: self._write(sealed, after))

    async def _write(self, rows: Sequence[Sequence[Any]], after: Sequence[After] = ()) -> None:
        if len(rows) == 1 and not after:
            await self.driver.execute(self.sql.upsert, rows[0], namespace=self._ns)
        elif rows:
            # The last write of a key wins, as if the items were put one after another.
            unique = dict(zip(map(self.codec.row_key, rows), rows, strict=True))
            await self.driver.upsert_many(self.sql, list(unique.values()), namespace=self._ns, after=after)

    def get(self, key: tuple[Any, ...]) -> Coroutine[Any, Any, M | None]:
        """Return the item at a full primary key, or None (a coroutine)."""
        if self._ttl_ms:
            key = (*key, now_ms())
        if self._ready and self._pii is None:
            # The hot path: the driver's own coroutine, with no frame of ours around it.
            return self.driver.fetch_first(self._get, key, self.codec.decode, namespace=self._ns)
        return self._get_first(key)

    async def _get_first(self, args: tuple[Any, ...]) -> M | None:
        if not self._ready:
            await self._prepare()
        rows = await self.driver.fetch_few(self._get, args, namespace=self._ns)
        if rows and self._pii is not None:
            rows = await self._pii.open(rows)
        return self.codec.decode(rows[0]) if rows else None

    async def get_many(self, keys: Sequence[tuple[Any, ...]]) -> list[M | None]:
        """Return the items at `keys`, None where missing, in the order asked."""
        if not self._ready:
            await self._prepare()
        found: dict[tuple[Any, ...], M] = {}
        unique = list(dict.fromkeys(keys))
        dialect = self.driver.dialect
        batch = dialect.batch_size(len(self.spec.key_columns))
        for start in range(0, len(unique), batch):
            chunk = unique[start : start + batch]
            fetch = self.driver.fetch_few if len(chunk) <= FEW_KEYS else self.driver.fetch
            args = dialect.batch_args(chunk)
            sql = self.sql.get_many(len(chunk), len(args))
            if self._ttl_ms:
                args.append(now_ms())
            rows = await fetch(sql, args, namespace=self._ns)
            if self._pii is not None:
                rows = await self._pii.open(rows)
            for row in rows:
                found[self.codec.key_of(row)] = self.codec.decode(row)
        return [found.get(key) for key in keys]

    async def delete(self, prefix: tuple[Any, ...]) -> int:
        """Delete the items under a key prefix (a full key deletes one); return how many went."""
        if not self._ready:
            await self._prepare()
        return await self.driver.execute(self.sql.delete(len(prefix)), prefix, namespace=self._ns)

    async def scan_page(
        self,
        prefix: tuple[Any, ...],
        *,
        after: Any = None,
        inclusive: bool = False,
        end: Any = None,
        reverse: bool = False,
        limit: int,
        keep_corrupt: bool = False,
    ) -> Sequence[M | CorruptRow]:
        """Return up to `limit` items under `prefix`, ordered by the next key column, past `after`.

        A row that cannot be decoded raises CorruptRow, or with `keep_corrupt` stands in the page as one.
        """
        if not self._ready:
            await self._prepare()
        sql = self.sql.scan(
            prefix=len(prefix),
            after=after is not None,
            inclusive=inclusive,
            end=end is not None,
            reverse=reverse,
        )
        args = [*prefix, *(v for v in (after, end) if v is not None), *self._now(), limit]
        rows = await self.driver.fetch(sql, args, namespace=self._ns)
        if self._pii is not None:
            # A forgotten subject's rows are skipped in scans (a get of one raises SubjectForgotten).
            rows = await self._pii.open(rows, skip_forgotten=True)
        decode = self.codec.decode_or_error if keep_corrupt else self.codec.decode
        return [decode(row) for row in rows]

    async def decode_rows(self, rows: Sequence[Sequence[Any]]) -> list[M]:
        """Return the messages of rows fetched with `sql.select_columns`, decrypted; forgotten subjects skipped."""
        if self._pii is not None:
            rows = await self._pii.open(rows, skip_forgotten=True)
        return [self.codec.decode(row) for row in rows]

    async def find_by(self, field: str, value: str | bytes) -> list[M]:
        """Return the items whose encrypted, searchable `field` equals `value`, through its blind index."""
        if not self._ready:
            await self._prepare()
        if self._pii is None or not self.spec.column(field).searchable:
            raise ValueError(f"namespace {self._ns!r}: field {field!r} is not searchable")
        index = await self._pii.index_of(field, value)
        column = next(c.name for c in self.spec.columns if c.blind_index_of == field)
        sql = self.sql.find(column, after=False, limit=False)
        rows = await self.driver.fetch(sql, (index, *self._now()), namespace=self._ns)
        opened = await self._pii.open(rows, skip_forgotten=True, action="find")
        return [self.codec.decode(row) for row in opened if self._pii.matches(field, value, row)]

    async def find_page(
        self, field: str, value: Any, *, after: tuple[Any, ...] | None, limit: int
    ) -> tuple[list[M], tuple[Any, ...] | None]:
        """Return up to `limit` items whose indexed `field` equals `value` in key order, past the full key `after`.

        Also return the key to continue from, or None when no more rows match. Rows of forgotten subjects are
        skipped, so a page may hold fewer items than rows read.
        """
        if not self._ready:
            await self._prepare()
        column = self.spec.column(field)
        if not column.indexed or column.encrypted:
            raise ValueError(f"namespace {self._ns!r}: field {field!r} is not indexed in clear")
        sql = self.sql.find(field, after=after is not None, limit=True)
        args = [self.driver.dialect.encoder(column)(value), *(after or ()), *self._now(), limit]
        rows = await self.driver.fetch(sql, args, namespace=self._ns)
        last = self.codec.key_of(rows[-1]) if len(rows) == limit else None
        return await self.decode_rows(rows), last

    async def purge_expired(self, batch: int = PURGE_BATCH) -> int:
        """Delete at most `batch` rows expired by now; return how many went (0 on an entity without a TTL)."""
        if not self._ttl_ms:
            return 0
        if not self._ready:
            await self._prepare()
        return await self.driver.execute(self.sql.purge(), (now_ms(), batch), namespace=self._ns)

    def _now(self) -> tuple[int, ...]:
        """Return the bind value of the `live` predicate: now, on an entity with a TTL; else nothing."""
        return (now_ms(),) if self._ttl_ms else ()

    async def _purge_in_background(self) -> None:
        """Start one purge batch as a task of its own (unless one still runs), and come back for the next after
        the interval."""
        self._next_purge = time.monotonic() + PURGE_INTERVAL_S
        if self._purging is not None and not self._purging.done():
            return
        if driving():
            # A blocking driver runs this coroutine to its end (the sync clients): there is no loop to hand the
            # batch to, so it runs here, bounded by PURGE_BATCH rows, once an interval.
            await self._purge_quietly()
            return
        self._purging = asyncio.get_running_loop().create_task(self._purge_quietly())

    async def _purge_quietly(self) -> int:
        try:
            return await self.purge_expired()
        except Exception as error:  # a purge that fails is tried again next interval; reads hide expired rows
            _log.warning(
                "namespace %r: background purge of expired rows failed: %s", self._ns, type(error).__name__
            )
            return 0


async def purge_expired_rows(driver: SqlDriver, table: str, *, batch: int = PURGE_BATCH) -> int:
    """Delete every row of `table` expired by now, at most `batch` rows a statement; return how many went."""
    sql = purge_statement(driver.dialect, driver.dialect.quote(table))
    now, total = now_ms(), 0
    while True:
        deleted = await driver.execute(sql, (now, batch), namespace=table)
        total += deleted
        if deleted < batch:
            return total


def _milliseconds(ttl: timedelta) -> int:
    """Return a TTL in whole milliseconds; it must be positive."""
    ms = ttl // timedelta(milliseconds=1)
    if ms <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    return ms
