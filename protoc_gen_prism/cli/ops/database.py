"""What the runtime-operation commands (audit, forget, keys) share: the --url option and an open vault."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import prism_runtime
from prism_runtime.config import DEFAULT_URL, URL_ENV, BackendUrl, resolve_url, sqlite_path
from prism_runtime.pii import tables
from prism_runtime.pii.forget import sql_drivers
from prism_runtime.pii.vault import Vault, attach, vault_for
from prism_runtime.pii.wrappers import wrapper_from_env
from prism_runtime.sql.driver import SqlDriver


def add_url(parser: argparse.ArgumentParser) -> None:
    """Add --url, defaulting to $PRISM_URL or the embedded SQLite file."""
    parser.add_argument(
        "--url",
        default=None,
        help=f"backend URL (default: ${URL_ENV}, else {DEFAULT_URL}); keys: $PRISM_KMS_KEY_ID or "
        "$PRISM_MASTER_KEY_FILE (default ./prism-master.key)",
    )


@asynccontextmanager
async def open_vault(
    url: str | None, *, existing: bool = True
) -> AsyncIterator[tuple[prism_runtime.Database, Vault]]:
    """Connect and yield the database with the PII vault of its SQL backend.

    With `existing` (every command but `prism keys init`) the database must already hold Prism's PII tables
    (keys, or the catalog of entities with PII): a command that reads state fails on a wrong URL or directory
    instead of creating a database and a master key there.
    """
    where = resolve_url(url)
    if existing and where.kind == "sqlite" and not sqlite_file_exists(where):
        raise NoDatabase(where)
    async with prism_runtime.connect(where.url) as db:
        drivers = sql_drivers(db)
        if not drivers:
            raise prism_runtime.ConfigError(f"{db.url.redacted} has no SQL backend to keep keys and audit in")
        driver = drivers[0]
        if not existing:
            yield db, await vault_for(driver).ready()
            return
        has_keys = await has_table(driver, tables.KEYS.namespace)
        if not has_keys and not await has_table(driver, tables.ENTITIES.namespace):
            raise NoDatabase(
                where, f"it holds neither {tables.KEYS.namespace} nor {tables.ENTITIES.namespace}"
            )
        # Where keys exist a missing master key file is an error, never replaced by a new one. A database whose
        # PII is all in clear has no keys yet: the command makes its first (the pseudonym and audit keys) as
        # an application's first encrypted write would.
        yield db, await attach(driver, wrapper_from_env(create=not has_keys)).ready()


class NoDatabase(prism_runtime.ConfigError):
    """The URL a command reads state from holds no Prism database."""

    def __init__(self, where: BackendUrl, detail: str = "") -> None:
        self.url = where.redacted
        super().__init__(
            f"no Prism database at {where.redacted}{f': {detail}' if detail else ''} "
            f"(set {URL_ENV} or --url; `prism keys init` sets up a new one)"
        )


def sqlite_file_exists(where: BackendUrl) -> bool:
    """Return whether a sqlite:/// URL names a file that exists (connecting would create it)."""
    path = sqlite_path(where.url)
    return path != ":memory:" and Path(path).is_file()


async def has_table(driver: SqlDriver, name: str) -> bool:
    """Return whether the database of `driver` holds the table `name`."""
    found = await driver.fetch(driver.dialect.object_exists(), ("table", name), namespace=name)
    return bool(found)


def run(command: str, work: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run `work`; print a PrismError or ValueError as one line naming the command, exit code 1."""
    try:
        return asyncio.run(work())
    except (prism_runtime.PrismError, ValueError) as error:
        print(f"prism {command}: {error}", file=sys.stderr)
        return 1
