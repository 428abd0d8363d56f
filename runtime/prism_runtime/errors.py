"""Typed errors of the runtime. Messages name the namespace and backend, never a field value."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class PrismError(Exception):
    """Base of every error Prism raises on purpose."""


class ConfigError(PrismError):
    """A connection URL or namespace binding that cannot work."""


class BackendError(PrismError):
    """A backend failed to serve a request for a namespace."""

    def __init__(self, message: str, *, namespace: str = "", backend: str = "", hint: str = "") -> None:
        self.namespace = namespace
        self.backend = backend
        self.hint = hint
        self.detail = message
        where = ", ".join(part for part in (f"namespace {namespace!r}" if namespace else "", backend) if part)
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text}; {hint}" if hint else text)


class BackendUnavailable(BackendError):
    """The backend cannot be reached (down, refused, restarting, wrong credentials)."""

    def naming(self, namespace: str) -> BackendUnavailable:
        """Return this error as seen by a caller of `namespace` (it may have struck one of Prism's own tables)."""
        if namespace == self.namespace:
            return self
        inner = f" (while using {self.namespace})" if self.namespace else ""
        return type(self)(self.detail + inner, namespace=namespace, backend=self.backend, hint=self.hint)


def names_entity(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate an async method of an object with a `spec`: a BackendUnavailable it raises names the
    entity's namespace, the one the caller used, even when Prism's own tables (keys, audit) were down."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except BackendUnavailable as error:
            raise error.naming(args[0].spec.namespace) from None  # type: ignore[attr-defined]

    return wrapper


class Contention(BackendError):
    """The write lost to concurrent ones (lock wait timed out, deadlock, serialisation failure) and was rolled
    back whole: trying it again is safe."""


class SchemaMismatch(BackendError):
    """The stored table does not match the generated schema (missing table or columns)."""


class DatabaseDamaged(BackendError):
    """The database file fails its own integrity check (SQLite's PRAGMA integrity_check)."""


class NotOpen(PrismError):
    """The database was used before it was opened or after it was closed."""


class CorruptRow(BackendError):
    """A stored row that cannot be decoded into its message (written by another tool, or by an older bug).

    `key` holds the row's key values (key[, sort key]) so a caller can look at the row or scan past it; the
    message names the key only when the key field holds no personal data, and never a value of the row.
    """

    def __init__(
        self, message: str, *, namespace: str, backend: str = "", key: tuple[object, ...] = ()
    ) -> None:
        self.key = key
        super().__init__(message, namespace=namespace, backend=backend)


class InvalidInput(PrismError):
    """A call was given something no backend can store or look up; raised before anything is written."""

    def __init__(self, message: str, *, namespace: str, field: str = "") -> None:
        self.namespace = namespace
        self.field = field
        super().__init__(f"namespace {namespace!r}: {message}")


class WrongType(InvalidInput, TypeError):
    """A message of another type (or not a message), or a key of another type than the key field's."""


class InvalidKey(InvalidInput, ValueError):
    """A key value outside the one rule every backend keeps (docs/type-mapping.md, Keys)."""


class MessageTooDeep(InvalidInput, ValueError):
    """A message nested deeper than every backend can read back (prism_runtime.inputs.MAX_MESSAGE_DEPTH)."""


class BackendContractError(PrismError, TypeError):
    """A backend class that does not meet the contract its registry entry declares (a missing or misshapen
    method, an abstraction it implements but does not declare): raised when the class is loaded."""
