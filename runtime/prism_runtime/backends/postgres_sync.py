"""Postgres for blocking callers (`connect_sync`): psycopg 3 over a psycopg_pool connection pool.

It runs the statements the async driver runs, unchanged: psycopg's RawCursor takes asyncpg's `$n`
parameters, so the shared SQL layer renders one text for both. Values come back as asyncpg returns them:
JSONB as its text (a loader registered on every connection), BYTEA as bytes, TIMESTAMPTZ as an aware
datetime, NUMERIC as Decimal, arrays as lists; so one row codec decodes both. Its coroutines never suspend
(see prism_runtime.drive).

Threads: one pool per database, sized by the URL's `pool_size` and `pool_min_size` as the async pool is; each
statement borrows a connection for its own length, so a thread pool of any size shares them. URL parameters
libpq does not know (asyncpg sends them to the server as settings, e.g. `search_path`, `lock_timeout`) are
sent as server settings here too, through libpq's `options`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool
from google.protobuf.message import Message
from psycopg.types.string import TextLoader

from prism_runtime.backends.postgres_states import (
    COLUMNS,
    COPY_THRESHOLD,
    DEFAULT_POOL_SIZE,
    NUL_HINT,
    POOL_PARAMS,
    PROVISION_HINT,
    SETUP_LOCK,
    TAKE_SETUP_LOCK,
    UNAVAILABLE_HINT,
    server_error,
    stage_name,
)
from prism_runtime.backends.registry import BackendKind
from prism_runtime.config import BackendUrl
from prism_runtime.errors import BackendError, BackendUnavailable, ConfigError, SchemaMismatch
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.dialect import ServingDialect
from prism_runtime.sql.dialects import PostgresDialect
from prism_runtime.sql.driver import After, Chained, Row, verify_columns
from prism_runtime.sql.serving import ServesSqlAbstractions
from prism_runtime.sql.statements import KeyValueStatements

T = TypeVar("T")
M = TypeVar("M", bound=Message)
Connection = psycopg.Connection[Any]
# How long a statement waits for a free connection (or the pool for its first one) before BackendUnavailable.
POOL_TIMEOUT = 30.0


class PostgresSyncDriver(ServesSqlAbstractions):
    """The SqlDriver of one Postgres database for blocking callers, over a lazily opened psycopg pool."""

    kind = BackendKind.POSTGRES
    dialect: ServingDialect = PostgresDialect()

    def __init__(self, url: BackendUrl) -> None:
        parts = urlsplit(url.url)
        query = dict(parse_qsl(parts.query))
        try:
            self.pool_size = int(query.pop(POOL_PARAMS[0], DEFAULT_POOL_SIZE))
            self.pool_min_size = int(query.pop(POOL_PARAMS[1], min(2, self.pool_size)))
        except ValueError:
            raise ConfigError(f"{url.redacted}: pool_size and pool_min_size must be whole numbers") from None
        if not 1 <= self.pool_min_size <= self.pool_size:
            raise ConfigError(f"{url.redacted}: need 1 <= pool_min_size <= pool_size")
        self.conninfo = _libpq_url(parts._replace(scheme="postgresql"), query)
        self.name = f"postgres ({url.redacted})"
        self._pool: psycopg_pool.ConnectionPool[Connection] | None = None
        self._lock = threading.Lock()

    async def open(self) -> None:
        """Do nothing yet: the pool is opened on first use, so its errors can name the namespace."""

    async def close(self) -> None:
        """Close the pool and its connections."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _pool_for(self, namespace: str) -> psycopg_pool.ConnectionPool[Connection]:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._pool is None:
                # One connection first, outside the pool: a pool retries a failing connect until its timeout,
                # where this raises the server's refusal (bad password, unknown database, setting) at once.
                psycopg.Connection.connect(self.conninfo, autocommit=True).close()
                made: psycopg_pool.ConnectionPool[Connection] = psycopg_pool.ConnectionPool(
                    self.conninfo,
                    min_size=self.pool_min_size,
                    max_size=self.pool_size,
                    kwargs={"autocommit": True, "cursor_factory": psycopg.RawCursor},
                    configure=_configure,
                    timeout=POOL_TIMEOUT,
                    open=False,
                    name="prism",
                )
                try:
                    made.open(wait=True, timeout=POOL_TIMEOUT)
                except psycopg_pool.PoolTimeout:
                    made.close()
                    raise BackendUnavailable(
                        "cannot connect (no connection within the pool timeout)",
                        namespace=namespace,
                        backend=self.name,
                        hint=UNAVAILABLE_HINT,
                    ) from None
                self._pool = made
            return self._pool

    @contextmanager
    def _connection(self, namespace: str) -> Iterator[Connection]:
        """Borrow a connection for one statement or transaction; driver errors become typed errors."""
        try:
            with self._pool_for(namespace).connection() as conn:
                yield conn
        except psycopg.Error as error:
            raise self._typed(error, namespace) from None
        except psycopg_pool.PoolTimeout:
            raise BackendUnavailable(
                "no free connection within the pool timeout",
                namespace=namespace,
                backend=self.name,
                hint="raise pool_size in the URL, or hold connections for less time",
            ) from None

    def _typed(self, error: psycopg.Error, namespace: str) -> BackendError:
        """Return the typed error of a psycopg error; never a server message (it can quote values)."""
        sqlstate = error.sqlstate
        if sqlstate == "42P01":
            return SchemaMismatch(
                f"table {namespace!r} does not exist",
                namespace=namespace,
                backend=self.name,
                hint=PROVISION_HINT,
            )
        if sqlstate is None and isinstance(error, psycopg.DataError):
            # Refused by psycopg before it was sent: the one value it refuses is text holding U+0000.
            return BackendError(
                f"{type(error).__name__}: a value the server cannot store",
                namespace=namespace,
                backend=self.name,
                hint=NUL_HINT,
            )
        if sqlstate is None:
            # No SQLSTATE: the client could not reach the server, or lost its connection.
            return BackendUnavailable(
                f"{type(error).__name__}: the connection failed",
                namespace=namespace,
                backend=self.name,
                hint=UNAVAILABLE_HINT,
            )
        return server_error(sqlstate, type(error).__name__, namespace=namespace, backend=self.name)

    async def execute(self, sql: str, args: Row, *, namespace: str) -> int:
        """Run one statement; return the number of rows it changed."""
        with self._connection(namespace) as conn:
            return max(_execute(conn, sql, args).rowcount, 0)

    async def execute_many(
        self, sql: str, rows: Sequence[Row], *, namespace: str, after: Sequence[After] = ()
    ) -> None:
        """Run one statement per row, then `after`, in one transaction (psycopg pipelines executemany)."""
        with self._connection(namespace) as conn, conn.transaction():
            _executemany(conn, sql, rows)
            _run_after(conn, after)

    async def upsert_many(
        self,
        statements: KeyValueStatements,
        rows: Sequence[Row],
        *,
        namespace: str,
        after: Sequence[After] = (),
    ) -> None:
        """Upsert rows: pipelined executemany for small batches, COPY into a staging table for large ones."""
        if len(rows) < COPY_THRESHOLD:
            await self.execute_many(statements.upsert, rows, namespace=namespace, after=after)
            return
        stage = stage_name(statements.table)
        names = ", ".join(self.dialect.quote(c.name) for c in statements.columns)
        with self._connection(namespace) as conn, conn.transaction():
            _execute(conn, f"CREATE TEMP TABLE {stage} (LIKE {statements.table}) ON COMMIT DROP")
            with conn.cursor() as cur, cur.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            _execute(conn, statements.upsert_from(stage))
            _run_after(conn, after)

    async def execute_script(self, statements: Sequence[str], *, namespace: str) -> None:
        """Run statements in order inside one transaction, under the setup lock (as the async driver does)."""
        with self._connection(namespace) as conn, conn.transaction():
            _execute(conn, TAKE_SETUP_LOCK, (SETUP_LOCK,))
            for statement in statements:
                _execute(conn, statement)

    async def fetch(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query and return its rows (tuples)."""
        with self._connection(namespace) as conn:
            rows: list[Row] = _execute(conn, sql, args).fetchall()
            return rows

    async def fetch_few(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query of a few rows by key (no faster path than `fetch` here)."""
        return await self.fetch(sql, args, namespace=namespace)

    async def fetch_first(
        self, sql: str, args: Row, decode: Callable[[Row], T], *, namespace: str
    ) -> T | None:
        """Run a query and return its first row through `decode`, or None."""
        with self._connection(namespace) as conn:
            row: Row | None = _execute(conn, sql, args).fetchone()
        return None if row is None else decode(row)

    async def prepare_table(self, spec: EntitySpec, ddl: Sequence[str]) -> None:
        """Check that the table exists with every column; Postgres schemas are provisioned, never implied."""
        rows = await self.fetch(COLUMNS, (spec.namespace,), namespace=spec.namespace)
        verify_columns(spec, {r[0] for r in rows}, self.name, PROVISION_HINT)

    async def setup_table(self, spec: EntitySpec, ddl: Sequence[str]) -> None:
        """Create one of Prism's own tables unless it is there, under the setup advisory lock."""
        with self._connection(spec.namespace) as conn, conn.transaction():
            _execute(conn, TAKE_SETUP_LOCK, (SETUP_LOCK,))
            present = {r[0] for r in _execute(conn, COLUMNS, (spec.namespace,)).fetchall()}
            if present:
                verify_columns(spec, present, self.name, PROVISION_HINT)
            for statement in ddl:
                _execute(conn, statement)


def _configure(conn: Connection) -> None:
    # JSONB and JSON come back as their text, as asyncpg returns them: the row codec parses them itself.
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)


