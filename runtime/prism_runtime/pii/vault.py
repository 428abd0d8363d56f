"""Everything the PII layer keeps per SQL backend: keyring, audit log and entity catalog, made once."""

from __future__ import annotations

import weakref
from typing import Protocol

from prism_runtime.backends.registry import HasKind, runs_sql
from prism_runtime.pii import crypto
from prism_runtime.pii.audit import AuditLog
from prism_runtime.pii.catalog import Catalog
from prism_runtime.pii.errors import PiiError
from prism_runtime.pii.key_cache import KeyLimits
from prism_runtime.pii.keyring import Keyring
from prism_runtime.pii.wrappers import KeyWrapper, wrapper_from_env
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.driver import SqlDriver


class Vault:
    """The PII services of one SQL backend."""

    def __init__(self, driver: SqlDriver, wrapper: KeyWrapper, limits: KeyLimits | None = None) -> None:
        self.driver = driver
        self.keyring = Keyring(driver, wrapper, limits)
        self.audit = AuditLog(driver, self.keyring)
        self.catalog = Catalog(driver)

    async def ready(self) -> Vault:
        """Create the tables and load the index root key; return self."""
        await self.keyring.ready()
        return self

    def __repr__(self) -> str:
        return f"<prism_runtime.pii.Vault {self.driver.name} keys={self.keyring.wrapper.name}>"


_vaults: weakref.WeakKeyDictionary[SqlDriver, Vault] = weakref.WeakKeyDictionary()


def vault_for(driver: SqlDriver) -> Vault:
    """Return the vault of `driver`, made with the key wrapper from the environment unless one was attached."""
    vault = _vaults.get(driver)
    if vault is None:
        vault = _vaults[driver] = Vault(driver, wrapper_from_env())
    return vault


def attach(driver: SqlDriver, wrapper: KeyWrapper, limits: KeyLimits | None = None) -> Vault:
    """Serve `driver`'s PII with `wrapper` (and cache `limits`) from now on."""
    vault = _vaults[driver] = Vault(driver, wrapper, limits)
    return vault


_homes: weakref.WeakKeyDictionary[object, SqlDriver] = weakref.WeakKeyDictionary()


def set_keys_home(stream_backend: object, driver: SqlDriver) -> None:
    """Keep the keys of a stream backend's encrypted fields on `driver` (an SQL backend of the same database)."""
    _homes[stream_backend] = driver


def catalog_home(stream_backend: object) -> Vault | None:
    """Return the vault whose catalog lists a stream backend's entities, or None in a stream-only database."""
    driver = _homes.get(stream_backend) if stream_backend is not None else None
    return None if driver is None else vault_for(driver)


def keys_home(stream_backend: object, spec: EntitySpec) -> Vault:
    """Return the vault holding the keys of a stream backend, or say how to give it one."""
    driver = _homes.get(stream_backend) if stream_backend is not None else None
    if driver is None:
        raise PiiError(
            f"namespace {spec.namespace!r} has encrypted fields, whose keys live on an SQL backend; "
            "allowed: connect with a sqlite:// or postgresql:// backend in the config beside the stream"
        )
    return vault_for(driver)


class ServingBackends(Protocol):
    """What finding the vault of a namespace asks of a Database: the backend serving it.

    Stated here, since the Database is built over this layer (it attaches the key wrapper on open)."""

    def backend_for(self, spec: EntitySpec) -> HasKind:
        """Return the open backend that serves `spec`'s namespace."""
        ...


def vault_serving(db: ServingBackends, spec: EntitySpec) -> Vault:
    """Return the vault holding the keys of `spec`'s namespace in `db`: its SQL backend's, or its keys home."""
    backend = db.backend_for(spec)
    return vault_for(backend) if runs_sql(backend) else keys_home(backend, spec)


async def event_id_secret(db: ServingBackends, spec: EntitySpec) -> bytes:
    """Return the key of `spec`'s event ids, derived from the index root key of the vault serving it."""
    vault = await vault_serving(db, spec).ready()
    return vault.keyring.derive(b"prism event id/1" + crypto.canonical((spec.message_name,)))
