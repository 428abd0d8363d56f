"""A fresh, provisioned database per test on each SQL backend: SQLite in a temp file, Postgres in a new schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

import prism_runtime
from protoc_gen_prism.pytest_plugin import provisioned

BACKENDS = ["sqlite", "postgres"]


def with_query(dsn: str, **params: str) -> str:
    """Return `dsn` with query parameters added."""
    joiner = "&" if "?" in dsn else "?"
    return dsn + joiner + "&".join(f"{k}={v}" for k, v in params.items())


async def new_schema(dsn: str) -> str:
    """Create an empty schema on the server and return a DSN whose connections use it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return with_query(dsn, search_path=schema)


async def url_for(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """Return the URL of an empty database on `backend`."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return await new_schema(request.getfixturevalue("postgres_dsn"))


@asynccontextmanager
async def fresh_database(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path
) -> AsyncIterator[prism_runtime.Database]:
    """Open an empty database on the backend named by the test's parameter, with the generated SQL applied."""
    url = await url_for(request, request.param, tmp_path)
    try:
        async with provisioned(url, generated) as db:
            yield db
    finally:
        if request.param == "postgres":
            await drop_schema(url)


async def drop_schema(url: str) -> None:
    """Drop the schema a `new_schema` URL points at, with everything in it."""
    schema = url.rsplit("search_path=", 1)[1]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
