"""What every SQL driver serves: the three abstractions over the shared SQL implementations.

A driver class inherits this and says only how it talks to its server (the SqlDriver methods).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message

from prism_runtime.schema import EntitySpec
from prism_runtime.sql.graph import SqlGraph
from prism_runtime.sql.keyvalue import SqlKeyValue
from prism_runtime.sql.timeseries import SqlTimeSeries

M = TypeVar("M", bound=Message)


class ServesSqlAbstractions:
    """KeyValue, TimeSeries and Graph for a driver that implements the SqlDriver protocol (its registry entry,
    prism_runtime.backends.registry, says it serves all three)."""

    def keyvalue(self, spec: EntitySpec, message: type[M]) -> SqlKeyValue[M]:
        """Return the KeyValue backend of one entity."""
        return SqlKeyValue(spec, message, self._driver())

    def timeseries(self, spec: EntitySpec, message: type[M]) -> SqlTimeSeries[M]:
        """Return the TimeSeries backend of one entity."""
        return SqlTimeSeries(spec, message, self._driver())

    def graph(self, spec: EntitySpec, message: type[M], node_spec: EntitySpec | None) -> SqlGraph[M]:
        """Return the Graph backend of one edge type."""
        return SqlGraph(spec, message, self._driver(), node_spec)

    async def fetch_few(self, sql: str, args: Sequence[Any], *, namespace: str) -> list[Sequence[Any]]:
        """Run a query of a few rows by key: a plain `fetch` unless the driver has a faster path for it."""
        rows: list[Sequence[Any]] = await self._driver().fetch(sql, args, namespace=namespace)
        return rows

    def _driver(self) -> Any:
        return self  # the subclass is the SqlDriver
