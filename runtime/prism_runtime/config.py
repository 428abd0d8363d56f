"""Where data lives: the connection URL and what kind of backend it names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
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

CONFIG_KEYS = ("backends", "namespaces")
# Sections of the same file that other tools read: `checks` (prism check, prism breaking) and `admin` (prism
# admin). The runtime skips them.
OTHER_SECTIONS = ("checks", "admin")


@dataclass(frozen=True)
class Config:
    """Backend URLs by kind, explicit namespace bindings, and the default for everything else.

    A namespace goes to its explicit binding, else to its plan's backend kind when that kind has a URL,
    else to the default (the URL passed to connect(), else `backends.sqlite`, else $PRISM_URL or
    ./prism.db).
    """

    backends: dict[str, BackendUrl]
    default: BackendUrl
    bindings: dict[str, str]
    # The kinds named by the caller (under `backends:`, or by the URL), not filled in as the default.
    named: frozenset[str] = frozenset()

    def kind_for(self, namespace: str, planned: str) -> str:
        """Return the backend kind that serves a namespace whose plan chose `planned`."""
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
    for kind, text in dict(data.get("backends") or {}).items():
        if kind not in kinds:
            raise ConfigError(f"{source}: backends: unknown kind {kind!r}; allowed: {', '.join(kinds)}")
        parsed = resolve_url(str(text))
        if parsed.kind != kind:
            raise ConfigError(f"{source}: backends.{kind} is a {parsed.kind} URL ({parsed.redacted})")
        backends[kind] = parsed
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
    return Config(backends, default, bindings, named)
