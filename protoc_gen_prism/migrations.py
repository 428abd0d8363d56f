"""Baseline model -> current model: the SQL steps that bring an existing table along, per dialect.

Pure functions of two models. Columns are matched by field number, so a renamed field is a RENAME COLUMN.
New tables need no step (the generated DDL creates them); what would lose data (a column or table removed)
is an expand/contract pair emitted only when asked; what no ALTER can do safely (a key or column type change)
is withheld with the reason, for a person to plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from prism_runtime.schema import Abstraction, Column, EntitySpec
from prism_runtime.sql.names import index_columns
from protoc_gen_prism import __version__
from protoc_gen_prism.checks.compare import pair_entities
from protoc_gen_prism.checks.storage import columns_by_key, sql_types
from protoc_gen_prism.model import Entity, Schema
from protoc_gen_prism.sql import alter
from protoc_gen_prism.sql.dialects import DdlDialect, ddl_dialect_for

DIALECTS = ("postgres", "sqlite")
Build = Callable[[DdlDialect], list[exp.Expression]]
# Within one migration: names first, so that later steps and the DDL see the current ones.
_ORDER = ("rename_table", "rename_column", "drop_index", "add_column", "create_index", "expand")


@dataclass(frozen=True)
class Step:
    """One change to one table, rendered per dialect."""

    phase: str
    summary: str
    build: Build


@dataclass(frozen=True)
class MigrationPlan:
    """What `prism migrate` writes: the migration, the contract steps for later, and what it will not write."""

    steps: tuple[Step, ...] = ()
    contract: tuple[Step, ...] = ()
    withheld: tuple[str, ...] = field(default_factory=tuple)
    blocking: tuple[str, ...] = field(default_factory=tuple)
    """The withheld changes the current schema cannot run without (a key, abstraction or column type change)."""

    @property
    def empty(self) -> bool:
        """Return whether there is nothing to write."""
        return not self.steps and not self.contract


def plan_migration(before: Schema, after: Schema, *, allow_destructive: bool = False) -> MigrationPlan:
    """Return the steps from `before` to `after`; destructive ones only with `allow_destructive`."""
    steps: list[Step] = []
    contract: list[Step] = []
    withheld: list[str] = []
    blocking: list[str] = []
    pairs = pair_entities(before, after)
    for old, new in pairs:
        reason = _cannot_alter(old, new)
        if reason:
            _block(f"{new.namespace}: {reason}; create a new namespace and copy the data", withheld, blocking)
            continue
        _table_steps(old.spec, new.spec, steps, contract, withheld, blocking, allow_destructive)
    kept = {id(old) for old, _ in pairs}
    for old in before.entities:
        if id(old) in kept:
            continue
        if allow_destructive:
            contract.append(
                _step(
                    "drop",
                    f"drop table {old.namespace}",
                    _call(alter.drop_table, old.namespace, dialect=False),
                )
            )
        else:
            withheld.append(
                f"{old.namespace}: {old.full_name} is no longer an entity; --allow-destructive writes DROP TABLE "
                "as a contract step"
            )
    steps.sort(key=lambda s: _ORDER.index(s.phase))
    return MigrationPlan(tuple(steps), tuple(contract), tuple(withheld), tuple(blocking))


def _block(reason: str, withheld: list[str], blocking: list[str]) -> None:
    """Withhold a change the current schema cannot run without: `prism migrate` then writes nothing."""
    withheld.append(reason)
    blocking.append(reason)


def _cannot_alter(old: Entity, new: Entity) -> str:
    if old.abstraction is not new.abstraction:
        return f"abstraction changes from {old.abstraction} to {new.abstraction}"
    if [c.number for c in old.spec.key_columns] != [c.number for c in new.spec.key_columns]:
        return "the primary key (key, sort_key, or an edge's source and target) changes"
    return ""


def _step(phase: str, summary: str, build: Build) -> Step:
    return Step(phase, summary, build)


def _call(fn: Callable[..., exp.Expression], *args: Any, dialect: bool = True, **options: Any) -> Build:
    """Return a Build running one statement builder with fixed arguments (and the dialect, last)."""

    def build(d: DdlDialect) -> list[exp.Expression]:
        return [fn(*args, d, **options) if dialect else fn(*args, **options)]

    return build


def _table_steps(
    old: EntitySpec,
    new: EntitySpec,
    steps: list[Step],
    contract: list[Step],
    withheld: list[str],
    blocking: list[str],
    allow_destructive: bool,
) -> None:
    table = new.namespace
    renamed = old.namespace != new.namespace
    series = new.abstraction is Abstraction.TIME_SERIES
    if renamed:
        steps.append(
            _step(
                "rename_table",
                f"rename table {old.namespace} to {table}",
                lambda d: [alter.rename_table(old.namespace, table, d)],
            )
        )
    now = columns_by_key(new)
    was = columns_by_key(old)
    for key, column in was.items():
        current = now.get(key)
        if current is None:
            _removed(table, column, steps, contract, withheld, allow_destructive, series)
            continue
        if sql_types(column) != sql_types(current):
            _block(
                f"{table}.{current.name}: column type changes from {sql_types(column)[0]} to {sql_types(current)[0]}; "
                "add a new field and backfill it instead",
                withheld,
                blocking,
            )
            continue
        if current.name != column.name:
            steps.append(
                _step(
                    "rename_column",
                    f"rename column {table}.{column.name} to {current.name}",
                    _call(alter.rename_column, table, column.name, current.name),
                )
            )
        index_moved = renamed or current.name != column.name
        if column.indexed and (index_moved or not current.indexed):
            steps.append(
                _step(
                    "drop_index",
                    f"drop index of {old.namespace}.{column.name}",
                    _call(alter.drop_index, old.namespace, column.name, series=series),
                )
            )
        if current.indexed and (index_moved or not column.indexed):
            steps.append(_create_index(new, current, series))
    for key, column in now.items():
        if key in was:
            continue
        steps.append(
            _step(
                "add_column",
                f"add column {table}.{column.name}",
                _call(alter.add_column, table, column),
            )
        )
        if column.indexed:
            steps.append(_create_index(new, column, series))


def _create_index(spec: EntitySpec, column: Column, series: bool) -> Step:
    table = spec.namespace
    return _step(
        "create_index",
        f"create index on {table}.{column.name}",
        _call(alter.create_index, table, column.name, series=series, columns=index_columns(spec, column)),
    )


def _what(column: Column) -> str:
    if column.expiry:
        return "the expiry column of (prism.ttl_seconds)"
    return (
        f"the blind index of {column.blind_index_of}" if column.blind_index_of else f"field {column.number}"
    )


def _removed(
    table: str,
    column: Column,
    steps: list[Step],
    contract: list[Step],
    withheld: list[str],
    allow: bool,
    series: bool,
) -> None:
    if not allow:
        withheld.append(
            f"{table}.{column.name}: {_what(column)} was removed; --allow-destructive writes the expand step "
            "now and the DROP COLUMN contract step for later"
        )
        return

    def expand(d: DdlDialect) -> list[exp.Expression]:
        # Writers that omit the column must still succeed while it exists (Postgres bulk upserts stage rows
        # in a copy of the table's NOT NULL constraints without its defaults).
        if column.nullable or not d.supports_drop_not_null:
            return []
        return [alter.drop_not_null(table, column.name, d)]

    def drop(d: DdlDialect) -> list[exp.Expression]:
        # SQLite refuses to drop an indexed column: the index goes first.
        first: list[exp.Expression] = (
            [alter.drop_index(table, column.name, d, series=series)] if column.indexed else []
        )
        return [*first, alter.drop_column(table, column.name, d)]

    steps.append(
        _step("expand", f"expand: stop requiring {table}.{column.name} ({_what(column)} removed)", expand)
    )
    contract.append(_step("drop", f"contract: drop column {table}.{column.name}", drop))


def render(steps: tuple[Step, ...], dialect_name: str, title: str) -> str:
    """Return a migration file: a header, then each step's summary and statements."""
    dialect = ddl_dialect_for(dialect_name)
    parts = [
        f"-- Generated by prism migrate {__version__}: {title}. Review, commit, apply with prism provision.",
        f"-- Dialect: {dialect_name}. Idempotent: prism provision skips a step whose work is already done.",
    ]
    for step in steps:
        parts += ["", f"-- {step.summary}"]
        statements = step.build(dialect)
        if not statements:
            parts.append(f"-- (nothing to do on {dialect_name})")
        parts += [s.sql(dialect=dialect_name) + ";" for s in statements]
    return "\n".join(parts) + "\n"


def slug(text: str) -> str:
    """Return a file-name-safe slug of at most 48 characters."""
    words = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return words[:48].rstrip("_") or "schema_change"


def default_name(plan: MigrationPlan) -> str:
    """Return a slug describing the plan: its first step, and how many more there are."""
    steps = plan.steps or plan.contract
    if not steps:
        return "schema_change"
    more = len(plan.steps) + len(plan.contract) - 1
    return slug(steps[0].summary.split(":")[-1]) + (f"_and_{more}_more" if more > 0 else "")