def _execute(conn: Connection, sql: str, args: Row = ()) -> psycopg.Cursor[Any]:
    return conn.execute(sql, args)


def _executemany(conn: Connection, sql: str, rows: Sequence[Row]) -> None:
    if rows:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)


def _run_after(conn: Connection, after: Sequence[After]) -> None:
    """Run what a write carries along, in its transaction; a chain's head is read under the chain's lock."""
    for item in after:
        if isinstance(item, Chained):
            if item.lock is not None:
                _execute(conn, item.lock)
            head = _execute(conn, item.head).fetchall()
            for statement, more in item.build(head):
                _executemany(conn, statement, more)
        else:
            _executemany(conn, *item)


def _libpq_url(parts: Any, query: dict[str, str]) -> str:
    """Return the URL libpq takes: its own parameters kept, every other one sent as a server setting."""
    known = {option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults()}
    kept = {k: v for k, v in query.items() if k in known}
    settings = [f"-c {k}={_escaped(v)}" for k, v in query.items() if k not in known]
    if settings:
        kept["options"] = " ".join(filter(None, [kept.get("options", ""), *settings]))
    return str(urlunsplit(parts._replace(query=urlencode(kept, quote_via=quote))))


def _escaped(value: str) -> str:
    # libpq's options split on spaces; a backslash keeps one (and itself) in a value.
    return value.replace("\\", "\\\\").replace(" ", "\\ ")
