"""The few operations an SQL backend's driver provides; everything else is shared SQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from prism_runtime.errors import SchemaMismatch
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.dialect import ServingDialect
from prism_runtime.sql.names import stored_columns
from prism_runtime.sql.statements import KeyValueStatements

T = TypeVar("T")
Row = Sequence[Any]
Statement = tuple[str, Sequence[Row]]
"""A statement and the rows to run it for: what a write carries along into its transaction (audit entries)."""


@dataclass(frozen=True)
class Chained:
    """Statements that extend a chain, built inside the write's transaction from the head read there.

    The driver runs `lock` (if any) once the transaction holds its write lock, then the `head` query, and
    then the statements `build(rows of head)` returns. Writers are serialised from the lock to the commit,
    so two of them can never build on the same head; `build` may raise to abort the transaction.
    """

    lock: str | None
    head: str
    build: Callable[[Sequence[Row]], Sequence[Statement]]


After = Statement | Chained
"""What a write runs after its own statements, in its transaction."""


class Unreadable:
    """The stand-in a driver puts in a fetched row for a stored value it cannot decode (TEXT that is not UTF-8).

    No field accepts it, so the row decoder raises CorruptRow naming the row.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unreadable>"


UNREADABLE = Unreadable()


@runtime_checkable
class SqlDriver(Protocol):
    """A connection (or pool) to one SQL server; raises BackendError subclasses naming the namespace."""

    dialect: ServingDialect
    name: str
    """The backend as errors name it: kind and redacted location."""

    async def execute(self, sql: str, args: Row, *, namespace: str) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    async def execute_many(
        self, sql: str, rows: Sequence[Row], *, namespace: str, after: Sequence[After] = ()
    ) -> None:
        """Run one statement for each row, then the `after` statements, in one transaction."""
        ...

    async def fetch(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query and return its rows."""
        ...

    async def fetch_few(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query that reads a few rows through an index (some keys, one node's hop) and return them.

        The same as `fetch`, except that the driver may run it on the caller's thread where that cannot
        block (SQLite's reader on the event loop; see prism_runtime.backends.sqlite).
        """
        ...

    async def fetch_first(
        self, sql: str, args: Row, decode: Callable[[Row], T], *, namespace: str
    ) -> T | None:
        """Run a query and return its first row through `decode`, or None when it returns none.

        The point read's whole trip in one coroutine: a get awaits this and nothing else.
        """
        ...

    async def upsert_many(
        self,
        statements: KeyValueStatements,
        rows: Sequence[Row],
        *,
        namespace: str,
        after: Sequence[After] = (),
    ) -> None:
        """Insert or replace many rows (distinct keys), then run `after`, in one transaction, by the fastest
        path the server has."""
        ...

    async def execute_script(self, statements: Sequence[str], *, namespace: str) -> None:
        """Run statements in order inside one transaction: all of them or none.

        Scripts are DDL and bookkeeping; they hold the same lock as `setup_table`, so every process's scripts
        and setups run one after another.
        """
        ...

    async def prepare_table(self, spec: EntitySpec, ddl: Sequence[str]) -> None:
        """Make the entity's table usable: create it (embedded backends) or check it exists.

        An existing table is checked before any DDL runs: a table lacking a column raises SchemaMismatch
        having changed nothing (an index on a missing column must never be attempted).
        """
        ...

    async def setup_table(self, spec: EntitySpec, ddl: Sequence[str]) -> None:
        """Create one of Prism's own tables (and what `ddl` adds to it) unless it is there, on any backend.

        Like `prepare_table`, an existing table's columns are checked before any DDL runs. The check and
        the DDL hold a lock every process takes for setup (an advisory lock on Postgres, the write lock on
        SQLite), so processes making the same objects at once run one after the other.
        """
        ...


def verify_columns(spec: EntitySpec, present: set[str], backend: str, hint: str) -> None:
    """Raise SchemaMismatch naming what is missing when the table lacks (or lacks columns of) `spec`."""
    if not present:
        raise SchemaMismatch(
            f"table {spec.namespace!r} does not exist", namespace=spec.namespace, backend=backend, hint=hint
        )
    missing = [name for name in stored_columns(spec) if name not in present]
    if missing:
        raise SchemaMismatch(
            f"table {spec.namespace!r} lacks columns {', '.join(missing)}",
            namespace=spec.namespace,
            backend=backend,
            hint="apply the migrations from `prism migrate` with `prism provision`",
        )
