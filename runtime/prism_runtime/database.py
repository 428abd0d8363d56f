"""`connect()`: one handle on the backends a program uses, opened and closed together."""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from google.protobuf.message import Message

from prism_runtime.backends import loader, registry
from prism_runtime.backends.contract import Backend, ServesGraph, ServesKeyValue, ServesTimeSeries
from prism_runtime.config import load_config
from prism_runtime.errors import ConfigError, NotOpen
from prism_runtime.graph import GraphBackend
from prism_runtime.keyvalue import KeyValueBackend
from prism_runtime.schema import EntitySpec, registered
from prism_runtime.timeseries import TimeSeriesBackend

if TYPE_CHECKING:
    from prism_runtime.migrations.control import Watcher
    from prism_runtime.pii.wrappers import KeyWrapper

M = TypeVar("M", bound=Message)


class Database:
    """The backends of one program; use as `async with prism_runtime.connect() as db`."""

    blocking = False
    """Whether it opens each kind's blocking driver where there is one (a sync database's, see sync.py)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        key_wrapper: KeyWrapper | None = None,
    ) -> None:
        self.config = load_config(url, config)
        self.url = self.config.default
        self._backends: dict[str, Backend] = {}
        self._key_wrapper = key_wrapper
        self._watcher: Watcher | None = None

    async def open(self) -> Database:
        """Connect to every configured backend and check the explicit bindings; return self."""
        if not self._backends:
            opened: dict[str, Backend] = {}
            try:
                for kind, url in self.config.backends.items():
                    backend = loader.open_backend(url, blocking=self.blocking)
                    opened[kind] = backend
                    await backend.open()
                self._check_bindings(opened)
            except BaseException:
                for backend in opened.values():
                    await backend.close()
                raise
            self._backends = opened
            self._attach_keys(opened)
            if self.config.migrations:
                from prism_runtime.migrations.control import Watcher

                watcher = Watcher(self)
                try:
                    await watcher.start()
                except BaseException:
                    await self.close()
                    raise
                self._watcher = watcher
        return self

    def _attach_keys(self, backends: dict[str, Backend]) -> None:
        # PII keys live on the SQL backends; a stream backend keeps its keys on the first of them.
        from prism_runtime.pii.vault import attach, set_keys_home

        sql = [b for b in backends.values() if registry.runs_sql(b)]
        for driver in sql:
            if self._key_wrapper is not None:
                attach(driver, self._key_wrapper)
        default = backends.get(self.url.kind)
        home = default if default is not None and registry.runs_sql(default) else None
        for backend in backends.values():
            if not registry.runs_sql(backend) and (home or sql):
                set_keys_home(backend, home or sql[0])

    def _check_bindings(self, backends: dict[str, Backend]) -> None:
        # Generated modules imported so far registered their specs: a namespace bound to a backend kind
        # that cannot serve its abstraction fails here, at connect time, not at its first use.
        known = registered()
        for namespace, name in self.config.bindings.items():
            spec = known.get(namespace)
            if spec is not None:
                _check_serves(spec, self.config.backends[name].kind)
        for namespace, migration in self.config.migrations.items():
            spec = known.get(namespace)
            if spec is not None:
                for name in (migration.source, migration.target):
                    _check_serves(spec, self.config.backends[name].kind)

    async def close(self) -> None:
        """Disconnect; the handle can be opened again."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.stop()
        backends, self._backends = self._backends, {}
        for backend in backends.values():
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
        state = "open" if self._backends else "closed"
        urls = ", ".join(u.redacted for u in self.config.backends.values())
        return f"<prism_runtime.Database {urls} {state}>"

    def kind_for(self, spec: EntitySpec) -> str:
        """Return the backend kind that serves `spec`'s namespace under this database's config."""
        return self.config.kind_for(spec.namespace, spec.planned_backend)

    def backend_for(self, spec: EntitySpec) -> Backend:
        """Return the open backend that serves `spec`'s namespace."""
        if not self._backends:
            raise NotOpen(
                f"namespace {spec.namespace!r}: the database is not open; "
                "use `async with prism_runtime.connect() as db` or `db = await prism_runtime.connect()`"
            )
        return self._named(spec, self.kind_for(spec))

    def serving(self, spec: EntitySpec, name: str) -> Backend:
        """Return the open backend `name`, checked to serve `spec`'s abstraction (a migration's end)."""
        return self._named(spec, name)

    def _named(self, spec: EntitySpec, name: str) -> Backend:
        backend = self._backends[name]
        _check_serves(spec, self.config.backends[name].kind)
        return backend

    def named_backend(self, name: str) -> Backend:
        """Return the open backend configured under `name` (its kind, or the name given under `backends:`)."""
        if not self._backends:
            raise NotOpen(f"{self.url.redacted}: the database is not open")
        found = self._backends.get(name)
        if found is None:
            raise ConfigError(f"no backend named {name!r}; allowed: {', '.join(sorted(self._backends))}")
        return found

    @property
    def watcher(self) -> Watcher | None:
        """Return the task following the phases of this database's migrations (None without migrations)."""
        return self._watcher

    def backends(self) -> list[Backend]:
        """Return every open backend (for operations across namespaces, such as forget)."""
        return list(self._backends.values())

    @property
    def backend(self) -> Backend:
        """Return the open backend of the database URL (for operations such as provisioning)."""
        if not self._backends:
            raise NotOpen(f"{self.url.redacted}: the database is not open")
        return self._backends[self.url.kind]

    def keyvalue(self, spec: EntitySpec, message: type[M]) -> KeyValueBackend[M]:
        """Return the KeyValue backend serving `spec` (the routing layer while its namespace migrates)."""
        if self._watcher is not None and spec.namespace in self._watcher.cells:
            from prism_runtime.migrations.mirror import mirrored_keyvalue

            return mirrored_keyvalue(self, self._watcher.cells[spec.namespace], spec, message)
        return cast(ServesKeyValue, self.backend_for(spec)).keyvalue(spec, message)

    def timeseries(self, spec: EntitySpec, message: type[M]) -> TimeSeriesBackend[M]:
        """Return the TimeSeries backend serving `spec` (the routing layer while its namespace migrates)."""
        if self._watcher is not None and spec.namespace in self._watcher.cells:
            from prism_runtime.migrations.mirror_series import mirrored_timeseries

            return mirrored_timeseries(self, self._watcher.cells[spec.namespace], spec, message)
        return cast(ServesTimeSeries, self.backend_for(spec)).timeseries(spec, message)

    def graph(
        self, spec: EntitySpec, message: type[M], node_spec: EntitySpec | None = None
    ) -> GraphBackend[M]:
        """Return the Graph backend serving the edge type `spec` (the routing layer while it migrates)."""
        if self._watcher is not None and spec.namespace in self._watcher.cells:
            from prism_runtime.migrations.mirror_graph import mirrored_graph

            return mirrored_graph(self, self._watcher.cells[spec.namespace], spec, message, node_spec)
        return cast(ServesGraph, self.backend_for(spec)).graph(spec, message, node_spec)


def _check_serves(spec: EntitySpec, kind: str) -> None:
    # backend_for checks before the casts above: a backend serves what its registry entry says.
    if spec.abstraction not in registry.entry(kind).serves:
        serving = ", ".join(registry.serving(spec.abstraction))
        raise ConfigError(
            f"namespace {spec.namespace!r} is {spec.abstraction} data, which a {kind} backend cannot serve; "
            f"bind it to a backend serving {spec.abstraction} ({serving})"
        )


def connect(
    url: str | None = None,
    *,
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    key_wrapper: KeyWrapper | None = None,
) -> Database:
    """Return a database handle for `url`, $PRISM_URL, or the embedded SQLite file ./prism.db.

    URLs: sqlite:///relative.db, sqlite:////absolute.db, sqlite:// (in memory), postgresql://...,
    kafka://host:port, nats://host:port. `config` (a prism.yaml path or the same mapping) names a URL
    per backend kind and may bind namespaces explicitly; see `prism_runtime.config.Config`. PII is
    encrypted under `key_wrapper`, else AWS KMS when $PRISM_KMS_KEY_ID is set, else the local file
    $PRISM_MASTER_KEY_FILE (default ./prism-master.key).
    """
    return Database(url, config=config, key_wrapper=key_wrapper)
