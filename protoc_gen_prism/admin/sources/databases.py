"""Open one SQL database of the deployment for reading, without creating it when it is not there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import prism_runtime
from prism_runtime.config import BackendUrl
from prism_runtime.sql.driver import SqlDriver
from protoc_gen_prism.cli.ops.database import NoDatabase, sqlite_file_exists


@asynccontextmanager
async def opened(url: BackendUrl) -> AsyncIterator[tuple[prism_runtime.Database, SqlDriver]]:
    """Connect to `url` (a SQLite file must exist already) and yield the database with its SQL driver."""
    if url.kind == "sqlite" and not sqlite_file_exists(url):
        raise NoDatabase(url)
    async with prism_runtime.connect(url.url) as db:
        driver = db.backend
        assert isinstance(driver, SqlDriver), f"{url.kind} runs SQL"
        yield db, driver


def problem(error: Exception) -> str:
    """Return what a page shows for a source it could not read: Prism's errors carry no PII by design."""
    if isinstance(error, prism_runtime.PrismError | OSError):
        return str(error)
    return f"{type(error).__name__} (see the server's log)"
