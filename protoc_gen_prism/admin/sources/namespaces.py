"""The Namespaces page: each planned namespace, where it is bound and why, its retention, PII and size."""

from __future__ import annotations

from dataclasses import dataclass

from prism_runtime.backends import registry
from prism_runtime.backends.registry import Capability
from prism_runtime.pii import tables
from prism_runtime.pii.catalog import Catalog
from prism_runtime.schema import Column, EntitySpec
from prism_runtime.sql.driver import SqlDriver
from protoc_gen_prism.admin.deployment import Deployment
from protoc_gen_prism.admin.sources.databases import opened, problem
from protoc_gen_prism.admin.sources.streams import streams
from protoc_gen_prism.cli.compile.plan import bindings, summary
from protoc_gen_prism.cli.ops.database import has_table


@dataclass(frozen=True)
class PiiField:
    """One field holding personal data, and how it is protected (never its value)."""

    name: str
    pii: str
    protection: tuple[str, ...]


@dataclass(frozen=True)
class NamespaceRow:
    """One namespace as the Namespaces page shows it."""

    namespace: str
    message: str
    abstraction: str
    planned: str
    bound: str
    settings: str
    rationale: tuple[str, ...]
    pii: tuple[PiiField, ...] | None  # None: no process has registered the entity in the PII catalog yet
    rows: int | None  # rows of a table, records of a topic or stream; None: see count_note
    count_note: str = ""


@dataclass(frozen=True)
class NamespacesView:
    """The page: its rows, and what could not be read."""

    rows: list[NamespaceRow]
    problems: list[str]


def protection(column: Column) -> tuple[str, ...]:
    """Return the words that say how a PII column is protected."""
    words = [
        word
        for word, on in (
            ("encrypted", column.encrypted),
            ("searchable", column.searchable),
            ("audited", column.audited),
            ("masked in logs", column.masked),
        )
        if on
    ]
    if not column.encrypted:
        words.insert(0, f"in clear: {column.plaintext_reason}" if column.plaintext_reason else "in clear")
    return tuple(words)


def pii_fields(spec: EntitySpec) -> tuple[PiiField, ...]:
    """Return the PII fields of a registered entity."""
    return tuple(
        PiiField(c.name, c.pii, protection(c)) for c in spec.columns if c.pii and not c.blind_index_of
    )


async def _count(driver: SqlDriver, namespace: str) -> int | None:
    table = namespace  # a namespace's table bears its name (prism_runtime.sql.names.table_name)
    if not await has_table(driver, table):
        return None
    rows = await driver.fetch(f"SELECT COUNT(*) FROM {driver.dialect.quote(table)}", (), namespace=namespace)
    return int(rows[0][0])


async def namespaces(deployment: Deployment) -> NamespacesView:
    """Gather the page from the plan, the config's bindings, each SQL backend's catalog and row counts."""
    plan = deployment.plan
    if plan is None:
        return NamespacesView([], [deployment.plan_problem])
    config = deployment.config
    entities = plan.document["entities"]
    bound = bindings(plan.document, config)
    # The backend each namespace is bound to, by its name under `backends:` (its kind unless named otherwise).
    kinds = {e["namespace"]: config.kind_for(e["namespace"], e["backend"]) for e in entities}
    specs: dict[str, EntitySpec] = {}
    counts: dict[str, int | None] = {}
    problems: list[str] = []
    runs_sql = {name: registry.entry(url.kind).can(Capability.SQL) for name, url in config.backends.items()}
    for name, url in config.backends.items():
        if not runs_sql[name]:
            continue
        try:
            async with opened(url) as (_, driver):
                if await has_table(driver, tables.ENTITIES.namespace):
                    specs.update({e.spec.namespace: e.spec for e in await Catalog(driver).entries()})
                for namespace, bound_to in kinds.items():
                    if bound_to == name:
                        counts[namespace] = await _count(driver, namespace)
        except Exception as error:
            problems.append(f"{url.redacted}: {problem(error)}")
    on_streams: dict[str, int | None] = {}
    if not all(runs_sql[k] for k in kinds.values()):
        surveyed = await streams(deployment)
        on_streams = {row.namespace: row.records for row in surveyed.rows}
        if surveyed.problem:
            problems.append(surveyed.problem)
    rows = []
    for e in entities:
        ns = e["namespace"]
        spec = specs.get(ns)
        on_sql = runs_sql[kinds[ns]]
        looked = counts if on_sql else on_streams
        count = looked.get(ns)
        if count is not None:
            note = ""
        elif ns in looked:
            note = "no table yet (provision it)" if on_sql else "not on the broker yet (provision it)"
        else:
            note = "not counted (see above)"
        rows.append(
            NamespaceRow(
                namespace=ns,
                message=e["message"],
                abstraction=e["abstraction"],
                planned=e["backend"],
                bound=bound[ns],
                settings=summary(e["settings"]),
                rationale=tuple(e["rationale"]),
                pii=None if spec is None else pii_fields(spec),
                rows=count,
                count_note=note,
            )
        )
    return NamespacesView(rows, problems)
