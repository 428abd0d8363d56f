"""The Graph contract over any SQL driver: edges stored like a sorted KeyValue map, hops as one query each.

An edge table is keyed by (source, target), with an index on (target, source); see sql/ddl.py. One hop
from a whole frontier is one statement per batch of frontier nodes: the per-node fan-out limit is a
ROW_NUMBER() window partitioned by the node, so no node's neighbors crowd out another's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from google.protobuf.message import Message

from prism_runtime.drive import SetupLock
from prism_runtime.graph import Direction
from prism_runtime.schema import ColumnKind, EntitySpec
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.keyvalue import SqlKeyValue
from prism_runtime.sql.names import table_name

M = TypeVar("M", bound=Message)

# Frontier nodes per hop statement: with both directions each is bound twice, well under every
# backend's bind-parameter limit.
_BATCH = 500
# Kinds an equality filter can compare as stored: not JSON documents, not timestamps given as messages.
_FILTERABLE = frozenset(ColumnKind) - {ColumnKind.JSON, ColumnKind.TIMESTAMP}
# A hop or edge list bounded to this many rows is "a few rows by key" (SqlDriver.fetch_few): SQLite serves it
# on the event loop's thread.
_FEW_ROWS = 256


class _Args:
    """Bind values of one statement, numbering placeholders as the dialect wants them."""

    def __init__(self, dialect: SqlDialect) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def bind(self, value: Any) -> str:
        """Add a value; return its placeholder."""
        self.values.append(value)
        return self.dialect.placeholder(len(self.values))


class _Filter:
    """Equality conditions on one entity's columns, checked against its spec and encoded for the dialect."""

    def __init__(self, spec: EntitySpec, dialect: SqlDialect, what: str) -> None:
        self.spec = spec
        self.what = what
        self.encoders = {
            c.name: dialect.encoder(c)
            for c in spec.columns
            # Ciphertext never equals a clear value: encrypted fields are found through find_by_<field>.
            if c.kind in _FILTERABLE and not c.repeated and not c.encrypted and not c.blind_index_of
        }
        self.quote = dialect.quote

    def conditions(self, alias: str, values: Mapping[str, Any], args: _Args) -> list[str]:
        """Return `alias.column = ?` for every filtered field, binding the encoded values."""
        out = []
        for name, value in values.items():
            encode = self.encoders.get(name)
            if encode is None:
                raise ValueError(
                    f"{self.what} filter on {self.spec.message_name}: {name!r} is not a filterable field; "
                    f"allowed: {', '.join(sorted(self.encoders))}"
                )
            out.append(f"{alias}.{self.quote(name)} = {args.bind(encode(value))}")
        return out


