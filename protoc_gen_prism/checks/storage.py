"""Storage rules: changes an existing table cannot take without a rewrite, a copy or a rename."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from prism_runtime.schema import Column, ColumnKind, EntitySpec
from protoc_gen_prism.checks.compare import Comparison
from protoc_gen_prism.checks.rules import Category, Hit, Severity, rule
from protoc_gen_prism.model import Entity, Field
from protoc_gen_prism.sql.dialects import PostgresDdl, SqliteDdl

_DIALECTS = (PostgresDdl(), SqliteDdl())
_KV = 'option (prism.access_pattern) = "key_value";'


def _primary(entity: Entity, role: str) -> Field | None:
    """Return the field stored as the key or sort key (an edge is keyed by its source and target)."""
    name = entity.spec.key if role == "key" else entity.spec.sort_key
    return next((f for f in entity.fields if f.name == name), None) if name else None


def _role_change(change: Comparison, role: str) -> Iterator[Hit]:
    for old, new in change.entity_pairs:
        before, after = _primary(old, role), _primary(new, role)
        if (before.number if before else None) == (after.number if after else None):
            continue
        was = f"{before.name} = {before.number}" if before else "none"
        now = f"{after.name} = {after.number}" if after else "none"
        yield Hit(
            after.location if after else new.location,
            f"{new.full_name}: {role} changed from {was} to {now}; the primary key of table {new.namespace!r} "
            "cannot change in place: create a new namespace and copy the data",
        )


@rule(
    "STORAGE_KEY_CHANGED",
    Category.STORAGE,
    Severity.ERROR,
    "the key (partition key) moved to another field: every row must be re-keyed",
    f"message M {{\n  {_KV}\n  string id = 1 [(prism.key) = true];\n  string email = 2;\n}}",
    f"message M {{\n  {_KV}\n  string id = 1;\n  string email = 2 [(prism.key) = true];\n}}",
)
def key_changed(change: Comparison) -> Iterator[Hit]:
    """Find entities whose key field changed."""
    return _role_change(change, "key")


@rule(
    "STORAGE_SORT_KEY_CHANGED",
    Category.STORAGE,
    Severity.ERROR,
    "the sort_key was added, removed or moved: the primary key and the order within a key change",
    f"message M {{\n  {_KV}\n  string id = 1 [(prism.key) = true];\n  int64 seq = 2 [(prism.sort_key) = true];\n}}",
    f"message M {{\n  {_KV}\n  string id = 1 [(prism.key) = true];\n  int64 seq = 2;\n}}",
)
def sort_key_changed(change: Comparison) -> Iterator[Hit]:
    """Find entities whose sort key changed."""
    return _role_change(change, "sort_key")


def sql_types(column: Column) -> tuple[str, ...]:
    """Return the column's SQL type in Postgres and SQLite (what a type change is measured by)."""
    return _sql_types(column.kind, column.repeated)


@cache
def _sql_types(kind: ColumnKind, repeated: bool) -> tuple[str, ...]:
    # The type depends only on kind and cardinality; sqlglot builds it slowly, so once per pair.
    column = Column(name="c", number=1, kind=kind, repeated=repeated)
    return tuple(d.column_type(column).sql(d.name) for d in _DIALECTS)


@rule(
    "STORAGE_COLUMN_TYPE_CHANGED",
    Category.STORAGE,
    Severity.ERROR,
    "a field's column type changed in Postgres or SQLite (turning encrypt_at_rest on or off does too: "
    "ciphertext is bytes): the table must be rewritten",
    f"message M {{\n  {_KV}\n  string id = 1 [(prism.key) = true];\n  int32 count = 2;\n}}",
    f"message M {{\n  {_KV}\n  string id = 1 [(prism.key) = true];\n  double count = 2;\n}}",
)
def column_type_changed(change: Comparison) -> Iterator[Hit]:
    """Find stored columns whose SQL type differs under the same field number (encryption stores bytes)."""
    for old_entity, new_entity in change.entity_pairs:
        now = columns_by_key(new_entity.spec)
        fields = {f.number: f for f in new_entity.fields}
        for key, old in columns_by_key(old_entity.spec).items():
            new = now.get(key)
            if new is None or sql_types(old) == sql_types(new):
                continue
            was, then = sql_types(old), sql_types(new)
            why = ""
            if old.encrypted != new.encrypted:
                why = " (encrypted values are stored as bytes: existing rows must be rewritten)"
            yield Hit(
                fields[new.number].location,
                f"{new_entity.full_name}.{new.name}: column type changes from {was[0]} to {then[0]} (postgres)"
                f"{why}; the table {new_entity.namespace!r} needs a rewrite: add a new field and backfill it instead",
            )


