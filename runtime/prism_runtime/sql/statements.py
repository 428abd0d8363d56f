"""The DML an SQL KeyValue store runs, rendered once per (entity, dialect)."""

from __future__ import annotations

from dataclasses import dataclass

from prism_runtime.schema import EXPIRES_AT_COLUMN, Column, EntitySpec
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.names import table_name


@dataclass(frozen=True)
class KeyValueStatements:
    """Every statement of the KeyValue contract for one table."""

    upsert: str
    upsert_tail: str  # "ON CONFLICT (...) DO UPDATE SET ...", shared by the VALUES and SELECT forms
    select_columns: str
    table: str
    key: str
    sort_key: str | None
    key_columns: tuple[Column, ...]
    columns: tuple[Column, ...]
    dialect: SqlDialect
    expires: str | None = None  # the quoted expiry column of an entity with a TTL

    # Every read of an entity with a TTL hides expired rows with one predicate, `live`, bound to the caller's
    # clock (so a test, or a store, decides what "now" is); the methods below take it as their last
    # parameter before any LIMIT.

    def live(self, index: int) -> str:
        """Return the predicate keeping rows unexpired at the epoch milliseconds bound as parameter `index`."""
        assert self.expires is not None
        return f"({self.expires} IS NULL OR {self.expires} > {self.dialect.placeholder(index)})"

    def upsert_from(self, source: str) -> str:
        """Return the upsert of every row of table `source` (same columns), for bulk loads."""
        return (
            f"INSERT INTO {self.table} ({self.select_columns}) SELECT {self.select_columns} FROM {source} "
            f"{self.upsert_tail}"
        )

    def upsert_rows(self, count: int) -> str:
        """Return the upsert of `count` rows in one statement: one VALUES list per row, parameters row by row."""
        width = len(self.columns)
        place = self.dialect.placeholder
        rows = ", ".join(
            "(" + ", ".join(place(r * width + c + 1) for c in range(width)) + ")" for r in range(count)
        )
        return f"INSERT INTO {self.table} ({self.select_columns}) VALUES {rows} {self.upsert_tail}"

    def get(self) -> str:
        """Return the point lookup by full primary key."""
        width = len(self._keys)
        where = self._key_predicate(width)
        if self.expires is not None:
            where += f" AND {self.live(width + 1)}"
        return f"SELECT {self.select_columns} FROM {self.table} WHERE {where}"

    def get_many(self, count: int, params: int) -> str:
        """Return the lookup of `count` primary keys at once, bound to `params` parameters (then now, if any)."""
        sql = self.dialect.batch_lookup(self.select_columns, self.table, self._keys, self.key_columns, count)
        return sql if self.expires is None else f"{sql} AND {self.live(params + 1)}"

    def find(self, column: str, *, after: bool, limit: bool) -> str:
        """Return the items whose `column` equals parameter 1, in key order, past the full key `after`."""
        ph = self.dialect.placeholder
        conditions = [f"{self.dialect.quote(column)} = {ph(1)}"]
        n = 1
        keys = self._keys
        if after:
            marks = ", ".join(ph(n + 1 + i) for i in range(len(keys)))
            n += len(keys)
            conditions.append(f"({', '.join(keys)}) > ({marks})" if len(keys) > 1 else f"{keys[0]} > {marks}")
        if self.expires is not None:
            n += 1
            conditions.append(self.live(n))
        sql = f"SELECT {self.select_columns} FROM {self.table} WHERE {' AND '.join(conditions)}"
        return f"{sql} ORDER BY {', '.join(keys)} LIMIT {ph(n + 1)}" if limit else sql

    def purge(self) -> str:
        """Return the delete of at most parameter 2 rows expired at the epoch milliseconds of parameter 1."""
        return purge_statement(self.dialect, self.table)

    def delete(self, prefix: int) -> str:
        """Return the delete by the first `prefix` key columns."""
        return f"DELETE FROM {self.table} WHERE {self._key_predicate(prefix)}"

    def scan(self, *, prefix: int, after: bool, inclusive: bool, end: bool, reverse: bool) -> str:
        """Return one keyset page over the key column after the first `prefix` key columns."""
        keys = self._keys
        order_column = keys[prefix]
        conditions = [f"{keys[i]} = {self.dialect.placeholder(i + 1)}" for i in range(prefix)]
        n = prefix
        if after:
            n += 1
            op = ("<" if reverse else ">") + ("=" if inclusive else "")
            conditions.append(f"{order_column} {op} {self.dialect.placeholder(n)}")
        if end:
            n += 1
            conditions.append(f"{order_column} {'>' if reverse else '<'} {self.dialect.placeholder(n)}")
        if self.expires is not None:
            n += 1
            conditions.append(self.live(n))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        direction = "DESC" if reverse else "ASC"
        limit = self.dialect.placeholder(n + 1)
        return f"SELECT {self.select_columns} FROM {self.table}{where} ORDER BY {order_column} {direction} LIMIT {limit}"

    @property
    def _keys(self) -> list[str]:
        return [self.key] if self.sort_key is None else [self.key, self.sort_key]

    def _key_predicate(self, count: int) -> str:
        return " AND ".join(
            f"{k} = {self.dialect.placeholder(i + 1)}" for i, k in enumerate(self._keys[:count])
        )


def purge_statement(dialect: SqlDialect, table: str) -> str:
    """Return the delete of at most parameter 2 rows of the quoted `table` expired at parameter 1 (epoch ms)."""
    where = f"{dialect.quote(EXPIRES_AT_COLUMN)} <= {dialect.placeholder(1)}"
    return dialect.delete_some(table, where, dialect.placeholder(2))


def keyvalue_statements(spec: EntitySpec, dialect: SqlDialect) -> KeyValueStatements:
    """Render the KeyValue statements of an entity."""
    q = dialect.quote
    names = [c.name for c in spec.columns]
    keys = [c.name for c in spec.key_columns]
    columns = ", ".join(q(n) for n in names)
    values = ", ".join(dialect.placeholder(i + 1) for i in range(len(names)))
    updates = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in names if n not in keys)
    conflict = ", ".join(q(k) for k in keys)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    table = q(table_name(spec))
    tail = f"ON CONFLICT ({conflict}) {action}"
    return KeyValueStatements(
        upsert=f"INSERT INTO {table} ({columns}) VALUES ({values}) {tail}",
        upsert_tail=tail,
        select_columns=columns,
        table=table,
        key=q(spec.key),
        sort_key=q(spec.sort_key) if spec.sort_key else None,
        key_columns=spec.key_columns,
        columns=spec.columns,
        dialect=dialect,
        expires=q(spec.columns[-1].name) if spec.expires else None,
    )
