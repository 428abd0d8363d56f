"""What both Postgres drivers (asyncpg, psycopg) share: the meaning of SQLSTATEs, hints, the setup lock.

No driver is imported here, so the blocking driver (`postgres_sync`) does not need asyncpg, nor the async one
psycopg.
"""

from __future__ import annotations

from prism_runtime.errors import BackendError, BackendUnavailable, Contention
from prism_runtime.sql.dialects import PostgresDialect
from prism_runtime.sql.names import short_name

PROVISION_HINT = "create it with `prism provision <generated dir> --url <this url>`"
UNAVAILABLE_HINT = "is the server running? `prism stack up` starts a local one"
# Our own URL parameters; the rest of the URL goes to the driver (asyncpg, libpq) or to the server.
POOL_PARAMS = ("pool_size", "pool_min_size")
DEFAULT_POOL_SIZE = 10
# Serialisation failure, deadlock, lock not available: the transaction was rolled back and may be run again.
_CONTENDED = ("40001", "40P01", "55P03")
NUL_HINT = "a string field holds U+0000, which Postgres text and JSONB cannot store"
_HINTS = {
    "22021": NUL_HINT,
    "22P05": NUL_HINT,
    "42P01": PROVISION_HINT,
    "3D000": "the database named in the URL does not exist: fix the URL, or create it (createdb) first",
}
# SQLSTATEs that say the server cannot serve now rather than that the statement is wrong: connection
# exceptions (class 08), shutdown or start-up in progress (57P01-57P03), no connection slot free.
_UNAVAILABLE_CLASSES = ("08",)
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_AUTHENTICATION_STATES = frozenset({"28P01", "28000"})

# Batches at least this large go through COPY into a staging table: below it, a pipelined executemany is as fast.
COPY_THRESHOLD = 256
_STAGE = "_prism_stage"

COLUMNS = PostgresDialect().table_columns()
TAKE_SETUP_LOCK = "SELECT pg_advisory_xact_lock($1)"
SETUP_LOCK = int.from_bytes(b"prism/setup", "big") & ((1 << 63) - 1)
"""The advisory lock key every Prism process holds while it runs setup DDL on a Postgres database."""


def is_unavailable(sqlstate: str) -> bool:
    """Return whether an SQLSTATE means the server is down, restarting or out of connections."""
    return sqlstate.startswith(_UNAVAILABLE_CLASSES) or sqlstate in _UNAVAILABLE_STATES


def server_error(sqlstate: str, error_type: str, *, namespace: str, backend: str) -> BackendError:
    """Return the typed error of a server error by its SQLSTATE; never its message (it can quote values)."""
    if sqlstate in _AUTHENTICATION_STATES:
        return BackendUnavailable(
            f"authentication failed ({error_type})",
            namespace=namespace,
            backend=backend,
            hint="check the user and password in the URL",
        )
    if is_unavailable(sqlstate):
        return BackendUnavailable(
            f"the server cannot serve now: {error_type} (SQLSTATE {sqlstate})",
            namespace=namespace,
            backend=backend,
            hint=UNAVAILABLE_HINT,
        )
    kind = Contention if sqlstate in _CONTENDED else BackendError
    return kind(
        f"{error_type} (SQLSTATE {sqlstate})",
        namespace=namespace,
        backend=backend,
        hint=_HINTS.get(sqlstate, ""),
    )


def stage_name(table: str) -> str:
    """Return the temporary staging table of a batch upsert into `table` (quoted), one name per target table.

    asyncpg caches a COPY's column types by its statement text, so two tables sharing a staging name (and
    column names) would reuse the other's types.
    """
    return short_name(_STAGE, table.strip('"'), dialect=PostgresDialect())