def columns_by_key(spec: EntitySpec) -> dict[tuple[int, bool], Column]:
    """Return the stored columns by (field number, is a blind index): how a column is followed across renames."""
    numbers = {c.name: c.number for c in spec.columns}
    return {
        (numbers[c.blind_index_of], True) if c.blind_index_of else (c.number, False): c for c in spec.columns
    }


@rule(
    "STORAGE_TABLE_RENAMED",
    Category.STORAGE,
    Severity.ERROR,
    "an entity's namespace (its table, topic and stream name) changed",
    f'message M {{\n  {_KV}\n  option (prism.namespace) = "users";\n  string id = 1 [(prism.key) = true];\n}}',
    f'message M {{\n  {_KV}\n  option (prism.namespace) = "accounts";\n  string id = 1 [(prism.key) = true];\n}}',
)
def table_renamed(change: Comparison) -> Iterator[Hit]:
    """Find entities that now live under another namespace."""
    for old, new in change.entity_pairs:
        if old.namespace != new.namespace:
            yield Hit(
                new.location,
                f"{new.full_name}: namespace changed from {old.namespace!r} to {new.namespace!r}; the table is "
                f"renamed (`prism migrate` renames it; streams need a new topic); pin (prism.namespace) = "
                f'"{old.namespace}" to keep it',
            )


def _kind(entity: Entity) -> str:
    return str(entity.abstraction)


@rule(
    "STORAGE_ABSTRACTION_CHANGED",
    Category.STORAGE,
    Severity.ERROR,
    "access_pattern moved the entity to another abstraction (KeyValue, TimeSeries, Graph): its data must move",
    f"message M {{\n  {_KV}\n  string id = 1 [(prism.key) = true];\n  int64 at = 2;\n}}",
    'message M {\n  option (prism.access_pattern) = "append_heavy";\n  option (prism.retention_days) = "7";\n'
    "  string id = 1 [(prism.key) = true];\n  int64 at = 2 [(prism.event_time) = true];\n}",
)
def abstraction_changed(change: Comparison) -> Iterator[Hit]:
    """Find entities served by another abstraction now."""
    for old, new in change.entity_pairs:
        if old.abstraction is not new.abstraction:
            yield Hit(
                new.location,
                f"{new.full_name}: abstraction changed from {_kind(old)} to {_kind(new)} (access_pattern "
                f"{old.options.access_pattern} -> {new.options.access_pattern}); migrate the data to a new namespace",
            )


@rule(
    "STORAGE_TTL_REMOVED",
    Category.STORAGE,
    Severity.WARNING,
    "ttl_seconds was removed: items that expired but were not purged yet become readable again",
    f'message M {{\n  {_KV}\n  option (prism.ttl_seconds) = "3600";\n  string id = 1 [(prism.key) = true];\n}}',
    f"message M {{\n  {_KV}\n  string id = 1 [(prism.key) = true];\n}}",
)
def ttl_removed(change: Comparison) -> Iterator[Hit]:
    """Find KeyValue entities that had a TTL and have none now."""
    for old, new in change.entity_pairs:
        if old.options.ttl_seconds and not new.options.ttl_seconds:
            yield Hit(
                new.location,
                f"{new.full_name}: (prism.ttl_seconds) {old.options.ttl_seconds} was removed; expired items not "
                "yet purged become readable again: run `prism provision --purge-expired` just before deploying",
            )


@rule(
    "STORAGE_TTL_ADDED",
    Category.STORAGE,
    Severity.WARNING,
    "ttl_seconds was added to a stored entity: items already stored never expire until they are put again",
    f"message M {{\n  {_KV}\n  string id = 1 [(prism.key) = true];\n}}",
    f'message M {{\n  {_KV}\n  option (prism.ttl_seconds) = "3600";\n  string id = 1 [(prism.key) = true];\n}}',
)
def ttl_added(change: Comparison) -> Iterator[Hit]:
    """Find KeyValue entities that have a TTL now and had none."""
    for old, new in change.entity_pairs:
        if new.options.ttl_seconds and not old.options.ttl_seconds:
            yield Hit(
                new.option_location("ttl_seconds"),
                f"{new.full_name}: (prism.ttl_seconds) {new.options.ttl_seconds} was added; the items already "
                "stored (and those put by processes of the previous version while both run) have no expiry and "
                "stay until they are put again",
            )
