"""Optional drivers: which extra of the distribution installs each, and the error when one is missing.

A plain `pip install prism-runtime` (or `protoc-gen-prism`, the compiler and CLI, which depends on it) has
SQLite only; a server backend's driver comes with the extra of the same name in both distributions. Code that
needs a driver imports it through `require` (or turns the ModuleNotFoundError it caught into `MissingExtra`
with `missing_extra`), so the user reads the pip command to run, never a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from prism_runtime.errors import ConfigError

DISTRIBUTIONS = ("prism-runtime", "protoc-gen-prism")
"""The runtime alone (a service), and the compiler with the `prism` CLI: both carry every driver extra."""
DRIVER_EXTRAS = {
    "asyncpg": "postgres",
    "psycopg": "postgres-sync",
    "psycopg_pool": "postgres-sync",
    "aiokafka": "kafka",
    "nats": "nats",
    "boto3": "kms",
}
"""Top-level module of each optional driver -> the extra that installs it."""


class MissingExtra(ConfigError):
    """An optional driver is not installed; the message names the extra that installs it."""

    def __init__(self, driver: str, extra: str, needed_for: str) -> None:
        self.driver = driver
        self.extra = extra
        super().__init__(
            f"{needed_for} needs the {driver!r} driver, which is not installed; install it with "
            f"`pip install '{DISTRIBUTIONS[0]}[{extra}]'`, or `pip install '{DISTRIBUTIONS[1]}[{extra}]'` "
            "where the prism CLI is installed"
        )


def missing_extra(error: ModuleNotFoundError, needed_for: str) -> MissingExtra | None:
    """Return the MissingExtra that `error` means, or None when the missing module is no optional driver."""
    driver = (error.name or "").split(".")[0]
    extra = DRIVER_EXTRAS.get(driver)
    return None if extra is None else MissingExtra(driver, extra, needed_for)


def require(module: str, needed_for: str) -> ModuleType:
    """Import `module` (an optional driver or one of its submodules); raise MissingExtra when absent."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = missing_extra(error, needed_for)
        if missing is None:
            raise
        raise missing from None
