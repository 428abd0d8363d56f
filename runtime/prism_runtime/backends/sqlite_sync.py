"""SQLite for blocking callers (`connect_sync`): sqlite3 on the caller's thread, one connection per thread.

Everything but the execute step is SqliteDriver's: the statements, transactions, chained audit writes, the
reading of text that is not UTF-8, the column checks before DDL, the error types. Where the async driver hands
a statement to its worker thread, this one runs it at once on the calling thread, so its coroutines never
suspend and `prism_runtime.drive.drive` runs them to their end (see that module).

Threads: each thread that uses the database gets its own connection, opened on its first statement with the
same settings as the async driver's (WAL, synchronous=NORMAL, the busy timeout); writers on different threads
wait for each other through SQLite's own lock, as separate processes do. `close()` closes every connection
it opened. An in-memory database (`sqlite://`) is one database per connection, so there every thread shares
one connection, one statement at a time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from prism_runtime.backends.sqlite import _NOT_UTF8, SqliteDriver, connect_file
from prism_runtime.config import BackendUrl
from prism_runtime.errors import BackendUnavailable
from prism_runtime.sql.driver import Row

T = TypeVar("T")


class SqliteSyncDriver(SqliteDriver):
    """The SqlDriver of one SQLite file for blocking callers: statements run on the caller's thread."""

    def __init__(self, url: BackendUrl) -> None:
        super().__init__(url)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._is_open = False
        # In memory: the one shared connection and the lock that gives it to one statement at a time.
        self._shared: threading.RLock | None = threading.RLock() if self.path == ":memory:" else None

    async def open(self) -> None:
        """Open this thread's connection: it creates the file and turns on WAL before any other thread reads."""
        self._is_open = True
        try:
            self._connect()
        except sqlite3.DatabaseError as error:
            self._is_open = False
            raise self.typed(error, "") from None
        except BaseException:
            self._is_open = False
            raise

    async def close(self) -> None:
        """Close every thread's connection; the driver can be opened again."""
        with self._guard:
            self._is_open = False
            opened, self._opened = self._opened, []
            self._local = threading.local()
        for conn in opened:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        with self._guard:
            if not self._is_open:
                raise BackendUnavailable("the database is closed", backend=self.name)
            if self._shared is not None and self._opened:
                return self._opened[0]  # never this thread's own: fetch_first's fast path must not take it
            conn = connect_file(self.path, self.name)
            self._opened.append(conn)
        if self._shared is None:
            self._local.conn = conn
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on the thread's first statement."""
        try:
            conn: sqlite3.Connection = self._local.conn
        except AttributeError:
            return self._connect()
        return conn

    async def _run(self, fn: Callable[[], T], *, namespace: str) -> T:
        try:
            if self._shared is None:
                return fn()
            with self._shared:
                return fn()
        except sqlite3.DatabaseError as error:
            raise self.typed(error, namespace) from None

    async def fetch_first(
        self, sql: str, args: Row, decode: Callable[[Row], T], *, namespace: str
    ) -> T | None:
        """Run a point query on this thread's connection and return its first row through `decode`, or None."""
        try:
            conn: sqlite3.Connection = self._local.conn
        except AttributeError:
            pass  # this thread's first statement, or the shared in-memory connection: the general path
        else:
            try:
                # fetchall: the statement runs to its end, so no read transaction stays open past this line.
                rows = conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as error:
                if not str(error).startswith(_NOT_UTF8):
                    raise self.typed(error, namespace) from None
            except sqlite3.DatabaseError as error:
                raise self.typed(error, namespace) from None
            else:
                return decode(rows[0]) if rows else None
        # Also text that is not UTF-8: the general path reads it as UNREADABLE, for the decoder to name the row.
        found = await self._run(
            lambda: self._readable(lambda c: c.execute(sql, args).fetchall()), namespace=namespace
        )
        return decode(found[0]) if found else None

    async def fetch_few(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query of a few rows by key (no faster path than `fetch` here)."""
        return await self.fetch(sql, args, namespace=namespace)
