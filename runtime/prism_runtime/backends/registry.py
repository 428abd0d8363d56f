"""The backends Prism has: one entry each, the one place that says what a backend serves and can do.

An entry names a backend's kind, its URL schemes, the abstractions it serves, its capabilities and where its
class lives. The planner (protoc_gen_prism), config binding, connect(), provisioning and error messages all
read these facts here, and reading them imports no driver: a backend's class, with its driver, is imported
when a URL of its kind is opened (`prism_runtime.backends.loader`), and checked then against the contract its
entry declares (`prism_runtime.backends.contract`), so a class missing a method fails at load, not at its first
call. Both of those read this module; it reads neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, TypeGuard

from prism_runtime.errors import ConfigError
from prism_runtime.schema import Abstraction

if TYPE_CHECKING:
    from prism_runtime.sql.driver import SqlDriver


class BackendKind(StrEnum):
    """A physical backend: `(prism.backend)`, the planner's choice, and the key of a URL under `backends:`."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"
    KAFKA = "kafka"
    NATS = "nats"


class Capability(StrEnum):
    """What a backend can do besides serving abstractions; each names the contract its class must meet."""

    SQL = "sql"
    """Runs SQL statements through a dialect (the SqlDriver protocol): it keeps the PII keys, audit log and
    catalogue, and `forget` erases on it."""
    STREAM_ADMIN = "stream_admin"
    """Creates and updates its topics or streams as a plan says (`prism provision`): `admin()`."""


@dataclass(frozen=True)
class BackendEntry:
    """One backend: what it serves and can do, and where its class lives (imported only when opened)."""

    kind: BackendKind
    schemes: tuple[str, ...]
    """URL schemes naming it, the canonical one first."""
    serves: frozenset[Abstraction]
    capabilities: frozenset[Capability]
    module: str
    class_name: str
    blocking: tuple[str, str] | None = None
    """Module and class of its blocking driver, which a sync database (`connect_sync`) opens; None: the sync
    database runs the async class on a private event loop thread (prism_runtime.drive.LoopThread)."""

    def can(self, capability: Capability) -> bool:
        """Return whether the backend has `capability`."""
        return capability in self.capabilities


_STREAM = frozenset({Abstraction.TIME_SERIES})
_ENTRIES = (
    BackendEntry(
        BackendKind.SQLITE,
        ("sqlite",),
        frozenset(Abstraction),
        frozenset({Capability.SQL}),
        "prism_runtime.backends.sqlite",
        "SqliteDriver",
        ("prism_runtime.backends.sqlite_sync", "SqliteSyncDriver"),
    ),
    BackendEntry(
        BackendKind.POSTGRES,
        ("postgresql", "postgres"),
        frozenset(Abstraction),
        frozenset({Capability.SQL}),
        "prism_runtime.backends.postgres",
        "PostgresDriver",
        ("prism_runtime.backends.postgres_sync", "PostgresSyncDriver"),
    ),
    BackendEntry(
        BackendKind.KAFKA,
        ("kafka",),
        _STREAM,
        frozenset({Capability.STREAM_ADMIN}),
        "prism_runtime.backends.kafka",
        "KafkaBackend",
    ),
    BackendEntry(
        BackendKind.NATS,
        ("nats",),
        _STREAM,
        frozenset({Capability.STREAM_ADMIN}),
        "prism_runtime.backends.nats",
        "NatsBackend",
    ),
)
_BY_KIND: dict[str, BackendEntry] = {e.kind.value: e for e in _ENTRIES}
_BY_SCHEME = {scheme: e.kind for e in _ENTRIES for scheme in e.schemes}


def entries() -> tuple[BackendEntry, ...]:
    """Return every backend's entry, in the order messages list them."""
    return _ENTRIES


def entry(kind: str) -> BackendEntry:
    """Return the entry of a backend kind; ConfigError naming the kinds there are for any other."""
    found = _BY_KIND.get(kind)
    if found is None:
        raise ConfigError(f"unknown backend kind {kind!r}; allowed: {', '.join(kinds())}")
    return found


def kinds() -> list[BackendKind]:
    """Return every backend kind."""
    return [e.kind for e in _ENTRIES]


def serving(abstraction: Abstraction) -> list[BackendKind]:
    """Return the kinds of backend that can serve `abstraction`, in the order messages list them."""
    return [e.kind for e in _ENTRIES if abstraction in e.serves]


def with_capability(capability: Capability) -> list[BackendKind]:
    """Return the kinds of backend that have `capability`."""
    return [e.kind for e in _ENTRIES if e.can(capability)]


def schemes() -> list[str]:
    """Return every URL scheme a backend answers to."""
    return list(_BY_SCHEME)


def kind_of_scheme(scheme: str) -> BackendKind | None:
    """Return the backend kind a URL scheme names, or None."""
    return _BY_SCHEME.get(scheme.lower())


class HasKind(Protocol):
    """What `runs_sql` reads of an open backend: its kind. (A `Backend` has it; that protocol lives in the
    contract, which reads this module.)"""

    @property
    def kind(self) -> BackendKind:
        """The registry entry the backend belongs to."""
        ...


def runs_sql(backend: HasKind) -> TypeGuard[SqlDriver]:
    """Return whether an open backend runs SQL (its entry declares Capability.SQL)."""
    return entry(backend.kind).can(Capability.SQL)
