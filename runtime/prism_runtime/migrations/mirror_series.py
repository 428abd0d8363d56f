"""The routing layer of a migrating TimeSeries namespace (see prism_runtime.migrations.mirror)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from google.protobuf.message import Message

from prism_runtime.migrations.control import PhaseCell, control_driver, ensure_row, sql_end
from prism_runtime.migrations.mirror import Routing
from prism_runtime.migrations.rows import RowCopier
from prism_runtime.pii.catalog import spec_to_json
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.timeseries import SqlTimeSeries
from prism_runtime.timeseries import Event, Follower

if TYPE_CHECKING:
    from prism_runtime.database import Database

M = TypeVar("M", bound=Message)
T = TypeVar("T")


class MirroredTimeSeries(Routing, Generic[M]):
    """A TimeSeriesBackend routing one namespace between its migration's source and target by phase.

    Appends go to both sides with the same event identities, so either side (and a backfill) stores an event
    once. A tail follows the side that served reads when it started.
    """

    def __init__(
        self, cell: PhaseCell, source: SqlTimeSeries[M], target: SqlTimeSeries[M], control: SqlDriver
    ) -> None:
        super().__init__(cell, source.spec, control)
        self.source = source
        self.target = target
        # An encrypted series is written to the second side as the first side sealed it (as the KeyValue
        # layer does), so both hold the same ciphertext under the same keys.
        pii = self.spec.protects_pii
        self._forward = RowCopier(self.spec, source.driver, target.driver) if pii else None
        self._backward = RowCopier(self.spec, target.driver, source.driver) if pii else None

    async def _record(self) -> None:
        if self._forward is not None:
            await self._forward.seed_keys()  # before the target opens its keyring, which would make a root
        await self.source.prepare()
        await self.target.prepare()
        await ensure_row(self._control, self.cell.migration, spec_to_json(self.spec))
        self._recorded = True

    def _primary(self) -> SqlTimeSeries[M]:
        return self.source if self.reads_from_source() else self.target

    async def append(self, events: Sequence[Event[M]]) -> None:
        """Append to the first side, then to the second."""
        if not self._recorded:
            await self._record()
        phase = self.cell.phase
        first, second = (self.source, self.target) if self.reads_from_source() else (self.target, self.source)
        await first.append(events)
        if phase == "done":
            return
        copier = self._forward if first is self.source else self._backward
        if copier is None:
            await self._second(second.append(events), "append")
        else:
            encode = first.codec.encode
            keys = [copier.key_of((*encode(e.message), e.event_id)) for e in events]
            await self._second(self._copy(copier, keys), "append")

    async def _copy(self, copier: RowCopier, keys: Sequence[tuple[Any, ...]]) -> None:
        rows = await copier.fetch(keys)
        await copier.target.execute_many(
            copier.insert_if_absent, await copier.staged(rows), namespace=self._ns
        )

    def query(
        self, key: Any, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> AsyncIterator[M]:
        """Yield a key's events from the phase's read side (compared with the target, sampled)."""
        if self._shadows():
            return self._shadow_query(key, start_ns, end_ns, limit)
        return self._primary().query(key, start_ns, end_ns, limit)

    async def _shadow_query(
        self, key: Any, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> AsyncIterator[M]:
        if not self._recorded:
            await self._record()
        got, other = await asyncio.gather(
            _listed(self.source.query(key, start_ns, end_ns, limit)),
            self._quiet(_listed(self.target.query(key, start_ns, end_ns, limit))),
        )
        self._compare(got, other, (key,))
        for item in got:
            yield item

    def follow(self, key: Any | None, from_ns: int | None) -> Follower[M]:
        """Return a follower on the phase's read side."""
        return self._primary().follow(key, from_ns)


async def _listed(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


def mirrored_timeseries(
    db: Database, cell: PhaseCell, spec: EntitySpec, message: type[M]
) -> MirroredTimeSeries[M]:
    """Return the routing layer of a migrating TimeSeries namespace, over both ends' SQL backends."""
    migration = cell.migration
    source, target = (sql_end(db, name, spec.namespace) for name in (migration.source, migration.target))
    return MirroredTimeSeries(
        cell,
        SqlTimeSeries(spec, message, source),
        SqlTimeSeries(spec, message, target),
        control_driver(db, migration),
    )
