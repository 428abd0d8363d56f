"""The rule registry: every check's ID, default severity, one-line summary and example, and the findings it yields."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from protoc_gen_prism.diagnostics import Location


class Severity(StrEnum):
    """How a finding counts: errors fail the run, warnings are printed, off rules do not run."""

    ERROR = "error"
    WARNING = "warning"
    OFF = "off"


class Category(StrEnum):
    """What a rule protects; lint rules look at one schema, the others compare two."""

    LINT = "lint"
    WIRE = "wire"
    STORAGE = "storage"
    PROTECTION = "protection"
    STREAMS = "streams"


@dataclass(frozen=True)
class Rule:
    """A check as users see it: in findings, in the config file and in docs/checks.md."""

    id: str
    category: Category
    severity: Severity
    summary: str
    # Lint: a schema that fires the rule. Breaking: the baseline, with `example_after` the change.
    example: str
    example_after: str = ""


@dataclass(frozen=True)
class Hit:
    """What a check function reports: where and what, before severity and config apply."""

    location: Location
    message: str


@dataclass(frozen=True, order=True)
class Finding:
    """One rule firing at one place, with the severity the config gives it."""

    location: Location
    rule: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        suffix = " (warning)" if self.severity is Severity.WARNING else ""
        return f"{self.location}: {self.rule}: {self.message}{suffix}"


SCHEMA_INVALID = Rule(
    id="SCHEMA_INVALID",
    category=Category.LINT,
    severity=Severity.ERROR,
    summary="the plugin refuses the schema (a KeyValue message without a key, an append_heavy message without "
    "event_time, a graph edge without source and target, searchable on a field that is not encrypted, a namespace "
    "used twice, a backend that cannot serve the entity, a wrong option value, ...): always an error",
    example='message M {\n  option (prism.access_pattern) = "write_heavy";\n  string id = 1;\n}',
)

C = TypeVar("C", bound=Callable[..., Iterable[Hit]])

RULES: dict[str, Rule] = {SCHEMA_INVALID.id: SCHEMA_INVALID}
CHECKS: dict[str, Callable[..., Iterable[Hit]]] = {}


def rule(
    id: str, category: Category, severity: Severity, summary: str, example: str, example_after: str = ""
) -> Callable[[C], C]:
    """Register the decorated function as the check of a new rule."""

    def register(check: C) -> C:
        assert id not in RULES, f"rule {id} registered twice"
        RULES[id] = Rule(id, category, severity, summary, example.strip("\n"), example_after.strip("\n"))
        CHECKS[id] = check
        return check

    return register
