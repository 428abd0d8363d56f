"""Plugin parameters (`--prism_opt=...`) parsed once into a typed settings object."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from protoc_gen_prism.diagnostics import allowed_values

# Written by every compile without sqlglot (protoc_gen_prism.sql.ddl); any other dialect needs it.
BUILTIN_DIALECTS = ("postgres", "sqlite")


class MessageStyle(StrEnum):
    """Which message classes generated clients take and return."""

    PROTOBUF = "protobuf"  # the *_pb2 classes (protoc's python_out), typed by mypy-protobuf
    BETTERPROTO = (
        "betterproto"  # betterproto 2.x dataclasses, stored through the *_pb2 classes (docs/betterproto.md)
    )


class Profile(StrEnum):
    """The deployment the capacity planner sizes for."""

    LOCAL = "local"  # one broker/server: replicas 1
    PRODUCTION = "production"  # replicas 3, min.insync.replicas 2


class StrimziApi(StrEnum):
    """The kafka.strimzi.io API version of the KafkaTopic manifests."""

    V1BETA2 = "v1beta2"  # Strimzi before 0.49, and up to 0.52
    V1 = "v1"  # Strimzi 0.49 and later; the only one from 1.0


class SettingsError(ValueError):
    """A plugin parameter that is unknown or has a wrong value."""


@dataclass(frozen=True)
class Settings:
    """Everything a user can set through the plugin parameter."""

    messages: MessageStyle = MessageStyle.PROTOBUF
    # Extra sqlglot dialects to render DDL for, beyond postgres and sqlite (repeatable).
    sql_dialects: tuple[str, ...] = field(default_factory=tuple)
    # The deployment the planner sizes replicas for.
    profile: Profile = Profile.PRODUCTION
    # The apiVersion of the KafkaTopic manifests (default v1beta2, which existing clusters serve).
    strimzi_api: StrimziApi = StrimziApi.V1BETA2


_KEYS = ("messages", "sql_dialect", "profile", "strimzi_api")


def parse_parameter(parameter: str) -> Settings:
    """Parse protoc's comma-joined `key=value` parameter; a key may repeat where it makes sense."""
    messages = MessageStyle.PROTOBUF
    dialects: list[str] = []
    profile = Profile.PRODUCTION
    strimzi_api = StrimziApi.V1BETA2
    for item in filter(None, (part.strip() for part in parameter.split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key not in _KEYS:
            raise SettingsError(f"unknown parameter {key!r}; {allowed_values(key, _KEYS)}")
        if not sep or not value:
            raise SettingsError(f"parameter {key!r} needs a value: {key}=VALUE")
        if key == "messages":
            try:
                messages = MessageStyle(value)
            except ValueError:
                raise SettingsError(
                    f"messages={value!r} is not supported; {allowed_values(value, list(MessageStyle))}"
                ) from None
        elif key == "sql_dialect":
            _check_dialect(value)
            dialects.append(value)
        elif key == "profile":
            try:
                profile = Profile(value)
            except ValueError:
                raise SettingsError(
                    f"profile={value!r} is not supported; {allowed_values(value, list(Profile))}"
                ) from None
        elif key == "strimzi_api":
            try:
                strimzi_api = StrimziApi(value)
            except ValueError:
                raise SettingsError(
                    f"strimzi_api={value!r} is not supported; {allowed_values(value, list(StrimziApi))}"
                ) from None
    return Settings(
        messages=messages,
        sql_dialects=tuple(dict.fromkeys(dialects)),
        profile=profile,
        strimzi_api=strimzi_api,
    )


def _check_dialect(name: str) -> None:
    """Raise SettingsError unless sqlglot knows the dialect (it is loaded only for a dialect beyond the two)."""
    if name in BUILTIN_DIALECTS:
        return
    import sqlglot

    known = sorted(d for d in sqlglot.Dialect.classes if d)
    if name not in known:
        raise SettingsError(f"sql_dialect={name!r} is not a sqlglot dialect; {allowed_values(name, known)}")
