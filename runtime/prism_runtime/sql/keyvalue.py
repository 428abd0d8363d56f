"""The KeyValue contract over any SQL driver: upsert, point and batch reads, keyset scans."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

from google.protobuf.message import Message

from prism_runtime.drive import SetupLock
from prism_runtime.errors import CorruptRow
from prism_runtime.pii.sealer import ProtectedRows
from prism_runtime.pii.vault import vault_for
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.codec import RowCodec
from prism_runtime.sql.driver import After, SqlDriver
from prism_runtime.sql.statements import keyvalue_statements

M = TypeVar("M", bound=Message)
# Batch reads of up to this many keys are "a few rows by key" (SqlDriver.fetch_few): SQLite serves them on the
# event loop's thread.
FEW_KEYS = 64


class EncodedRows(Sequence[Sequence[Any]]):
    """The rows of messages, each encoded when it is read: what a driver iterates or slices is encoded then."""

    def __init__(self, messages: Sequence[Any], encode: Callable[[Any], Sequence[Any]]) -> None:
        self.messages = messages
        self.encode = encode

    def __len__(self) -> int:
        return len(self.messages)

    @overload
    def __getitem__(self, index: int) -> Sequence[Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sequence[Any]]: ...

    def __getitem__(self, index: int | slice) -> Sequence[Any] | list[Sequence[Any]]:
        if isinstance(index, slice):
            return list(map(self.encode, self.messages[index]))
        return self.encode(self.messages[index])

    def __iter__(self) -> Iterator[Sequence[Any]]:
        return map(self.encode, self.messages)


class SqlKeyValue(Generic[M]):
    """One entity's KeyValue operations on one SQL driver."""

    def __init__(self, spec: EntitySpec, message: type[M], driver: SqlDriver) -> None:
        self.spec = spec
        self.driver = driver
        self.codec = RowCodec(spec, message, driver.dialect, driver.name)
        self.sql = keyvalue_statements(spec, driver.dialect)
        self._get = self.sql.get()
        self._ready = False
        self._ready_lock = SetupLock()
        self._ns = spec.namespace
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

    async def put(self, items: Sequence[M]) -> None:
        """Insert or replace `items`, atomically."""
        if not self._ready:
            await self._prepare()
        if self._pii is None:
            if len(items) == 1:
                await self.driver.execute(self.sql.upsert, self.codec.encode(items[0]), namespace=self._ns)
            elif items:
                # The last write of a key wins, as if the items were put one after another. Rows are encoded
                # as the driver takes them, so a driver can encode some while the server stores others.
                unique = list(dict(zip(map(self.codec.message_key, items), items, strict=True)).values())
                await self.driver.upsert_many(
                    self.sql, EncodedRows(unique, self.codec.encode), namespace=self._ns
                )
            return
        rows = list(map(self.codec.encode, items))
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
        if self._ready and self._pii is None:
            # The hot path: the driver's own coroutine, with no frame of ours around it.
            return self.driver.fetch_first(self._get, key, self.codec.decode, namespace=self._ns)
        return self._get_first(key)

    async def _get_first(self, key: tuple[Any, ...]) -> M | None:
        if not self._ready:
            await self._prepare()
        rows = await self.driver.fetch_few(self._get, key, namespace=self._ns)
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
            rows = await fetch(self.sql.get_many(len(chunk)), dialect.batch_args(chunk), namespace=self._ns)
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
        args = [*prefix, *(v for v in (after, end) if v is not None), limit]
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
        q = self.driver.dialect.quote
        column = next(c.name for c in self.spec.columns if c.blind_index_of == field)
        sql = f"SELECT {self.sql.select_columns} FROM {self.sql.table} WHERE {q(column)} = {self.driver.dialect.placeholder(1)}"
        rows = await self.driver.fetch(sql, (index,), namespace=self._ns)
        opened = await self._pii.open(rows, skip_forgotten=True, action="find")
        return [self.codec.decode(row) for row in opened if self._pii.matches(field, value, row)]
