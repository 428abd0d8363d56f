"""SQLite: the embedded default. One connection on one worker thread, so the event loop never blocks."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from prism_runtime.config import BackendUrl, sqlite_path
from prism_runtime.errors import BackendError, BackendUnavailable
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.dialects import SqliteDialect
from prism_runtime.sql.driver import UNREADABLE, Row, Statement, verify_columns
from prism_runtime.sql.serving import ServesSqlAbstractions
from prism_runtime.sql.statements import KeyValueStatements

T = TypeVar("T")
M = TypeVar("M", bound=Message)

_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1
# sqlite3's error for TEXT that is not UTF-8; the rest of its message quotes the text.
_NOT_UTF8 = "Could not decode to UTF-8"


class SqliteDriver(ServesSqlAbstractions):
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

    async def execute_many(
        self, sql: str, rows: Sequence[Row], *, namespace: str, after: Sequence[Statement] = ()
    ) -> None:
        """Run one statement per row, then the `after` statements, inside one transaction."""

        def work() -> None:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                conn.executemany(sql, rows)
                for statement, more in after:
                    conn.executemany(statement, more)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._run(work, namespace=namespace)

    async def upsert_many(
        self,
        statements: KeyValueStatements,
        rows: Sequence[Row],
        *,
        namespace: str,
        after: Sequence[Statement] = (),
    ) -> None:
        """Upsert rows with executemany in one transaction: SQLite has no faster path."""
        await self.execute_many(statements.upsert, rows, namespace=namespace, after=after)

    async def execute_script(self, statements: Sequence[str], *, namespace: str) -> None:
        """Run statements in order inside one transaction."""

        def work() -> None:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                for statement in statements:
                    conn.execute(statement)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._run(work, namespace=namespace)

    async def fetch(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query and return all rows."""
        return await self._run(
            lambda: self._readable(lambda c: c.execute(sql, args).fetchall()), namespace=namespace
        )

    async def fetch_first(
        self, sql: str, args: Row, decode: Callable[[Row], T], *, namespace: str
    ) -> T | None:
        """Run a query and return its first row through `decode`, or None."""
        row: Row | None = await self._run(
            lambda: self._readable(lambda c: c.execute(sql, args).fetchone()), namespace=namespace
        )
        return None if row is None else decode(row)

    def _readable(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run `query`; where a TEXT value is not UTF-8 (written by another tool), run it again with UNREADABLE
        in its place, so the row decoder names the row instead of the whole read failing."""
        conn = self.conn
        try:
            return query(conn)
        except sqlite3.OperationalError as error:
            if not str(error).startswith(_NOT_UTF8):
                raise
        conn.text_factory = _text_or_unreadable
        try:
            return query(conn)
        finally:
            conn.text_factory = str

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
        verify_columns(spec, present, self.name, "")


def _safe(error: Exception) -> str:
    # sqlite3 messages name constraints and columns, never bound values; only the UTF-8 one quotes stored text.
    text = str(error)
    if text.startswith(_NOT_UTF8):
        text = text.split(" with text ", 1)[0]
    return f"{type(error).__name__}: {text}"


def _text_or_unreadable(data: bytes) -> object:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return UNREADABLE


def open_backend(url: BackendUrl) -> SqliteDriver:
    """Return the SQLite backend of `url`, not yet opened."""
    return SqliteDriver(url)
