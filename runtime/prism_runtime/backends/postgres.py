"""Postgres over an asyncpg pool: the production home of KeyValue and Graph data.

Only what differs from the shared SQL lives here: `$n` parameters, native types (TIMESTAMPTZ, NUMERIC,
arrays, JSONB), bytewise key ordering, batched lookups through unnest, and asyncpg's error classes.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from google.protobuf.message import Message

from prism_runtime.backends import postgres_copy
from prism_runtime.backends.postgres_states import (
    COLUMNS as _COLUMNS,
)
from prism_runtime.backends.postgres_states import (
    COPY_THRESHOLD,
    DEFAULT_POOL_SIZE,
    POOL_PARAMS,
    PROVISION_HINT,
    SETUP_LOCK,
    UNAVAILABLE_HINT,
    server_error,
    stage_name,
)
from prism_runtime.backends.postgres_states import (
    TAKE_SETUP_LOCK as _TAKE_SETUP_LOCK,
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

_UTC = datetime.UTC
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)


class PostgresDriver(ServesSqlAbstractions):
    """The SqlDriver of one Postgres database, over a lazily created asyncpg pool."""

    kind = BackendKind.POSTGRES
    dialect: ServingDialect = PostgresDialect()
    # OSError and TimeoutError: the pool opens connections on demand, so any call can fail to connect.
    error_types: ClassVar[tuple[type[BaseException], ...]] = (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
        TimeoutError,
    )

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
        self.dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
        self.name = f"postgres ({url.redacted})"
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Do nothing yet: the pool is created on first use, so its errors can name the namespace."""

    async def close(self) -> None:
        """Close the pool, waiting for queries in flight."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def pool(self, namespace: str) -> asyncpg.Pool:
        """Return the pool, creating it on first use."""
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await self._guard(
                        lambda: asyncpg.create_pool(
                            self.dsn,
                            min_size=self.pool_min_size,
                            max_size=self.pool_size,
                            reset=_keep_session,
                        ),
                        namespace,
                    )
        return self._pool

    async def _guard(self, call: Callable[[], Awaitable[T]], namespace: str) -> T:
        try:
            return await call()
        except self.error_types as error:
            typed = self._typed(error, namespace)
        if isinstance(typed, BackendUnavailable) and self._pool is not None:
            # The pool's other connections went down with this one (server restart, failover): replace
            # them all on their next use rather than fail once on each. A connection the server ended
            # while idle can otherwise stay in the pool in a state asyncpg can no longer use.
            await self._pool.expire_connections()
        raise typed

    def _typed(self, error: BaseException, namespace: str) -> BackendError:
        """Return the typed error of an asyncpg or socket error; never a server message (it can quote values)."""
        if isinstance(error, (TimeoutError, OSError)):
            return BackendUnavailable(
                f"cannot connect ({type(error).__name__}: {error.strerror or error})"
                if isinstance(error, OSError)
                else "connection timed out",
                namespace=namespace,
                backend=self.name,
                hint=UNAVAILABLE_HINT,
            )
        if isinstance(error, (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            return BackendUnavailable(
                f"authentication failed ({type(error).__name__})",
                namespace=namespace,
                backend=self.name,
                hint="check the user and password in the URL",
            )
        if isinstance(error, asyncpg.UndefinedTableError):
            return SchemaMismatch(
                f"table {namespace!r} does not exist",
                namespace=namespace,
                backend=self.name,
                hint=PROVISION_HINT,
            )
        if isinstance(error, asyncpg.PostgresError):
            return server_error(
                str(error.sqlstate), type(error).__name__, namespace=namespace, backend=self.name
            )
        # InterfaceError, InternalClientError: the client lost its connection (or its state with it).
        return BackendUnavailable(
            f"{type(error).__name__}: the connection failed",
            namespace=namespace,
            backend=self.name,
            hint=UNAVAILABLE_HINT,
        )

    async def execute(self, sql: str, args: Row, *, namespace: str) -> int:
        """Run one statement; return the row count from its status."""
        pool = self._pool if self._pool is not None else await self.pool(namespace)
        try:
            async with pool.acquire() as conn:  # pool.execute's own body: one coroutine frame fewer per call
                status = await conn.execute(sql, *args)
        except self.error_types as error:
            await self._guard(_reraise(error), namespace)
            raise  # unreachable: _guard always raises a PrismError for these
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def execute_many(
        self, sql: str, rows: Sequence[Row], *, namespace: str, after: Sequence[After] = ()
    ) -> None:
        """Run one statement per row, then `after`, in one transaction (asyncpg pipelines them)."""
        pool = await self.pool(namespace)

        async def work() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.executemany(sql, rows)
                await _run_after(conn, after)

        await self._guard(work, namespace)

    async def upsert_many(
        self,
        statements: KeyValueStatements,
        rows: Sequence[Row],
        *,
        namespace: str,
        after: Sequence[After] = (),
    ) -> None:
        """Upsert rows: pipelined executemany for small batches, binary COPY into a staging table for large ones."""
        if len(rows) < COPY_THRESHOLD:
            await self.execute_many(statements.upsert, rows, namespace=namespace, after=after)
            return
        pool = await self.pool(namespace)
        names = [c.name for c in statements.columns]
        stage = stage_name(statements.table)
        # The rows as binary COPY data written by the native extension, when it writes every value; else
        # asyncpg encodes them (see postgres_copy).
        types = postgres_copy.column_types(statements.columns)
        data = None if types is None else postgres_copy.copy_data(rows[:], types)

        async def work() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(f"CREATE TEMP TABLE {stage} (LIKE {statements.table}) ON COMMIT DROP")
                if data is not None:
                    await conn.copy_to_table(
                        stage, source=postgres_copy.chunks(data), columns=names, format="binary"
                    )
                else:
                    # `rows` may encode each row as it is read (see SqlKeyValue.put): asyncpg sends the COPY
                    # data in pieces as it reads them, so the server takes in the first rows while the last
                    # are encoded.
                    await conn.copy_records_to_table(stage, records=rows, columns=names)
                await conn.execute(statements.upsert_from(stage))
                await _run_after(conn, after)

        await self._guard(work, namespace)

    async def execute_script(self, statements: Sequence[str], *, namespace: str) -> None:
        """Run statements (DDL: provisioning, partitions) in order inside one transaction, under the setup lock.

        Postgres's own IF NOT EXISTS does not hold between concurrent transactions (two creating one partition:
        DuplicateTable), so scripts and setups of every process run one after another.
        """
        pool = await self.pool(namespace)

        async def work() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(_TAKE_SETUP_LOCK, SETUP_LOCK)
                for statement in statements:
                    await conn.execute(statement)

        await self._guard(work, namespace)

    async def fetch(self, sql: str, args: Row, *, namespace: str) -> list[Row]:
        """Run a query and return its records (the hot path: no wrapper until something fails)."""
        pool = self._pool if self._pool is not None else await self.pool(namespace)
        try:
            async with pool.acquire() as conn:  # pool.fetch's own body: one coroutine frame fewer per call
                records = await conn.fetch(sql, *args)
        except self.error_types as error:
            await self._guard(_reraise(error), namespace)
            raise  # unreachable: _guard always raises a PrismError for these
        return cast(list[Row], records)  # asyncpg Records index like tuples

    async def fetch_first(
        self, sql: str, args: Row, decode: Callable[[Row], T], *, namespace: str
    ) -> T | None:
        """Run a query and return its first record through `decode`, or None (a get: one coroutine deep)."""
        pool = self._pool if self._pool is not None else await self.pool(namespace)
        try:
            async with pool.acquire() as conn:  # pool.fetch's own body: one coroutine frame fewer per call
                records = await conn.fetch(sql, *args)
        except self.error_types as error:
            await self._guard(_reraise(error), namespace)
            raise  # unreachable: _guard always raises a PrismError for these
        return decode(cast(Row, records[0])) if records else None  # a Record indexes like a tuple

    async def prepare_table(self, spec: EntitySpec, ddl: Sequence[str]) -> None:
        """Check that the table exists with every column; Postgres schemas are provisioned, never implied."""
        pool = await self.pool(spec.namespace)
        rows = await self._guard(lambda: pool.fetch(_COLUMNS, spec.namespace), spec.namespace)
        verify_columns(spec, {r[0] for r in rows}, self.name, PROVISION_HINT)

    async def setup_table(self, spec: EntitySpec, ddl: Sequence[str]) -> None:
        """Create one of Prism's own tables unless it is there, under the setup advisory lock.

        Concurrent CREATE TABLE IF NOT EXISTS and CREATE OR REPLACE FUNCTION race inside Postgres (unique
        violations on its catalogs, "tuple concurrently updated"), so every process takes the same
        transaction-scoped advisory lock first: setups run one after the other, and each finds what the
        one before it made. An existing table's columns are checked before any DDL runs.
        """
        pool = await self.pool(spec.namespace)

        async def work() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(_TAKE_SETUP_LOCK, SETUP_LOCK)
                present = {r[0] for r in await conn.fetch(_COLUMNS, spec.namespace)}
                if present:
                    verify_columns(spec, present, self.name, PROVISION_HINT)
                for statement in ddl:
                    await conn.execute(statement)

        await self._guard(work, spec.namespace)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release: Prism leaves no session state behind, so it saves a round trip."""


async def _run_after(conn: asyncpg.Connection | PoolConnectionProxy, after: Sequence[After]) -> None:
    """Run what a write carries along, in its transaction; a chain's head is read under the chain's lock."""
    for item in after:
        if isinstance(item, Chained):
            if item.lock is not None:
                await conn.execute(item.lock)
            # A statement after the lock is granted: under READ COMMITTED it sees every commit made before.
            for statement, more in item.build(cast(list[Row], await conn.fetch(item.head))):
                await conn.executemany(statement, more)
        else:
            await conn.executemany(*item)


def _reraise(error: BaseException) -> Callable[[], Awaitable[None]]:
    async def again() -> None:
        raise error

    return again
