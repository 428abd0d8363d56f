"""The routing layer of a migrating TimeSeries namespace (see prism_runtime.migrations.mirror)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Generic, TypeVar, cast

from google.protobuf.message import Message

from prism_runtime.backends.contract import ServesTimeSeries
from prism_runtime.backends.registry import runs_sql
from prism_runtime.drive import both
from prism_runtime.errors import ConfigError
from prism_runtime.migrations.control import MigratingDatabase, PhaseCell, control_driver, ensure_row, sql_end
from prism_runtime.migrations.mirror import Routing
from prism_runtime.migrations.rows import RowCopier
from prism_runtime.pii.catalog import spec_to_json
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.timeseries import SqlTimeSeries
from prism_runtime.timeseries import Event, Follower, TimeSeriesBackend

M = TypeVar("M", bound=Message)
T = TypeVar("T")


class MirroredTimeSeries(Routing, Generic[M]):
    """A TimeSeriesBackend routing one namespace between its migration's source and target by phase.

    Appends go to both sides with the same event identities, so either side (and a backfill) stores an event
    once. A tail follows the side that served reads when it started.
    """

    def __init__(
        self,
        cell: PhaseCell,
        source: SqlTimeSeries[M],
        target: SqlTimeSeries[M] | TimeSeriesBackend[M],
        control: SqlDriver,
    ) -> None:
        super().__init__(cell, source.spec, control)
        self.source = source
        self.target = target
        # An encrypted series is written to the second side as the first side sealed it (as the KeyValue
        # layer does), so both hold the same ciphertext under the same keys: between SQL backends only.
        pii = self.spec.protects_pii
        if pii and not isinstance(target, SqlTimeSeries):
            raise ConfigError(
                f"migration {self._ns!r}: an encrypted series moves between SQL backends only (its ciphertext "
                "and keys are copied as stored); a stream target is not supported for it yet"
            )
        sql_target = target if isinstance(target, SqlTimeSeries) else None
        self._forward = RowCopier(self.spec, source.driver, sql_target.driver) if pii and sql_target else None
        self._backward = (
            RowCopier(self.spec, sql_target.driver, source.driver) if pii and sql_target else None
        )

    async def _record(self) -> None:
        if self._forward is not None:
            await self._forward.seed_keys()  # before the target opens its keyring, which would make a root
        await self.source.prepare()
        if isinstance(self.target, SqlTimeSeries):
            await self.target.prepare()
        await ensure_row(self._control, self.cell.migration, spec_to_json(self.spec))
        self._recorded = True

    def _primary(self) -> SqlTimeSeries[M] | TimeSeriesBackend[M]:
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
        if copier is None or not isinstance(first, SqlTimeSeries):
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
        if self.shadows():
            return self._shadow_query(key, start_ns, end_ns, limit)
        return self._primary().query(key, start_ns, end_ns, limit)

    async def _shadow_query(
        self, key: Any, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> AsyncIterator[M]:
        if not self._recorded:
            await self._record()
        got, other = await both(
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
    db: MigratingDatabase, cell: PhaseCell, spec: EntitySpec, message: type[M]
) -> MirroredTimeSeries[M]:
    """Return the routing layer of a migrating TimeSeries namespace: an SQL source, an SQL or stream target."""
    migration = cell.migration
    source = sql_end(db, migration.source, spec.namespace)
    backend = db.named_backend(migration.target)
    target: SqlTimeSeries[M] | TimeSeriesBackend[M]
    if runs_sql(backend):
        target = SqlTimeSeries(spec, message, backend)
    else:
        target = cast(ServesTimeSeries, db.serving(spec, migration.target)).timeseries(spec, message)
    return MirroredTimeSeries(
        cell, SqlTimeSeries(spec, message, source), target, control_driver(db, migration)
    )
