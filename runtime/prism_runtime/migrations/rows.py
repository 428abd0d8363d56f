"""Stored rows of one entity moved between two SQL backends as they are: ciphertext stays ciphertext.

A value is turned from the source dialect's stored form into the target's through the dialects' own column
codecs (JSON text to jsonb, text timestamps to timestamptz, JSON arrays to arrays), never through the message:
encrypted fields are not opened, so no PII is decrypted to be copied. The keys that open them move with them:
the index root key (subject pseudonyms and blind indexes derive from it) once, then each copied subject's
wrapped data keys, insert-if-absent, so a key destroyed by `forget` on the target is never brought back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from prism_runtime.drive import SetupLock
from prism_runtime.migrations.tables import KeyNames
from prism_runtime.pii import tables as pii_tables
from prism_runtime.pii.errors import PiiError
from prism_runtime.pii.keyring import ROOT_REF
from prism_runtime.pii.vault import vault_for
from prism_runtime.schema import Abstraction, Column, EntitySpec
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.driver import Row, SqlDriver, Statement
from prism_runtime.sql.names import EVENT_ID_COLUMN, row_identity, table_name
from prism_runtime.sql.statements import keyvalue_statements

MAX_PARAMETERS = 999
"""The most parameters one statement binds, on every SQL backend (SQLite's limit before 3.32)."""
# The prism_meta rows that say how keys are used; `audit_head` belongs to each backend's own audit chain.
_KEY_SETTINGS = ("generation", "min_version")


@dataclass(frozen=True)
class Layout:
    """The stored columns of an entity's table that a copy moves, and the ones that identify a row."""

    spec: EntitySpec
    names: tuple[str, ...]
    columns: tuple[Column | None, ...]
    """The column of each name (None: a value stored as it is, such as a series' event id)."""
    order: tuple[int, ...]
    """The positions of the identity columns, in the order pages go: the primary key; for a series, event
    time first (a backfill copies a series by time range), then key and event id."""


def layout_of(spec: EntitySpec) -> Layout:
    """Return the layout of an entity's table (a series adds its event id; its insertion sequence is not copied)."""
    names = tuple(c.name for c in spec.columns)
    columns: tuple[Column | None, ...] = tuple(spec.columns)
    if spec.abstraction is Abstraction.TIME_SERIES:
        assert spec.event_time is not None
        names, columns = (*names, EVENT_ID_COLUMN), (*columns, None)
        identity: tuple[str, ...] = (spec.event_time, spec.key, EVENT_ID_COLUMN)
    else:
        identity = row_identity(spec)
    return Layout(spec, names, columns, tuple(names.index(n) for n in identity))


def translator(layout: Layout, source: SqlDialect, target: SqlDialect) -> Callable[[Row], tuple[Any, ...]]:
    """Return the function turning a row as `source` stores it into the row `target` stores."""
    same = source.name == target.name
    steps = [
        None if same or c is None else _convert(source.decoder(c), target.encoder(c)) for c in layout.columns
    ]

    def translate(row: Row) -> tuple[Any, ...]:
        return tuple(v if step is None or v is None else step(v) for step, v in zip(steps, row, strict=True))

    return tuple if all(step is None for step in steps) else translate


def _convert(decode: Callable[[Any], Any], encode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: encode(decode(value))


def comparable(layout: Layout, dialect: SqlDialect) -> Callable[[Row], tuple[Any, ...]]:
    """Return the function giving a stored row's values as Python values, equal across dialects."""
    decoders = [_same if c is None else dialect.decoder(c) for c in layout.columns]

    def values(row: Row) -> tuple[Any, ...]:
        return tuple(None if v is None else d(v) for d, v in zip(decoders, row, strict=True))

    return values


def _same(value: Any) -> Any:
    return value


class RowCopier:
    """Copies stored rows of one entity from a source SQL backend to a target one."""

    def __init__(self, spec: EntitySpec, source: SqlDriver, target: SqlDriver) -> None:
        self.spec = spec
        self.layout = layout = layout_of(spec)
        self.source = source
        self.target = target
        self.translate = translator(layout, source.dialect, target.dialect)
        self.identity = [layout.names[i] for i in layout.order]
        q = target.dialect.quote
        table = q(table_name(spec))
        columns = ", ".join(q(n) for n in layout.names)
        values = ", ".join(target.dialect.placeholder(i + 1) for i in range(len(layout.names)))
        self._insert_head = f"INSERT INTO {table} ({columns})"
        self._insert_tail = f"ON CONFLICT ({', '.join(q(n) for n in self.identity)}) DO NOTHING"
        self.insert_if_absent = f"{self._insert_head} VALUES ({values}) {self._insert_tail}"
        self.names = KeyNames(spec, source)
        """How this entity's keys are named in prism_tombstones."""
        self._subject = layout.names.index(spec.subject_column.name)
        self._keys_seeded = not spec.protects_pii
        self._seed_lock = SetupLock()

    def inserts(self, rows: Sequence[Row]) -> list[Statement]:
        """Return the statements inserting target rows where their identity is absent, many rows a statement."""
        return many_rows(self.target, self._insert_head, len(self.layout.names), self._insert_tail, rows)

    def key_of(self, row: Row) -> tuple[Any, ...]:
        """Return the identity of a stored row, in page order."""
        return tuple(row[i] for i in self.layout.order)

    async def fetch(self, keys: Sequence[tuple[Any, ...]]) -> list[Row]:
        """Return the source's stored rows with these identities (those that exist)."""
        return await fetch_identities(self.source, self.layout, keys)

    async def fetch_target(self, rows: Sequence[Row]) -> list[Row]:
        """Return the target's stored rows with the identities of these source rows (those that exist)."""
        return await fetch_identities(
            self.target, self.layout, [self.key_of(self.translate(r)) for r in rows]
        )

    async def staged(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """Return source rows as the target stores them, once the target holds the keys that open them."""
        await self.seed_keys()
        await self.copy_subject_keys(rows)
        return [self.translate(r) for r in rows]

    async def write(self, rows: Sequence[Row]) -> None:
        """Store source rows of a KeyValue entity in the target, replacing what is there (a mirrored write)."""
        if rows:
            statements = keyvalue_statements(self.spec, self.target.dialect)
            await self.target.upsert_many(statements, await self.staged(rows), namespace=self.spec.namespace)

    # -- keys --------------------------------------------------------------------------------------

    async def seed_keys(self) -> None:
        """Give the target the source's index root key and key settings, once; refuse a target with another."""
        if self._keys_seeded:
            return
        async with self._seed_lock:
            if self._keys_seeded:
                return
            await vault_for(self.source).ready()  # makes the source's root key if it has none yet
            for spec in (pii_tables.KEYS, pii_tables.META):
                await pii_tables.prepare(self.target, spec)
            root = await self._key_rows(self.source, [ROOT_REF])
            await self._insert_absent(pii_tables.KEYS, root)
            q, ph = self.source.dialect.quote, self.source.dialect.placeholder
            settings = await self.source.fetch(
                f"SELECT {q('name')}, {q('value')} FROM {q(pii_tables.META.namespace)} "
                f"WHERE {q('name')} IN ({ph(1)}, {ph(2)})",
                _KEY_SETTINGS,
                namespace=pii_tables.META.namespace,
            )
            await self._insert_absent(pii_tables.META, [tuple(r) for r in settings])
            theirs = await self._key_rows(self.target, [ROOT_REF])
            if [bytes(r[3]) for r in theirs] != [bytes(r[3]) for r in root]:
                raise PiiError(
                    f"namespace {self.spec.namespace!r}: the target {self.target.name} holds PII keys under "
                    "another index root key, so rows copied as ciphertext could not be opened there; migrate "
                    "into a database with no prism_keys, or one seeded from this source"
                )
            await vault_for(self.target).catalog.register(self.spec)
            self._keys_seeded = True

    async def copy_subject_keys(self, rows: Sequence[Row]) -> None:
        """Give the target the wrapped data keys of the subjects of `rows` that it lacks."""
        if not self.spec.protects_pii:
            return
        keyring = vault_for(self.source).keyring
        await keyring.ready()
        refs = list(dict.fromkeys(keyring.subject_ref(row[self._subject]) for row in rows))
        await self._insert_absent(pii_tables.KEYS, await self._key_rows(self.source, refs))

    async def _key_rows(self, driver: SqlDriver, refs: Sequence[str]) -> list[tuple[Any, ...]]:
        q = driver.dialect.quote
        names = ", ".join(q(c.name) for c in pii_tables.KEYS.columns)
        out: list[tuple[Any, ...]] = []
        for start in range(0, len(refs), 500):
            chunk = refs[start : start + 500]
            rows = await driver.fetch(
                f"SELECT {names} FROM {q(pii_tables.KEYS.namespace)} WHERE {q('subject_ref')} IN "
                f"({pii_tables.marks(driver, len(chunk))})",
                chunk,
                namespace=pii_tables.KEYS.namespace,
            )
            out += [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]
        return out

    async def _insert_absent(self, spec: EntitySpec, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        q = self.target.dialect.quote
        keys = ", ".join(q(c.name) for c in spec.key_columns)
        sql = f"{pii_tables.insert_sql(self.target, spec)} ON CONFLICT ({keys}) DO NOTHING"
        await self.target.execute_many(sql, rows, namespace=spec.namespace)


def many_rows(driver: SqlDriver, head: str, width: int, tail: str, rows: Sequence[Row]) -> list[Statement]:
    """Return `head VALUES (...), (...) tail` statements for `rows`, as many rows a statement as MAX_PARAMETERS
    allows, the rest one by one: one statement of N rows is one round trip where N one-row binds are N."""
    place = driver.dialect.placeholder
    per = max(1, MAX_PARAMETERS // width)
    whole = len(rows) - len(rows) % per
    out: list[Statement] = []
    if whole:
        values = ", ".join(
            "(" + ", ".join(place(r * width + c + 1) for c in range(width)) + ")" for r in range(per)
        )
        flat = [list(chain.from_iterable(rows[start : start + per])) for start in range(0, whole, per)]
        out.append((f"{head} VALUES {values} {tail}", flat))
    if len(rows) > whole:
        one = "(" + ", ".join(place(c + 1) for c in range(width)) + ")"
        out.append((f"{head} VALUES {one} {tail}", list(rows[whole:])))
    return out


def select_sql(driver: SqlDriver, layout: Layout) -> str:
    """Return the SELECT of a layout's columns from its table (conditions to be appended)."""
    q = driver.dialect.quote
    return f"SELECT {', '.join(q(n) for n in layout.names)} FROM {q(table_name(layout.spec))}"


async def fetch_identities(driver: SqlDriver, layout: Layout, keys: Sequence[tuple[Any, ...]]) -> list[Row]:
    """Return the stored rows with these identities (in page order), those that exist."""
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    names = [q(layout.names[i]) for i in layout.order]
    width = len(names)
    unique = list(dict.fromkeys(keys))
    out: list[Row] = []
    batch = max(1, 400 // width)
    for start in range(0, len(unique), batch):
        chunk = unique[start : start + batch]
        # ORed equalities rather than a row-value IN (VALUES ...): each bind takes its column's type.
        where = " OR ".join(
            "(" + " AND ".join(f"{n} = {ph(k * width + j + 1)}" for j, n in enumerate(names)) + ")"
            for k in range(len(chunk))
        )
        args = [part for key in chunk for part in key]
        out += await driver.fetch(
            f"{select_sql(driver, layout)} WHERE {where}", args, namespace=layout.spec.namespace
        )
    return out
