"""SQLite: the embedded default. Writes and scans on one worker thread; point reads on the event loop's own.

Two connections to the file. The writer lives on a worker thread, so no write, scan or lock wait ever runs on
the event loop. The reader is used on the loop thread for reads of a few rows by key (`fetch_first`,
`fetch_few`): in WAL mode a reader takes no lock a writer holds, so such a read costs microseconds, where a
hop to the worker costs tens of them. The reader can never hold the loop for long: its busy timeout is zero
(a read that would wait for a lock fails at once), a progress handler abandons a statement that runs past a
small time budget, and a value longer than LOOP_READ_MAX_VALUE fails before it is copied; in each case the
read is run again on the worker, as every read was before.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from time import monotonic, perf_counter, sleep
from typing import TypeVar

from google.protobuf.message import Message

from prism_runtime.backends.registry import BackendKind
from prism_runtime.config import BackendUrl, sqlite_path
from prism_runtime.errors import BackendError, BackendUnavailable, Contention
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.dialect import ServingDialect
from prism_runtime.sql.dialects import SqliteDialect
from prism_runtime.sql.driver import UNREADABLE, After, Chained, Row, verify_columns
from prism_runtime.sql.keyvalue import EncodedRows
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
# A read on the loop thread may run this long before SQLite abandons it and it runs again on the worker; the
# progress handler that checks it runs every _PROGRESS_STEPS virtual machine steps (a point read takes fewer
# than a hundred, so it never runs for one).
LOOP_READ_BUDGET = 0.0005
_PROGRESS_STEPS = 1000
# The longest TEXT or BLOB value a read on the loop thread copies: SQLite fails a longer one (SQLITE_TOOBIG)
# before reading its overflow pages, and the read runs again on the worker. Copying and decoding a value
# costs about 1 ms per MB here (bench/bench_loop_lag.py: 0.6 ms for a 1 MB string, 11 ms for 10 MB); at
# 64 KiB a value costs the loop tens of microseconds.
LOOP_READ_MAX_VALUE = 1 << 16
# Why reads meant for the loop thread ran on the worker instead, by SQLite's primary result code.
_FALLBACK_REASONS = {
    sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy",
    sqlite3.SQLITE_INTERRUPT: "budget",
    sqlite3.SQLITE_TOOBIG: "too_big",
}
# How long a write waits for another connection's write lock before it fails with Contention.
BUSY_TIMEOUT_MS = 5000
MAX_VARIABLES = 999
"""The most parameters one statement binds: SQLite's limit before 3.32 (later builds allow 32,766)."""


