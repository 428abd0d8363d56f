"""The backend registry: one entry per backend, read without drivers, and a class checked when it is loaded."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from prism_runtime.backends import loader, registry
from prism_runtime.backends.contract import Backend
from prism_runtime.backends.registry import BackendEntry, BackendKind, Capability
from prism_runtime.config import BackendUrl
from prism_runtime.errors import BackendContractError, ConfigError
from prism_runtime.schema import Abstraction, EntitySpec

KV_ONLY = frozenset({Abstraction.KEY_VALUE})
STREAM = frozenset({Abstraction.TIME_SERIES})


def entry(class_name: str, serves: frozenset[Abstraction], *capabilities: Capability) -> BackendEntry:
    return BackendEntry(BackendKind.KAFKA, ("kafka",), serves, frozenset(capabilities), __name__, class_name)


def test_the_registry_says_which_backends_serve_each_abstraction() -> None:
    assert registry.serving(Abstraction.KEY_VALUE) == ["sqlite", "postgres"]
    assert registry.serving(Abstraction.GRAPH) == ["sqlite", "postgres"]
    assert registry.serving(Abstraction.TIME_SERIES) == ["sqlite", "postgres", "kafka", "nats"]
    assert registry.with_capability(Capability.SQL) == ["sqlite", "postgres"]
    assert registry.with_capability(Capability.STREAM_ADMIN) == ["kafka", "nats"]
    assert registry.schemes() == ["sqlite", "postgresql", "postgres", "kafka", "nats"]
    assert registry.kind_of_scheme("POSTGRESQL") is BackendKind.POSTGRES
    assert registry.kind_of_scheme("mysql") is None
    with pytest.raises(
        ConfigError, match=r"unknown backend kind 'redis'; allowed: sqlite, postgres, kafka, nats"
    ):
        registry.entry("redis")


@pytest.mark.parametrize("kind", list(BackendKind))
def test_every_backend_class_meets_the_contract_of_its_entry(kind: BackendKind) -> None:
    cls = loader.backend_class(kind)
    assert cls.kind is kind
    assert cls.__name__ == registry.entry(kind).class_name
    assert loader.backend_class(kind) is cls  # loaded and checked once


def test_reading_the_registry_imports_no_driver_and_no_backend() -> None:
    code = (
        "import sys; from prism_runtime.backends import registry; from prism_runtime.schema import Abstraction; "
        "registry.serving(Abstraction.GRAPH); import protoc_gen_prism.planner; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('asyncpg', 'aiokafka', 'nats') "
        "or m.startswith('prism_runtime.backends.') and m != 'prism_runtime.backends.registry'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- classes that break the contract, loaded through entries naming them -------------------------------


class Missing:
    """No close(), a synchronous open(), and a keyvalue() its entry does not declare."""

    kind = BackendKind.KAFKA

    def __init__(self, url: BackendUrl) -> None:
        self.name = "missing"

    def open(self) -> None:
        pass

    def keyvalue(self, spec: EntitySpec, message: type[Any]) -> Any:
        raise NotImplementedError

    def timeseries(self, spec: EntitySpec) -> Any:
        raise NotImplementedError


def test_a_class_missing_a_method_fails_when_loaded() -> None:
    with pytest.raises(BackendContractError) as error:
        loader.load_class(entry("Missing", STREAM), "a test")
    assert str(error.value) == (
        f"{__name__}.Missing breaks the backend contract: open() must be async; lacks close() (Backend); "
        "timeseries(): parameter 'message' missing or of another kind; "
        "has keyvalue() but its registry entry does not say it serves key_value"
    )


class Declares:
    """Says what it serves itself, has another kind, and lacks the method of what its entry says it serves."""

    kind = BackendKind.NATS
    serves = KV_ONLY

    def __init__(self, url: BackendUrl) -> None:
        self.name = "declares"

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass


def test_a_class_must_leave_what_it_serves_to_its_entry() -> None:
    with pytest.raises(BackendContractError) as error:
        loader.load_class(entry("Declares", KV_ONLY), "a test")
    message = str(error.value)
    assert (
        "kind is <BackendKind.NATS: 'nats'>, its registry entry's is <BackendKind.KAFKA: 'kafka'>" in message
    )
    assert "declares `serves` itself; what it serves is its registry entry's" in message
    assert "lacks keyvalue() (ServesKeyValue)" in message


class HalfSql:
    """A SQL backend with only execute(), which takes an extra argument without a default."""

    kind = BackendKind.KAFKA
    dialect = None

    def __init__(self, url: BackendUrl) -> None:
        self.name = "half"

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def execute(self, sql: str, args: Any, extra: int, *, namespace: str) -> int:
        return 0


def test_a_capability_brings_its_protocol() -> None:
    with pytest.raises(BackendContractError) as error:
        loader.load_class(entry("HalfSql", frozenset(), Capability.SQL, Capability.STREAM_ADMIN), "a test")
    message = str(error.value)
    assert "execute(): parameter 'extra' is not in the contract and has no default" in message
    for method in ("execute_many", "fetch", "fetch_first", "upsert_many", "execute_script", "setup_table"):
        assert f"lacks {method}() (SqlDriver)" in message
    assert "lacks admin() (AdministersStreams)" in message
    assert "dialect" not in message and "open" not in message


def test_an_entry_naming_no_class_fails_when_loaded() -> None:
    with pytest.raises(BackendContractError, match=r"test_registry\.Nowhere: no such class"):
        loader.load_class(entry("Nowhere", STREAM), "a test")


def test_a_backend_class_is_a_backend() -> None:
    url = BackendUrl("sqlite://", BackendKind.SQLITE)
    backend: Backend = loader.open_backend(url)
    assert registry.runs_sql(backend)
    assert backend.name == "sqlite (:memory:)"
