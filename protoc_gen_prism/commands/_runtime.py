"""What the runtime-operation commands (audit, forget, keys) share: the --url option and an open vault."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import prism_runtime
from prism_runtime.config import DEFAULT_URL, URL_ENV
from prism_runtime.pii.forget import sql_drivers
from prism_runtime.pii.vault import Vault, vault_for


def add_url(parser: argparse.ArgumentParser) -> None:
    """Add --url, defaulting to $PRISM_URL or the embedded SQLite file."""
    parser.add_argument(
        "--url",
        default=None,
        help=f"backend URL (default: ${URL_ENV}, else {DEFAULT_URL}); keys: $PRISM_KMS_KEY_ID or "
        "$PRISM_MASTER_KEY_FILE (default ./prism-master.key)",
    )


@asynccontextmanager
async def open_vault(url: str | None) -> AsyncIterator[tuple[prism_runtime.Database, Vault]]:
    """Connect and yield the database with the PII vault of its SQL backend."""
    async with prism_runtime.connect(url or os.environ.get(URL_ENV)) as db:
        drivers = sql_drivers(db)
        if not drivers:
            raise prism_runtime.ConfigError(f"{db.url.redacted} has no SQL backend to keep keys and audit in")
        yield db, await vault_for(drivers[0]).ready()


def run(command: str, work: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run `work`; print a PrismError or ValueError as one line naming the command, exit code 1."""
    try:
        return asyncio.run(work())
    except (prism_runtime.PrismError, ValueError) as error:
        print(f"prism {command}: {error}", file=sys.stderr)
        return 1