class SqlGraph(Generic[M]):
    """One edge type's Graph operations on one SQL driver."""

    def __init__(
        self, spec: EntitySpec, message: type[M], driver: SqlDriver, node_spec: EntitySpec | None = None
    ) -> None:
        if spec.edge_source is None or spec.edge_target is None:
            raise ValueError(
                f"{spec.message_name} is not a graph edge: it has no edge_source and edge_target"
            )
        self.spec = spec
        self.node_spec = node_spec
        self.driver = driver
        self.store = SqlKeyValue(spec, message, driver)
        dialect = driver.dialect
        q = dialect.quote
        self._table = q(table_name(spec))
        self._source = q(spec.edge_source)
        self._target = q(spec.edge_target)
        self._edge_filter = _Filter(spec, dialect, "edge")
        self._node_filter = _Filter(node_spec, dialect, "node") if node_spec is not None else None
        self._node_table = q(table_name(node_spec)) if node_spec is not None else ""
        self._node_key = q(node_spec.key) if node_spec is not None else ""
        self._ns = spec.namespace
        self._ready = False
        self._ready_lock = SetupLock()

    async def _prepare(self) -> None:
        async with self._ready_lock:
            if not self._ready:
                for spec in (self.spec, self.node_spec):
                    if spec is not None:
                        await self.driver.prepare_table(spec, spec.ddl_for(self.driver.dialect.name))
                self._ready = True

    async def put_edges(self, edges: Sequence[M]) -> None:
        """Insert or replace edges atomically."""
        await self.store.put(edges)

    async def get_edge(self, source: Any, target: Any) -> M | None:
        """Return the edge from `source` to `target`, or None."""
        return await self.store.get((source, target))

    async def delete_edge(self, source: Any, target: Any) -> int:
        """Delete the edge from `source` to `target`; return how many went."""
        return await self.store.delete((source, target))

    async def expand(
        self,
        frontier: Sequence[Any],
        *,
        direction: Direction,
        edge_filter: Mapping[str, Any],
        node_filter: Mapping[str, Any],
        fanout: int | None,
    ) -> list[tuple[Any, Any]]:
        """Return (node, neighbor) pairs of one hop from `frontier`, at most `fanout` per node."""
        if not self._ready:
            await self._prepare()
        pairs: list[tuple[Any, Any]] = []
        for start in range(0, len(frontier), _BATCH):
            args = _Args(self.driver.dialect)
            sql = self._hop_sql(
                frontier[start : start + _BATCH], direction, edge_filter, node_filter, fanout, args
            )
            few = fanout is not None and fanout * min(_BATCH, len(frontier) - start) <= _FEW_ROWS
            fetch = self.driver.fetch_few if few else self.driver.fetch
            # Rows are (node, neighbor) already: sqlite3 tuples, asyncpg records; no copy on the hot path.
            rows = await fetch(sql, args.values, namespace=self._ns)
            pairs.extend(cast("list[tuple[Any, Any]]", rows))
        return pairs

    async def edges(
        self, node: Any, *, direction: Direction, edge_filter: Mapping[str, Any], limit: int | None
    ) -> list[M]:
        """Return the edges at `node` in `direction`, ordered by the key at their other end."""
        if not self._ready:
            await self._prepare()
        args = _Args(self.driver.dialect)
        columns = self.store.sql.select_columns
        selects = []
        for near, far in self._sides(direction):
            where = [f"e.{near} = {args.bind(node)}", *self._edge_filter.conditions("e", edge_filter, args)]
            selects.append(
                f"SELECT {columns}, e.{far} AS prism_other FROM {self._table} AS e WHERE {' AND '.join(where)}"
            )
        # UNION, not UNION ALL: a self-loop read both ways is still one edge.
        sql = f"SELECT {columns} FROM ({' UNION '.join(selects)}) AS x ORDER BY prism_other"
        if limit is not None:
            sql += f" LIMIT {args.bind(limit)}"
        fetch = self.driver.fetch_few if limit is not None and limit <= _FEW_ROWS else self.driver.fetch
        rows = await fetch(sql, args.values, namespace=self._ns)
        return await self.store.decode_rows(rows)

    def _sides(self, direction: Direction) -> list[tuple[str, str]]:
        """Return the (near, far) column pairs a hop in `direction` reads."""
        out = (self._source, self._target)
        back = (self._target, self._source)
        return {Direction.OUT: [out], Direction.IN: [back], Direction.BOTH: [out, back]}[direction]

    def _hop_sql(
        self,
        frontier: Sequence[Any],
        direction: Direction,
        edge_filter: Mapping[str, Any],
        node_filter: Mapping[str, Any],
        fanout: int | None,
        args: _Args,
    ) -> str:
        if node_filter and self._node_filter is None:
            raise ValueError(f"{self.spec.message_name}: a node filter needs one node type at both ends")
        sides = []
        for near, far in self._sides(direction):
            marks = ", ".join(args.bind(n) for n in frontier)
            where = [f"e.{near} IN ({marks})", *self._edge_filter.conditions("e", edge_filter, args)]
            join = ""
            if node_filter and self._node_filter is not None:
                join = f" JOIN {self._node_table} AS n ON n.{self._node_key} = e.{far}"
                where += self._node_filter.conditions("n", node_filter, args)
            sides.append(
                f"SELECT e.{near} AS node, e.{far} AS neighbor FROM {self._table} AS e{join} WHERE {' AND '.join(where)}"
            )
        # UNION drops the pairs both directions find (a <-> b, self-loops): fan-out counts distinct neighbors.
        pairs = " UNION ".join(sides)
        if len(frontier) == 1:
            # One node: its neighbors in key order come straight off an index, no window needed.
            limit = "" if fanout is None else f" LIMIT {args.bind(fanout)}"
            return f"SELECT node, neighbor FROM ({pairs}) AS p ORDER BY neighbor{limit}"
        if fanout is None:
            return pairs  # a whole frontier's hop: the caller orders what it keeps
        ranked = (
            "SELECT node, neighbor, ROW_NUMBER() OVER (PARTITION BY node ORDER BY neighbor) AS prism_rank "
            f"FROM ({pairs}) AS p"
        )
        return f"SELECT node, neighbor FROM ({ranked}) AS r WHERE prism_rank <= {args.bind(fanout)}"
