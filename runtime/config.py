"""Where data lives: the connection URL and what kind of backend it names."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from prism_runtime.errors import ConfigError

URL_ENV = "PRISM_URL"
DEFAULT_URL = "sqlite:///prism.db"

# URL scheme -> backend kind; a kind's module lives in prism_runtime.backends.<kind>.
SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "postgres": "postgres",
    "kafka": "kafka",
    "nats": "nats",
}


@dataclass(frozen=True)
class BackendUrl:
    """A parsed connection URL."""

    url: str
    kind: str

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
    kind = SCHEMES.get(scheme)
    if kind is None:
        allowed = ", ".join(f"{s}://" for s in SCHEMES)
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
