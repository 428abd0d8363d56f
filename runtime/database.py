"""`connect()`: one handle on the backends a program uses, opened and closed together."""

from __future__ import annotations

import importlib
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from google.protobuf.message import Message

from prism_runtime.config import BackendUrl, resolve_url
from prism_runtime.errors import NotOpen
from prism_runtime.graph import GraphBackend
from prism_runtime.keyvalue import KeyValueBackend
from prism_runtime.schema import EntitySpec

if TYPE_CHECKING:
    from prism_runtime.pii.wrappers import KeyWrapper

M = TypeVar("M", bound=Message)


class Backend(Protocol):
    """An open connection to one physical backend, serving the abstractions it can."""

    name: str

    async def open(self) -> None:
        """Connect."""
        ...

    async def close(self) -> None:
        """Disconnect and release every resource."""
        ...

    def keyvalue(self, spec: EntitySpec, message: type[M]) -> KeyValueBackend[M]:
        """Return the KeyValue backend of one entity."""
        ...

    def graph(self, spec: EntitySpec, message: type[M], node_spec: EntitySpec | None) -> GraphBackend[M]:
        """Return the Graph backend of one edge type (node_spec: the node type at both ends, if one)."""
        ...


def _open_backend(url: BackendUrl) -> Backend:
    # Imported on demand so that a SQLite-only program needs none of the server drivers.
    module: Any = importlib.import_module(f"prism_runtime.backends.{url.kind}")
    backend: Backend = module.open_backend(url)
    return backend


class Database:
    """The backends of one program; use as `async with prism_runtime.connect() as db`."""

    def __init__(self, url: str | None = None, *, key_wrapper: KeyWrapper | None = None) -> None:
        self.url = resolve_url(url)
        self._backend: Backend | None = None
        self._key_wrapper = key_wrapper

    async def open(self) -> Database:
        """Connect to the backend; return self."""
        if self._backend is None:
            backend = _open_backend(self.url)
            await backend.open()
            self._backend = backend
            if self._key_wrapper is not None:
                from prism_runtime.pii.vault import attach

                attach(backend, self._key_wrapper)  # type: ignore[arg-type]
        return self

    async def close(self) -> None:
        """Disconnect; the handle can be opened again."""
        if self._backend is not None:
            backend, self._backend = self._backend, None
            await backend.close()

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __await__(self) -> Generator[Any, None, Database]:
        return self.open().__await__()

    def __repr__(self) -> str:
        state = "open" if self._backend is not None else "closed"
        return f"<prism_runtime.Database {self.url.redacted} {state}>"

    def backend_for(self, spec: EntitySpec) -> Backend:
        """Return the open backend that serves `spec`'s namespace."""
        if self._backend is None:
            raise NotOpen(
                f"namespace {spec.namespace!r}: the database is not open; "
                "use `async with prism_runtime.connect() as db` or `db = await prism_runtime.connect()`"
            )
        return self._backend

    @property
    def backend(self) -> Backend:
        """Return the open backend of the database URL (for operations such as provisioning)."""
        if self._backend is None:
            raise NotOpen(f"{self.url.redacted}: the database is not open")
        return self._backend

    def keyvalue(self, spec: EntitySpec, message: type[M]) -> KeyValueBackend[M]:
        """Return the KeyValue backend serving `spec`."""
        return self.backend_for(spec).keyvalue(spec, message)

    def graph(
        self, spec: EntitySpec, message: type[M], node_spec: EntitySpec | None = None
    ) -> GraphBackend[M]:
        """Return the Graph backend serving the edge type `spec`."""
        return self.backend_for(spec).graph(spec, message, node_spec)


def connect(url: str | None = None, *, key_wrapper: KeyWrapper | None = None) -> Database:
    """Return a database handle for `url`, $PRISM_URL, or the embedded SQLite file ./prism.db.

    URLs: sqlite:///relative.db, sqlite:////absolute.db, sqlite:// (in memory). PII is encrypted under
    `key_wrapper`, else AWS KMS when $PRISM_KMS_KEY_ID is set, else the local file $PRISM_MASTER_KEY_FILE
    (default ./prism-master.key).
    """
    return Database(url, key_wrapper=key_wrapper)
