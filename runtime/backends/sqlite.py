"""SQLite: the embedded default. One connection on one worker thread, so the event loop never blocks."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from google.protobuf.message import Message
from sqlglot import exp

from prism_runtime.config import BackendUrl, sqlite_path
from prism_runtime.errors import BackendError, BackendUnavailable, SchemaMismatch
from prism_runtime.schema import Column, ColumnKind, EntitySpec
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.driver import Row
from prism_runtime.sql.keyvalue import SqlKeyValue

T = TypeVar("T")
M = TypeVar("M", bound=Message)

_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


class SqliteDialect(SqlDialect):
    """SQLite's storage classes; what SQLite cannot hold natively is stored losslessly and readably."""

    name = "sqlite"
    types: ClassVar[dict[ColumnKind, str]] = {
        ColumnKind.INT32: "INTEGER",
        ColumnKind.INT64: "INTEGER",
        ColumnKind.UINT64: "INTEGER",
        ColumnKind.FLOAT: "REAL",
        ColumnKind.DOUBLE: "REAL",
        ColumnKind.BOOL: "INTEGER",
        ColumnKind.STRING: "TEXT",
        ColumnKind.BYTES: "BLOB",
        ColumnKind.ENUM: "INTEGER",
        ColumnKind.TIMESTAMP: "TEXT",
        ColumnKind.JSON: "TEXT",
    }
    max_identifier_length = 63  # SQLite has no limit; keep names portable to Postgres

    def encode_uint64(self, value: int) -> Any:
        """Store uint64 above 2^63-1 in two's complement: SQLite INTEGER is signed 64-bit."""
        return value - _U64 if value > _I64_MAX else value

    def decode_uint64(self, value: Any) -> int:
        """Undo the two's complement of `encode_uint64`."""
        return int(value) + _U64 if value < 0 else int(value)

    def encode_float(self, value: float) -> Any:
        """Store NaN as the text 'NaN': SQLite turns a NaN REAL into NULL."""
        return value if not math.isnan(value) else "NaN"

    def encode_bool(self, value: bool) -> Any:
        """Store bools as 0 and 1."""
        return int(value)

    def default(self, column: Column) -> exp.Expression:
        """Return the zero value as SQLite stores it (bools are integers, bytes are blobs)."""
        if column.kind is ColumnKind.BOOL:
            return exp.Literal.number(0)
        if column.kind is ColumnKind.BYTES:
            return exp.HexString(this="")
        return super().default(column)

    def append_only(self, table: str) -> list[str]:
        """Return triggers that abort any UPDATE or DELETE of `table`."""
        return [
            f"CREATE TRIGGER IF NOT EXISTS {self.quote(f'{table}__no_{op.lower()}')} BEFORE {op} ON "
            f"{self.quote(table)} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for op in ("UPDATE", "DELETE")
        ]


class SqliteDriver:
    """The SqlDriver of one SQLite database file."""

    dialect: SqlDialect = SqliteDialect()

    def __init__(self, url: BackendUrl) -> None:
        self.path = sqlite_path(url.url)
        self.name = f"sqlite ({self.path})"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prism-sqlite")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Open the file (creating it and its directory's file, not the directory) in WAL mode."""
        await self._run(self._open_sync, namespace="")

    def _open_sync(self) -> None:
        if self.path != ":memory:" and not Path(self.path).parent.exists():
            raise BackendUnavailable(
                f"directory {str(Path(self.path).parent)!r} does not exist", backend=self.name
            )
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # WAL lets readers run during a write; NORMAL syncs at checkpoints, which WAL keeps consistent.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        self._conn = conn

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    def keyvalue(self, spec: EntitySpec, message: type[M]) -> SqlKeyValue[M]:
        """Return the KeyValue backend of one entity."""
        return SqlKeyValue(spec, message, self)

    async def _run(self, fn: Callable[[], T], *, namespace: str) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.OperationalError as error:
            raise BackendError(_safe(error), namespace=namespace, backend=self.name) from None
        except sqlite3.DatabaseError as error:
            raise BackendError(_safe(error), namespace=namespace, backend=self.name) from None

    @property
    def conn(self) -> sqlite3.Connection:
        """Return the open connection."""
        if self._conn is None:
            raise BackendUnavailable("the database is closed", backend=self.name)
        return self._conn

    async def execute(self, sql: str, args: Row, *, namespace: str) -> int:
        """Run one statement in autocommit mode."""
        return await self._run(lambda: self.conn.execute(sql, args).rowcount, namespace=namespace)

    async def execute_many(self, sql: str, rows: Sequence[Row], *, namespace: str) -> None:
        """Run one statement per row inside one transaction."""

        def work() -> None:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                conn.executemany(sql, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._run(work, namespace=namespace)

    async def fetch(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query and return all rows."""
        return await self._run(lambda: self.conn.execute(sql, args).fetchall(), namespace=namespace)

    async def prepare_table(self, spec: EntitySpec, ddl: Sequence[str]) -> None:
        """Create the table and indexes if missing, then check that every column is there."""

        def work() -> list[str]:
            conn = self.conn
            for statement in ddl:
                conn.execute(statement)
            return [
                row[1] for row in conn.execute(f"PRAGMA table_info({self.dialect.quote(spec.namespace)})")
            ]

        present = set(await self._run(work, namespace=spec.namespace))
        missing = [c.name for c in spec.columns if c.name not in present]
        if missing:
            raise SchemaMismatch(
                f"table {spec.namespace!r} lacks columns {', '.join(missing)}",
                namespace=spec.namespace,
                backend=self.name,
                hint="migrate it with `prism migrate` or start from a new database file",
            )


def _safe(error: Exception) -> str:
    # sqlite3 messages name constraints and columns, never bound values.
    return f"{type(error).__name__}: {error}"


def open_backend(url: BackendUrl) -> SqliteDriver:
    """Return the SQLite backend of `url`, not yet opened."""
    return SqliteDriver(url)
