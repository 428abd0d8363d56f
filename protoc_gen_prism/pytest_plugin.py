"""Pytest fixtures for tests of code that uses Prism's generated clients (entry point `pytest11`: `prism`).

Installed with protoc-gen-prism, loaded by pytest automatically:

- `prism_db`: a `prism_runtime.Database` on a fresh SQLite file per test, provisioned from the generated
  directory;
- `prism_postgres`: the same on Postgres: one embedded server per session (`pip install
  'protoc-gen-prism[stack]'`, or an existing server named by `$PRISM_TEST_POSTGRES_DSN`), one new database
  per test, dropped afterwards;
- `prism_generated`: the generated directory they provision from: the `prism_generated` ini option
  (default `gen`, relative to the rootdir). Override the fixture to generate on the fly.

Both database fixtures are async: they need pytest-asyncio (`asyncio_mode = auto`, or mark the tests).

The plugin lives in the compiler's distribution, not in prism_runtime: provisioning (protoc_gen_prism.sql) and
the embedded Postgres (prism_stack) are the compiler's, and a service never installs them. It imports neither
a driver nor prism_stack until a fixture that needs one runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import prism_runtime

ENV_POSTGRES = "PRISM_TEST_POSTGRES_DSN"
INI_GENERATED = "prism_generated"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ini option naming the generated directory."""
    parser.addini(
        INI_GENERATED,
        "directory of generated code (sql/<dialect>/**.sql) that prism_db and prism_postgres provision from",
        default="gen",
    )


@asynccontextmanager
async def provisioned(url: str, generated: Path) -> AsyncIterator[prism_runtime.Database]:
    """Open the database at `url` with the generated SQL of `generated` applied, and close it afterwards."""
    from protoc_gen_prism.sql.provision import provision

    async with prism_runtime.connect(url) as db:
        await provision(db, generated, echo=lambda line: None)
        yield db


def database_url(server_url: str, name: str) -> str:
    """Return the URL of database `name` on the server of `server_url` (query parameters dropped)."""
    base = server_url.partition("?")[0]
    return f"{base.rsplit('/', 1)[0]}/{name}"


@asynccontextmanager
async def new_postgres_database(server_url: str) -> AsyncIterator[str]:
    """Create an empty database on the Postgres server at `server_url`; yield its URL; drop it afterwards."""
    import asyncpg

    name = f"prism_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield database_url(server_url, name)
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def prism_generated(pytestconfig: pytest.Config) -> Path:
    """The generated directory to provision from (ini option `prism_generated`, default `gen`)."""
    path = pytestconfig.rootpath / str(pytestconfig.getini(INI_GENERATED))
    if not (path / "sql").is_dir():
        raise pytest.UsageError(
            f"prism: {path} holds no generated SQL (sql/<dialect>/); run `prism generate proto -o {path.name}` "
            f"first, or set `{INI_GENERATED}` in the pytest config, or override the prism_generated fixture"
        )
    return path


@pytest.fixture(scope="session")
def prism_postgres_server() -> Iterator[str]:
    """URL of a Postgres server for the session: $PRISM_TEST_POSTGRES_DSN, else an embedded one (stack extra).

    The embedded server's data lives in a fresh temp dir (not under pytest's tmp_path: as root, Postgres runs
    as an unprivileged user who must traverse every ancestor of its data dir).
    """
    external = os.environ.get(ENV_POSTGRES, "").strip()
    if external:
        yield external
        return
    try:
        import prism_stack
    except ModuleNotFoundError as error:
        raise pytest.UsageError(
            f"prism_postgres needs {error.name!r}: pip install 'protoc-gen-prism[stack]' for an embedded "
            f"Postgres, or set {ENV_POSTGRES} to a server's URL"
        ) from None
    path = Path(tempfile.mkdtemp(prefix="prism-pytest-postgres-"))
    try:
        server = prism_stack.start("postgres", path)
        try:
            yield server.url
        finally:
            prism_stack.stop(server)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _async_fixture(function: Any) -> Any:
    """Make `function` an async fixture through pytest-asyncio, or a fixture that says to install it."""
    try:
        import pytest_asyncio
    except ModuleNotFoundError:

        @pytest.fixture(name=function.__name__)
        def needs_pytest_asyncio() -> None:
            raise pytest.UsageError(f"{function.__name__} is an async fixture: pip install pytest-asyncio")

        needs_pytest_asyncio.__doc__ = function.__doc__
        return needs_pytest_asyncio
    return pytest_asyncio.fixture(function)


@_async_fixture
async def prism_db(tmp_path: Path, prism_generated: Path) -> AsyncIterator[prism_runtime.Database]:
    """A Database on a fresh SQLite file (in tmp_path) with the generated SQL applied."""
    async with provisioned(f"sqlite:///{tmp_path / 'prism.db'}", prism_generated) as db:
        yield db


@pytest.fixture
def prism_sync_db(tmp_path: Path, prism_generated: Path) -> Iterator[prism_runtime.SyncDatabase]:
    """A SyncDatabase (`connect_sync`, blocking) on a fresh SQLite file (in tmp_path) with the generated SQL applied.

    Provisioned through the blocking driver itself: no event loop, so it needs no pytest-asyncio.
    """
    from prism_runtime.drive import drive
    from protoc_gen_prism.sql.provision import provision

    with prism_runtime.connect_sync(f"sqlite:///{tmp_path / 'prism.db'}") as db:
        drive(provision(db.aio, prism_generated, echo=lambda line: None))
        yield db


@_async_fixture
async def prism_postgres(
    prism_postgres_server: str, prism_generated: Path
) -> AsyncIterator[prism_runtime.Database]:
    """A Database on a new Postgres database (on the session's server) with the generated SQL applied."""
    async with new_postgres_database(prism_postgres_server) as url, provisioned(url, prism_generated) as db:
        yield db
