"""Where data lives: the connection URL and what kind of backend it names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prism_runtime.backends import registry
from prism_runtime.backends.registry import BackendKind
from prism_runtime.errors import ConfigError

URL_ENV = "PRISM_URL"
DEFAULT_URL = "sqlite:///prism.db"


@dataclass(frozen=True)
class BackendUrl:
    """A parsed connection URL."""

    url: str
    kind: BackendKind

    @property
    def redacted(self) -> str:
        """Return the URL with any password replaced, fit for errors and logs."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def resolve_url(url: str | None) -> BackendUrl:
    """Return the URL to use: the argument, else $PRISM_URL, else the embedded SQLite file ./prism.db."""
    chosen = url or os.environ.get(URL_ENV) or DEFAULT_URL
    scheme = chosen.split(":", 1)[0].lower() if ":" in chosen else ""
    kind = registry.kind_of_scheme(scheme)
    if kind is None:
        allowed = ", ".join(f"{s}://" for s in registry.schemes())
        raise ConfigError(
            f"unsupported URL scheme {scheme!r} in {chosen.split('@')[-1]!r}; allowed: {allowed}"
        )
    return BackendUrl(chosen, kind)


def sqlite_path(url: str) -> str:
    """Return the file path of a sqlite:/// URL (':memory:' for sqlite:// and sqlite:///:memory:)."""
    rest = url.split(":", 1)[1]
    if rest in ("", "//", "///:memory:", "//:memory:"):
        return ":memory:"
    if rest.startswith("///"):
        return rest[3:]
    raise ConfigError(
        f"malformed SQLite URL {url!r}; use sqlite:///relative/path.db or sqlite:////absolute/path.db"
    )


# -- namespace binding (prism.yaml) ---------------------------------------------------------------------

CONFIG_KEYS = ("backends", "namespaces", "migrations")
# Sections of the same file that other tools read: `checks` (prism check, prism breaking). The runtime skips them.
OTHER_SECTIONS = ("checks",)


PHASES = ("dual_write", "shadow_read", "promoted", "done")
"""The phases of a migration between backends, in order (docs/migrations-between-backends.md)."""


@dataclass(frozen=True)
class Migration:
    """A namespace moving from one named backend to another, and the phase it starts in."""

    namespace: str
    source: str
    target: str
    phase: str = "dual_write"
    shadow_read_sample: float = 1.0
    strict: bool = False
    phase_poll_seconds: float = 1.0


@dataclass(frozen=True)
class Config:
    """Backend URLs by name, explicit namespace bindings, migrations, and the default for everything else.

    A backend's name is its kind (`postgres: postgresql://...`), or any other name whose URL's scheme says
    the kind (`postgres_new: postgresql://...`): two backends of one kind need two names. A namespace goes to
    its explicit binding, else to its plan's backend kind when that kind has a URL, else to the default (the
    URL passed to connect(), else `backends.sqlite`, else $PRISM_URL or ./prism.db).
    """

    backends: dict[str, BackendUrl]
    default: BackendUrl
    bindings: dict[str, str]
    # The kinds named by the caller (under `backends:`, or by the URL), not filled in as the default.
    named: frozenset[str] = frozenset()
    migrations: dict[str, Migration] = field(default_factory=dict)

    def kind_for(self, namespace: str, planned: str) -> str:
        """Return the name of the backend (its kind, unless named otherwise) serving a namespace whose plan
        chose `planned`."""
        bound = self.bindings.get(namespace)
        if bound is not None:
            return bound
        if planned in self.backends:
            return planned
        return self.default.kind


def load_config(
    url: str | None = None, config: str | os.PathLike[str] | Mapping[str, Any] | None = None
) -> Config:
    """Return the binding of a connect() call: a URL, a prism.yaml path or mapping, or both."""
    if config is None:
        default = resolve_url(url)
        return Config({default.kind: default}, default, {}, frozenset({default.kind}) if url else frozenset())
    source = "config"
    data: Any = config
    if isinstance(config, str | os.PathLike):
        source = os.fspath(config)
        import yaml  # only when a file is read: a service binding by URL does not pay ~20 ms to import it

        try:
            data = yaml.safe_load(Path(source).read_text()) or {}
        except OSError as error:
            raise ConfigError(f"cannot read config {source!r}: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping with keys {', '.join(CONFIG_KEYS)}")
    unknown = sorted(set(data) - set(CONFIG_KEYS) - set(OTHER_SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; allowed: {', '.join(CONFIG_KEYS)}")
    kinds = sorted(registry.kinds())
    backends: dict[str, BackendUrl] = {}
    for name, text in dict(data.get("backends") or {}).items():
        name = str(name)
        try:
            parsed = resolve_url(str(text))
        except ConfigError as error:
            raise ConfigError(f"{source}: backends.{name}: {error}") from None
        if name in kinds and parsed.kind != name:
            raise ConfigError(f"{source}: backends.{name} is a {parsed.kind} URL ({parsed.redacted})")
        if name not in kinds and not name.isidentifier():
            raise ConfigError(
                f"{source}: backends: {name!r} is neither a kind ({', '.join(kinds)}) nor a name "
                "(letters, digits, underscores)"
            )
        backends[name] = parsed
    named = frozenset(backends) | ({resolve_url(url).kind} if url else set())
    default = resolve_url(url) if url else backends.get("sqlite") or resolve_url(None)
    backends[default.kind] = default
    bindings: dict[str, str] = {}
    for namespace, kind in dict(data.get("namespaces") or {}).items():
        if kind not in backends:
            raise ConfigError(
                f"{source}: namespaces.{namespace} is bound to {kind!r}, which has no URL; "
                f"allowed: {', '.join(sorted(backends))} (add it under backends)"
            )
        bindings[str(namespace)] = str(kind)
    migrations = {
        str(namespace): _migration(source, str(namespace), body, backends)
        for namespace, body in dict(data.get("migrations") or {}).items()
    }
    return Config(backends, default, bindings, named, migrations)


_MIGRATION_KEYS = ("source", "target", "phase", "shadow_read_sample", "strict", "phase_poll_seconds")


def _migration(source: str, namespace: str, body: Any, backends: dict[str, BackendUrl]) -> Migration:
    where = f"{source}: migrations.{namespace}"
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(_MIGRATION_KEYS)}")
    unknown = sorted(set(body) - set(_MIGRATION_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(_MIGRATION_KEYS)}")
    ends = {end: str(body.get(end, "")) for end in ("source", "target")}
    for end, name in ends.items():
        if name not in backends:
            raise ConfigError(
                f"{where}.{end} is {name!r}, which has no URL; allowed: {', '.join(sorted(backends))} "
                "(add it under backends)"
            )
    if ends["source"] == ends["target"]:
        raise ConfigError(f"{where}: source and target are both {ends['source']!r}; name two backends")
    phase = str(body.get("phase", "dual_write"))
    if phase not in PHASES:
        raise ConfigError(f"{where}.phase is {phase!r}; allowed: {', '.join(PHASES)}")
    try:
        sample = float(body.get("shadow_read_sample", 1.0))
        poll = float(body.get("phase_poll_seconds", 1.0))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: shadow_read_sample and phase_poll_seconds are numbers") from None
    if not 0.0 <= sample <= 1.0 or poll <= 0:
        raise ConfigError(f"{where}: shadow_read_sample is 0.0..1.0 and phase_poll_seconds above 0")
    strict = body.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"{where}.strict is {strict!r}; allowed: true, false")
    return Migration(namespace, ends["source"], ends["target"], phase, sample, strict, poll)
