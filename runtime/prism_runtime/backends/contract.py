"""The contract of a backend class, checked when the registry loads it.

Every backend has `Backend`'s members; it has one method per abstraction its entry says it serves (and none
for an abstraction it does not serve), and the members of each capability its entry declares: Capability.SQL
is the SqlDriver protocol, Capability.STREAM_ADMIN is `admin()` returning a StreamAdmin.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from google.protobuf.message import Message

from prism_runtime.backends.registry import BackendEntry, BackendKind, Capability
from prism_runtime.errors import BackendContractError
from prism_runtime.schema import Abstraction, EntitySpec
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.stream_plans import PlannedStream

if TYPE_CHECKING:
    from prism_runtime.config import BackendUrl
    from prism_runtime.graph import GraphBackend
    from prism_runtime.keyvalue import KeyValueBackend
    from prism_runtime.timeseries import TimeSeriesBackend

M = TypeVar("M", bound=Message)


class Backend(Protocol):
    """An open connection to one physical backend; what it serves is its registry entry's."""

    kind: BackendKind
    """The registry entry the class belongs to."""
    name: str
    """The backend as errors name it: kind and redacted location."""

    def __init__(self, url: BackendUrl) -> None: ...

    async def open(self) -> None:
        """Connect (or get ready to, on first use)."""
        ...

    async def close(self) -> None:
        """Disconnect and release every resource."""
        ...


class ServesKeyValue(Protocol):
    """A backend serving the KeyValue abstraction."""

    def keyvalue(self, spec: EntitySpec, message: type[M]) -> KeyValueBackend[M]:
        """Return the KeyValue backend of one entity."""
        ...


class ServesTimeSeries(Protocol):
    """A backend serving the TimeSeries abstraction."""

    def timeseries(self, spec: EntitySpec, message: type[M]) -> TimeSeriesBackend[M]:
        """Return the TimeSeries backend of one entity."""
        ...


class ServesGraph(Protocol):
    """A backend serving the Graph abstraction."""

    def graph(self, spec: EntitySpec, message: type[M], node_spec: EntitySpec | None) -> GraphBackend[M]:
        """Return the Graph backend of one edge type (node_spec: the node type at both ends, if one)."""
        ...


@dataclass(frozen=True)
class Change:
    """What provisioning does (or would do) to one topic or stream."""

    backend: str  # "kafka" or "nats"
    name: str
    action: str  # "create", "update", "unchanged"
    details: tuple[str, ...] = ()
    refused: tuple[str, ...] = field(default=(), repr=False)

    def __str__(self) -> str:
        mark = {"create": "+", "update": "~", "unchanged": "="}[self.action]
        what = "topic" if self.backend == "kafka" else "stream"
        text = f"{mark} {self.backend} {what} {self.name}: {self.action}"
        return text + "".join(f"\n    {d}" for d in self.details)


Wanted = PlannedStream
"""One planned topic or stream, as each backend's StreamAdmin takes it: its namespace and typed settings."""


class StreamAdmin(Protocol):
    """An admin connection that compares a backend's topics or streams with a plan and applies the difference."""

    name: str

    async def open(self) -> None:
        """Connect; BackendUnavailable when the server cannot be reached."""
        ...

    async def close(self) -> None:
        """Disconnect."""
        ...

    async def diff(self, wanted: Wanted) -> Change:
        """Return what provisioning would do to one planned topic or stream (refusals included)."""
        ...

    async def apply(self, change: Change, wanted: Wanted) -> None:
        """Do what `diff` returned."""
        ...

    async def records(self, wanted: Wanted) -> int | None:
        """Return how many records the topic or stream holds now; None when it does not exist."""
        ...


class AdministersStreams(Protocol):
    """A backend with Capability.STREAM_ADMIN."""

    def admin(self) -> StreamAdmin:
        """Return an admin connection (not yet opened) to the servers this backend's URL names."""
        ...


SERVING: dict[Abstraction, type[Any]] = {
    Abstraction.KEY_VALUE: ServesKeyValue,
    Abstraction.TIME_SERIES: ServesTimeSeries,
    Abstraction.GRAPH: ServesGraph,
}
CAPABLE: dict[Capability, type[Any]] = {
    Capability.SQL: SqlDriver,
    Capability.STREAM_ADMIN: AdministersStreams,
}
# Data members an instance sets in __init__, which a class therefore need not carry.
_INSTANCE_MEMBERS = frozenset({"name"})


def check_class(cls: object, entry: BackendEntry, where: str = "") -> type[Backend]:
    """Return `cls` when it meets the contract `entry` declares; else raise BackendContractError naming
    every way it does not. `where` names the class (default: the entry's async class)."""
    where = where or f"{entry.module}.{entry.class_name}"
    if not isinstance(cls, type):
        raise BackendContractError(f"{where}: no such class (the registry entry of {entry.kind} names it)")
    problems: list[str] = []
    if getattr(cls, "kind", None) != entry.kind:
        problems.append(f"kind is {getattr(cls, 'kind', None)!r}, its registry entry's is {entry.kind!r}")
    if "serves" in dir(cls):
        problems.append("declares `serves` itself; what it serves is its registry entry's")
    klass: type = cls
    wanted: list[type[Any]] = [
        Backend,
        *(SERVING[a] for a in entry.serves),
        *(CAPABLE[c] for c in entry.capabilities),
    ]
    for protocol in wanted:
        problems += _unmet(klass, protocol)
    for abstraction, protocol in SERVING.items():
        if abstraction not in entry.serves:
            problems += [
                f"has {name}() but its registry entry does not say it serves {abstraction}"
                for name in _methods(protocol)
                if hasattr(klass, name)
            ]
    if problems:
        raise BackendContractError(f"{where} breaks the backend contract: " + "; ".join(problems))
    return cast("type[Backend]", klass)


def _methods(protocol: type[Any]) -> dict[str, Callable[..., Any]]:
    return {
        name: value
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


def _unmet(cls: type, protocol: type[Any]) -> list[str]:
    problems = [
        f"lacks {name} ({protocol.__name__})"
        for name in vars(protocol).get("__annotations__", {})
        if name not in _INSTANCE_MEMBERS and not hasattr(cls, name)
    ]
    for name, wanted in _methods(protocol).items():
        found = getattr(cls, name, None)
        if not callable(found):
            problems.append(f"lacks {name}() ({protocol.__name__})")
            continue
        if inspect.iscoroutinefunction(wanted) != inspect.iscoroutinefunction(found):
            problems.append(f"{name}() must {'' if inspect.iscoroutinefunction(wanted) else 'not '}be async")
        problems += [f"{name}(): {p}" for p in _signature_problems(wanted, found)]
    return problems


def _signature_problems(wanted: Callable[..., Any], found: Callable[..., Any]) -> list[str]:
    want = inspect.signature(wanted).parameters
    have = inspect.signature(found).parameters
    problems = [
        f"parameter {name!r} missing or of another kind"
        for name, param in want.items()
        if name not in have or have[name].kind != param.kind
    ]
    problems += [
        f"parameter {name!r} is not in the contract and has no default"
        for name, param in have.items()
        if name not in want
        and param.default is inspect.Parameter.empty
        and param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    order = [n for n, p in want.items() if p.kind in positional]
    if [n for n, p in have.items() if p.kind in positional][: len(order)] != order and not problems:
        problems.append(f"positional parameters are not {', '.join(order)}")
    return problems
