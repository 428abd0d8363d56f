"""The admin's settings: the `admin:` section of prism.yaml, the command line, and the token's source."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from prism_runtime.errors import ConfigError
from prism_runtime.pii.audit import ACTOR_ENV

TOKEN_ENV = "PRISM_ADMIN_TOKEN"
TOKEN_FILE_ENV = "PRISM_ADMIN_TOKEN_FILE"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9470
_KEYS = ("actor", "metrics_url", "source", "token_file", "scrape_seconds", "window_minutes")


@dataclass(frozen=True)
class AdminSettings:
    """Everything the admin application needs to start."""

    config: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    actor: str = "prism-admin"
    source: Path | None = None  # a generated directory, a .proto directory or a prism.plan.json
    metrics_url: str | None = None
    token: str | None = None
    scrape_seconds: float = 5.0
    window_minutes: float = 10.0

    def __repr__(self) -> str:
        # The token never appears in a log line or a traceback's locals.
        token = "set" if self.token else "none"
        return f"<AdminSettings {self.config} on {self.host}:{self.port} token={token}>"

    @property
    def loopback(self) -> bool:
        """Return whether the server listens on a loopback address only."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Return whether `host` is a loopback address (or `localhost`)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(
    config: str | os.PathLike[str],
    *,
    host: str | None = None,
    port: int | None = None,
    source: str | None = None,
    environ: dict[str, str] | None = None,
) -> AdminSettings:
    """Read the `admin:` section of `config`; the arguments override it; refuse a non-loopback bind without
    a token."""
    env = dict(os.environ) if environ is None else environ
    path = Path(config)
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"cannot read config {str(path)!r}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    section: Any = (data.get("admin") or {}) if isinstance(data, dict) else {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: admin must be a mapping with keys {', '.join(_KEYS)}")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{path}: admin: unknown key {unknown[0]!r}; allowed: {', '.join(_KEYS)}")
    chosen_source = source or section.get("source")
    settings = AdminSettings(
        config=path,
        host=host or DEFAULT_HOST,
        port=DEFAULT_PORT if port is None else port,
        actor=str(section.get("actor") or env.get(ACTOR_ENV) or "prism-admin"),
        source=Path(str(chosen_source)) if chosen_source else None,
        metrics_url=str(section["metrics_url"]) if section.get("metrics_url") else None,
        token=_token(env, section.get("token_file"), path),
        scrape_seconds=_positive(section, "scrape_seconds", 5.0, path),
        window_minutes=_positive(section, "window_minutes", 10.0, path),
    )
    if not settings.loopback and not settings.token:
        raise ConfigError(
            f"prism admin on {settings.host} is reachable from other machines and needs a token: set "
            f"${TOKEN_ENV}, or ${TOKEN_FILE_ENV} or admin.token_file to a file holding one; or bind "
            f"{DEFAULT_HOST}"
        )
    return settings


def _token(env: dict[str, str], token_file: object, config: Path) -> str | None:
    named = env.get(TOKEN_FILE_ENV) or (str(token_file) if token_file else None)
    if env.get(TOKEN_ENV):
        token, where = env[TOKEN_ENV].strip(), f"${TOKEN_ENV}"
    elif named is not None:
        try:
            token, where = Path(named).read_text().strip(), repr(named)
        except OSError as error:
            raise ConfigError(
                f"{config}: cannot read the admin token file {named!r}: {error.strerror}"
            ) from None
    else:
        return None
    if len(token) < 16:
        raise ConfigError(f"the admin token in {where} is shorter than 16 characters; use a random one")
    return token


def _positive(section: dict[str, Any], key: str, default: float, path: Path) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{path}: admin.{key} must be a positive number of {key.split('_')[1]}")
    return float(value)