class SqliteDriver(ServesSqlAbstractions):
    """The SqlDriver of one SQLite database file."""

    kind = BackendKind.SQLITE
    dialect: ServingDialect = SqliteDialect()

    def __init__(self, url: BackendUrl) -> None:
        self.path = sqlite_path(url.url)
        self.name = f"sqlite ({self.path})"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prism-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._reader_thread = 0
        self._deadline = 0.0
        # Reads meant for the loop thread that ran on the worker, by reason (busy, budget, too_big, other):
        # a debugging aid for the bench and the tests; counting costs nothing on the loop's own path.
        self.loop_read_fallbacks: dict[str, int] = {}

    async def open(self) -> None:
        """Open the file (creating it and its directory's file, not the directory) in WAL mode.

        Then the loop thread's reader, unless the database is in memory (a second connection would open a
        second, empty database) or the file is not in WAL mode (a reader would wait for writers).
        """
        await self._run(self._open_sync, namespace="")
        if self.path != ":memory:":
            self._reader = self._open_reader()
            self._reader_thread = threading.get_ident()

    def _open_reader(self) -> sqlite3.Connection | None:
        # timeout=0: a read that would wait for a lock raises SQLITE_BUSY at once and goes to the worker.
        try:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return None
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.close()
                return None
            conn.execute("PRAGMA query_only=1")
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, LOOP_READ_MAX_VALUE)
            _forbid_string_identifiers(conn)
            conn.set_progress_handler(self._over_budget, _PROGRESS_STEPS)
        except sqlite3.Error:
            conn.close()
            return None
        return conn

    def _over_budget(self) -> bool:
        return perf_counter() > self._deadline

    def _fell_back(self, error: sqlite3.Error) -> None:
        """Count a loop read that goes to the worker: busy, over budget, a value too long, or text not UTF-8."""
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int):
            reason = _FALLBACK_REASONS.get(code & 0xFF, "other")
        else:  # sqlite3's own errors carry no code; the one expected here is text that is not UTF-8
            reason = "not_utf8" if str(error).startswith(_NOT_UTF8) else "other"
        self.loop_read_fallbacks[reason] = self.loop_read_fallbacks.get(reason, 0) + 1

    def _open_sync(self) -> None:
        self._conn = connect_file(self.path, self.name)

    async def close(self) -> None:
        """Close the connections and stop the worker thread."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T], *, namespace: str) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.DatabaseError as error:
            raise self.typed(error, namespace) from None

    def typed(self, error: sqlite3.DatabaseError, namespace: str) -> BackendError:
        """Return the typed error of an sqlite3 error (its message names no bound value)."""
        if isinstance(error, sqlite3.OperationalError) and error.sqlite_errorcode & 0xFF in _CONTENDED:
            # Busy or locked past the busy timeout: another connection held the write lock all along.
            return Contention(_safe(error), namespace=namespace, backend=self.name)
        return BackendError(_safe(error), namespace=namespace, backend=self.name)

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
            with self._write_transaction() as conn:
                conn.executemany(sql, rows)
                _run_after(conn, after)

        await self._run(work, namespace=namespace)

    async def upsert_many(
        self,
        statements: KeyValueStatements,
        rows: Sequence[Row],
        *,
        namespace: str,
        after: Sequence[After] = (),
    ) -> None:
        """Upsert rows in one write transaction, many rows per statement (the rest by executemany).

        A statement of N rows is one call, one step and one reset where executemany makes N of each through
        sqlite3's loop: about a third less time per row (docs/performance.md). The rows are encoded here, on
        the caller's thread, before the hop: encoding on the worker would hold the GIL the loop needs while
        the worker waits on SQLite. Rows still to be encoded (`EncodedRows`, a put_many) are encoded straight
        into one list of parameters, which each statement binds a slice of.
        """
        width = len(statements.columns)
        per = max(1, MAX_VARIABLES // width)
        whole = len(rows) - len(rows) % per  # rows in statements of `per` rows; the rest one by one
        many = statements.upsert_rows(per) if whole else ""
        if isinstance(rows, EncodedRows):
            flat, rest = rows.flat(0, whole), rows[whole:]
        else:
            rows = rows if isinstance(rows, list) else list(rows)
            flat, rest = list(chain.from_iterable(rows[:whole])), rows[whole:]
        step = per * width

        def work() -> None:
            with self._write_transaction() as conn:
                for start in range(0, len(flat), step):
                    conn.execute(many, flat[start : start + step])
                conn.executemany(statements.upsert, rest)
                _run_after(conn, after)

        await self._run(work, namespace=namespace)

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
        """Run a point query and return its first row through `decode`, or None: on the loop thread if it can."""
        reader = self._reader
        if reader is not None and threading.get_ident() == self._reader_thread:
            self._deadline = perf_counter() + LOOP_READ_BUDGET
            try:
                # fetchall: the statement runs to its end, so no read transaction stays open past this line.
                rows = reader.execute(sql, args).fetchall()
            except (sqlite3.OperationalError, sqlite3.DataError) as error:
                self._fell_back(error)  # busy, over budget, a long value, text not UTF-8: the worker reads it
            except sqlite3.DatabaseError as error:
                raise BackendError(_safe(error), namespace=namespace, backend=self.name) from None
            else:
                return decode(rows[0]) if rows else None
        row: Row | None = await self._run(
            lambda: self._readable(lambda c: c.execute(sql, args).fetchone()), namespace=namespace
        )
        return None if row is None else decode(row)

    async def fetch_few(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query of a few rows by key and return them: on the loop thread if it can."""
        reader = self._reader
        if reader is not None and threading.get_ident() == self._reader_thread:
            self._deadline = perf_counter() + LOOP_READ_BUDGET
            try:
                return reader.execute(sql, args).fetchall()
            except (sqlite3.OperationalError, sqlite3.DataError) as error:
                self._fell_back(error)  # busy, over budget, a long value, text not UTF-8: the worker reads it
            except sqlite3.DatabaseError as error:
                raise BackendError(_safe(error), namespace=namespace, backend=self.name) from None
        return await self.fetch(sql, args, namespace=namespace)

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


def connect_file(path: str, name: str) -> sqlite3.Connection:
    """Open a read-write connection to the file at `path` (creating the file, not its directory) in WAL mode.

    The one place the settings of a writing connection live, for the async driver and the blocking one.
    """
    if path != ":memory:" and not Path(path).parent.exists():
        raise BackendUnavailable(f"directory {str(Path(path).parent)!r} does not exist", backend=name)
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    try:
        # WAL lets readers run during a write; NORMAL syncs at checkpoints, which WAL keeps consistent.
        _enter_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        _forbid_string_identifiers(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode, waiting up to the busy timeout for another connection doing the same.

    The first connection to a new file switches it to WAL, which needs the file's exclusive lock. Two
    processes opening a new file at once each read it (a shared lock) and then ask for that lock; SQLite
    fails one of them with SQLITE_BUSY at once, without its busy handler, since waiting could deadlock. The
    one that failed asks again: by then the file is in WAL mode, which the statement only reads.
    """
    deadline = monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF not in _CONTENDED or monotonic() + pause > deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 0.05)


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


def _run_after(conn: sqlite3.Connection, after: Sequence[After]) -> None:
    """Run what a write carries along, in its transaction (which holds the write lock)."""
    for item in after:
        statements = [item] if not isinstance(item, Chained) else _chained(conn, item)
        for statement, more in statements:
            conn.executemany(statement, more)


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
