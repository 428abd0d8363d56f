"""The routing layer of a migrating Graph edge type (see prism_runtime.migrations.mirror)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from prism_runtime.graph import Direction
from prism_runtime.migrations.control import MigratingDatabase, PhaseCell, control_driver, sql_end
from prism_runtime.migrations.mirror import MirroredKeyValue
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.graph import SqlGraph

M = TypeVar("M", bound=Message)
T = TypeVar("T")


class MirroredGraph(Generic[M]):
    """A GraphBackend routing one edge type between its migration's source and target by phase.

    An edge table is a sorted map (source, then target): its writes, deletes and point reads are the KeyValue
    routing layer's; traversals run on the phase's read side, with the node table of the same backend (so a
    node namespace and its edges migrate together, in the same phase).
    """

    def __init__(self, cell: PhaseCell, source: SqlGraph[M], target: SqlGraph[M], control: SqlDriver) -> None:
        self.cell = cell
        self.source = source
        self.target = target
        self.edges_kv = MirroredKeyValue(cell, source.store, target.store, control)

    def _primary(self) -> SqlGraph[M]:
        return self.source if self.edges_kv.reads_from_source() else self.target

    async def put_edges(self, edges: Sequence[M]) -> None:
        """Put edges on the first side, then on the second."""
        await self.edges_kv.put(edges)

    async def get_edge(self, source: Any, target: Any) -> M | None:
        """Return the edge from the phase's read side (compared with the target, sampled)."""
        return await self.edges_kv.get((source, target))

    async def delete_edge(self, source: Any, target: Any) -> int:
        """Delete the edge on the first side, then on the second (with a tombstone on the target)."""
        return await self.edges_kv.delete((source, target))

    async def expand(
        self,
        frontier: Sequence[Any],
        *,
        direction: Direction,
        edge_filter: Mapping[str, Any],
        node_filter: Mapping[str, Any],
        fanout: int | None,
    ) -> list[tuple[Any, Any]]:
        """Return one hop from the phase's read side (compared with the target, sampled)."""

        def hop(side: SqlGraph[M]) -> Awaitable[list[tuple[Any, Any]]]:
            return side.expand(
                frontier, direction=direction, edge_filter=edge_filter, node_filter=node_filter, fanout=fanout
            )

        if self.edges_kv.shadows():
            return await self.edges_kv.shadow(hop(self.source), hop(self.target), None)
        return await hop(self._primary())

    async def edges(
        self, node: Any, *, direction: Direction, edge_filter: Mapping[str, Any], limit: int | None
    ) -> list[M]:
        """Return the edges at `node` from the phase's read side (compared with the target, sampled)."""

        def at(side: SqlGraph[M]) -> Awaitable[list[M]]:
            return side.edges(node, direction=direction, edge_filter=edge_filter, limit=limit)

        if self.edges_kv.shadows():
            return await self.edges_kv.shadow(at(self.source), at(self.target), None)
        return await at(self._primary())


def mirrored_graph(
    db: MigratingDatabase, cell: PhaseCell, spec: EntitySpec, message: type[M], node_spec: EntitySpec | None
) -> MirroredGraph[M]:
    """Return the routing layer of a migrating edge type, over both ends' SQL backends."""
    migration = cell.migration
    source, target = (sql_end(db, name, spec.namespace) for name in (migration.source, migration.target))
    return MirroredGraph(
        cell,
        SqlGraph(spec, message, source, node_spec),
        SqlGraph(spec, message, target, node_spec),
        control_driver(db, migration),
    )
