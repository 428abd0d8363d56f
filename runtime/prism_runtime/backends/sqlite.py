"""SQLite: the embedded default. One connection on one worker thread, so the event loop never blocks."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from prism_runtime.backends.registry import BackendKind
from prism_runtime.config import BackendUrl, sqlite_path
from prism_runtime.errors import BackendError, BackendUnavailable, Contention
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.dialect import ServingDialect
from prism_runtime.sql.dialects import SqliteDialect
from prism_runtime.sql.driver import UNREADABLE, After, Chained, Row, verify_columns
from prism_runtime.sql.serving import ServesSqlAbstractions
from prism_runtime.sql.statements import KeyValueStatements

T = TypeVar("T")
M = TypeVar("M", bound=Message)

_U64 = 1 << 64
# A write transaction takes the write lock when it begins, waiting up to the busy timeout for it: a deferred
# BEGIN would take it at the first write instead, after reads that another writer may since have made stale.
_BEGIN_WRITE = "BEGIN IMMEDIATE"
_CONTENDED = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_I64_MAX = (1 << 63) - 1
# sqlite3's error for TEXT that is not UTF-8; the rest of its message quotes the text.
_NOT_UTF8 = "Could not decode to UTF-8"


class SqliteDriver(ServesSqlAbstractions):
    """The SqlDriver of one SQLite database file."""

    kind = BackendKind.SQLITE
    dialect: ServingDialect = SqliteDialect()

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
        _forbid_string_identifiers(conn)
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
            # Busy or locked past the busy timeout: another connection held the write lock all along.
            kind = Contention if error.sqlite_errorcode & 0xFF in _CONTENDED else BackendError
            raise kind(_safe(error), namespace=namespace, backend=self.name) from None
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
        self, sql: str, rows: Sequence[Row], *, namespace: str, after: Sequence[After] = ()
    ) -> None:
        """Run one statement per row, then the `after` statements, inside one write transaction."""

        def work() -> None:
            conn = self.conn
            conn.execute(_BEGIN_WRITE)
            try:
                conn.executemany(sql, rows)
                for item in after:
                    statements = [item] if not isinstance(item, Chained) else _chained(conn, item)
                    for statement, more in statements:
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
        after: Sequence[After] = (),
    ) -> None:
        """Upsert rows with executemany in one transaction: SQLite has no faster path."""
        await self.execute_many(statements.upsert, rows, namespace=namespace, after=after)

    async def execute_script(self, statements: Sequence[str], *, namespace: str) -> None:
        """Run statements in order inside one transaction."""

        def work() -> None:
            with self._write_transaction() as conn:
                for statement in statements:
                    conn.execute(statement)

        await self._run(work, namespace=namespace)

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front (waiting busy_timeout for it), so a transaction that reads
        # before it writes, as a schema check before DDL does, never sees another process change what it read.
        conn = self.conn
        conn.execute(_BEGIN_WRITE)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

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
        """Create the table and indexes if missing; an existing table's columns are checked first."""
        await self.setup_table(spec, ddl)

    async def setup_table(self, spec: EntitySpec, ddl: Sequence[str]) -> None:
        """Check an existing table's columns, then run `ddl` (CREATE ... IF NOT EXISTS), in one write transaction.

        The check comes first because SQLite reads a double-quoted name it cannot resolve as a string: an
        index on a column the table lacks would silently index that constant, and adding the column later
        turns it into a corrupt index. Nothing runs when a column is missing.
        """

        def work() -> None:
            with self._write_transaction() as conn:
                present = self._columns(conn, spec.namespace)
                if present:
                    verify_columns(spec, present, self.name, "")
                for statement in ddl:
                    conn.execute(statement)
                if not present:
                    verify_columns(spec, self._columns(conn, spec.namespace), self.name, "")

        await self._run(work, namespace=spec.namespace)

    def _columns(self, conn: sqlite3.Connection, table: str) -> set[str]:
        return {row[0] for row in conn.execute(self.dialect.table_columns(), (table,))}


def _forbid_string_identifiers(conn: sqlite3.Connection) -> None:
    """Turn off SQLite's double-quoted string literals, where this Python can (3.12+ has setconfig).

    With them off, a double-quoted name that resolves to nothing is an error instead of a string. Earlier
    Pythons rely on the column checks that precede every piece of DDL Prism runs.
    """
    setconfig = getattr(conn, "setconfig", None)
    for name in ("SQLITE_DBCONFIG_DQS_DDL", "SQLITE_DBCONFIG_DQS_DML"):
        option = getattr(sqlite3, name, None)
        if setconfig is not None and option is not None:
            setconfig(option, False)


def _chained(conn: sqlite3.Connection, chained: Chained) -> list[tuple[str, Sequence[Row]]]:
    """Read the chain's head in this transaction (which holds the write lock) and build what extends it."""
    if chained.lock is not None:
        conn.execute(chained.lock)
    return list(chained.build(conn.execute(chained.head).fetchall()))


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
