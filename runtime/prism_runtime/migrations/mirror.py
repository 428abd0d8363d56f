"""The routing layer of a migrating namespace: one KeyValueBackend over a source and a target (a TimeSeries
and a Graph edge type have theirs in mirror_series and mirror_graph, on the same `Routing` base).

It sits where a backend would (Database.keyvalue), so generated stores and backends do not change. Each
operation reads the phase from memory (the Database's watcher keeps it current) and routes:

| phase        | reads                         | writes and deletes                              |
|--------------|-------------------------------|-------------------------------------------------|
| dual_write   | source                        | source, then target                             |
| shadow_read  | source; target compared       | source, then target                             |
| promoted     | target                        | target, then source (a rollback loses nothing)  |
| done         | target                        | target                                          |

The second write of a pair never fails the caller (unless the migration is strict): it is counted
(prism.migration.dual_write_failures) and logged with the namespace and the error's type, never a value.
A delete while the target is second also records a tombstone there, in the delete's transaction, so a
backfill that read the key before the delete does not bring it back (docs/migrations-between-backends.md).
An entity with PII is written to the second side as the first side stored it: its rows are copied as
ciphertext with their subjects' wrapped keys (prism_runtime.migrations.rows).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from prism_runtime.drive import both
from prism_runtime.errors import CorruptRow
from prism_runtime.migrations.control import (
    MigratingDatabase,
    PhaseCell,
    control_driver,
    ensure_row,
    now,
    sql_end,
)
from prism_runtime.migrations.rows import RowCopier
from prism_runtime.migrations.tables import DELETED, TOMBSTONES, KeyNames
from prism_runtime.pii.catalog import spec_to_json
from prism_runtime.pii.tables import insert_sql, prepare
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.keyvalue import SqlKeyValue
from prism_runtime.telemetry import migration_event

M = TypeVar("M", bound=Message)
T = TypeVar("T")
log = logging.getLogger("prism_runtime.migrations")
_FAILED = object()


class Routing:
    """What the routing layers of every abstraction share: the phase, the second write, the comparison."""

    def __init__(self, cell: PhaseCell, spec: EntitySpec, control: SqlDriver) -> None:
        self.cell = cell
        self.spec = spec
        self._control = control
        self._recorded = False
        self._ns = spec.namespace
        self._strict = cell.migration.strict
        self._sample = cell.migration.shadow_read_sample
        self._logs_keys = not spec.holds_pii

    def reads_from_source(self) -> bool:
        """Return whether the source serves reads (dual_write, shadow_read); else the target does."""
        return self.cell.phase in ("dual_write", "shadow_read")

    def shadows(self) -> bool:
        """Return whether this read is compared with the target (shadow_read, sampled)."""
        return self.cell.phase == "shadow_read" and (self._sample >= 1.0 or random.random() < self._sample)

    async def _second(self, work: Awaitable[Any], op: str) -> None:
        try:
            await work
        except Exception as error:
            migration_event("dual_write_failures", self._ns)
            log.warning(
                "prism migration %s: %s on the second backend failed (%s)", self._ns, op, type(error).__name__
            )
            if self._strict:
                raise

    def _compare(self, got: object, other: object, key: object = None) -> None:
        if other is not _FAILED and other != got:
            migration_event("mismatches", self._ns)
            if self._logs_keys and key is not None:
                log.warning("prism migration %s: shadow read differs at key %r", self._ns, key)
            else:
                log.warning("prism migration %s: shadow read differs", self._ns)

    async def _quiet(self, work: Awaitable[T]) -> T | object:
        try:
            return await work
        except Exception as error:
            migration_event("mismatches", self._ns)
            log.warning("prism migration %s: shadow read failed (%s)", self._ns, type(error).__name__)
            return _FAILED


class MirroredKeyValue(Routing, Generic[M]):
    """A KeyValueBackend routing one namespace between its migration's source and target by phase."""

    def __init__(
        self, cell: PhaseCell, source: SqlKeyValue[M], target: SqlKeyValue[M], control: SqlDriver
    ) -> None:
        super().__init__(cell, source.spec, control)
        self.source = source
        self.target = target
        # Ciphertext is copied as stored, in the direction of the write: first side to second.
        self._forward = RowCopier(self.spec, source.driver, target.driver) if self.spec.protects_pii else None
        self._backward = (
            RowCopier(self.spec, target.driver, source.driver) if self.spec.protects_pii else None
        )
        self._names = KeyNames(self.spec, source.driver)
        q = target.driver.dialect.quote
        # Waits on a backfill's claim of the same key (a unique-key insert waits for the claiming transaction),
        # so the delete that follows it sees the row the backfill copied, and deletes it.
        self._tombstone = (
            f"{insert_sql(target.driver, TOMBSTONES)} ON CONFLICT ({q('namespace')}, {q('key')}) "
            f"DO UPDATE SET {q('state')} = excluded.{q('state')}, {q('deleted_at')} = excluded.{q('deleted_at')}"
        )

    async def _record(self) -> None:
        # The first write makes both tables usable and leaves the entity's spec in the control row, where
        # `prism backfill` reads it (it needs no generated code).
        if self._forward is not None:
            await self._forward.seed_keys()  # before the target opens its keyring, which would make a root
        await self.source.ready()
        await self.target.ready()
        await ensure_row(self._control, self.cell.migration, spec_to_json(self.spec))
        self._recorded = True

    def _primary(self) -> SqlKeyValue[M]:
        return self.source if self.reads_from_source() else self.target

    # -- writes ------------------------------------------------------------------------------------

    async def put(self, items: Sequence[M], ttl: timedelta | None = None) -> None:
        """Put on the first side, then on the second (as ciphertext, expiry included, for an entity with PII)."""
        if not self._recorded:
            await self._record()
        phase = self.cell.phase
        first, second = (self.source, self.target) if self.reads_from_source() else (self.target, self.source)
        await first.put(items, ttl)
        if phase == "done":
            return
        copier = self._forward if first is self.source else self._backward
        if copier is None:
            # With a TTL, each side writes now + ttl by its own put: the expiries differ by the gap between.
            await self._second(second.put(items, ttl), "put")
        else:
            keys = [first.codec.key_of(first.codec.encode(item)) for item in items]
            await self._second(self._copy(copier, keys), "put")

    async def _copy(self, copier: RowCopier, keys: Sequence[tuple[Any, ...]]) -> None:
        await copier.write(await copier.fetch(keys))

    async def delete(self, prefix: tuple[Any, ...]) -> int:
        """Delete on the first side, then on the second; a tombstone goes with the target's delete."""
        if not self._recorded:
            await self._record()
        phase = self.cell.phase
        if phase == "done":
            return await self.target.delete(prefix)
        if phase == "promoted":
            count = await self.target.delete(prefix)
            await self._second(self.source.delete(prefix), "delete")
            return count
        count = await self.source.delete(prefix)
        await self._second(self._delete_with_tombstone(prefix), "delete")
        return count

    async def _delete_with_tombstone(self, prefix: tuple[Any, ...]) -> None:
        target = self.target
        await prepare(target.driver, TOMBSTONES)
        # The tombstone first, then the delete, in one transaction (see `_tombstone`).
        await target.driver.execute_many(
            self._tombstone,
            [(self._ns, (await self._names.of([prefix]))[0], DELETED, now())],
            namespace=self._ns,
            after=[(target.sql.delete(len(prefix)), [prefix])],
        )

    # -- reads -------------------------------------------------------------------------------------

    def get(self, key: tuple[Any, ...]) -> Coroutine[Any, Any, M | None]:
        """Return the item at a full key from the phase's read side (compared with the target, sampled)."""
        if self.shadows():
            return self.shadow(self.source.get(key), self.target.get(key), key)
        return self._primary().get(key)

    async def get_many(self, keys: Sequence[tuple[Any, ...]]) -> list[M | None]:
        """Return the items at full keys from the phase's read side (compared with the target, sampled)."""
        if self.shadows():
            return await self.shadow(self.source.get_many(keys), self.target.get_many(keys), None)
        return await self._primary().get_many(keys)

    async def shadow(self, answer: Awaitable[T], target: Awaitable[T], key: tuple[Any, ...] | None) -> T:
        """Return `answer` (the source's), having compared it with the target's read `target`, run at once."""
        if not self._recorded:
            await self._record()
        got, other = await both(answer, self._quiet(target))
        self._compare(got, other, key)
        return got

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
        """Return one page of items from the phase's read side (compared with the target, sampled)."""

        def page(side: SqlKeyValue[M]) -> Awaitable[Sequence[M | CorruptRow]]:
            return side.scan_page(
                prefix,
                after=after,
                inclusive=inclusive,
                end=end,
                reverse=reverse,
                limit=limit,
                keep_corrupt=keep_corrupt,
            )

        if self.shadows():
            return await self.shadow(page(self.source), page(self.target), prefix or None)
        return await page(self._primary())

    async def find_by(self, field: str, value: str | bytes) -> list[M]:
        """Return the items whose searchable `field` equals `value`, from the phase's read side (compared)."""
        if self.shadows():
            return await self.shadow(
                self.source.find_by(field, value), self.target.find_by(field, value), None
            )
        return await self._primary().find_by(field, value)

    async def find_page(
        self, field: str, value: Any, *, after: tuple[Any, ...] | None, limit: int
    ) -> tuple[list[M], tuple[Any, ...] | None]:
        """Return one finder page of an indexed `field` from the phase's read side (compared with the target)."""
        if self.shadows():
            return await self.shadow(
                self.source.find_page(field, value, after=after, limit=limit),
                self.target.find_page(field, value, after=after, limit=limit),
                None,
            )
        return await self._primary().find_page(field, value, after=after, limit=limit)


def mirrored_keyvalue(
    db: MigratingDatabase, cell: PhaseCell, spec: EntitySpec, message: type[M]
) -> MirroredKeyValue[M]:
    """Return the routing layer of a migrating KeyValue namespace, over both ends' SQL backends."""
    migration = cell.migration
    ends = [sql_end(db, name, spec.namespace) for name in (migration.source, migration.target)]
    return MirroredKeyValue(
        cell,
        SqlKeyValue(spec, message, ends[0]),
        SqlKeyValue(spec, message, ends[1]),
        control_driver(db, migration),
    )
