"""Lint rules: what the plugin accepts but a reviewer should not, found on the model of one schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from functools import cache

from protoc_gen_prism.checks.rules import Category, Hit, Severity, rule
from protoc_gen_prism.model import Entity, Field, Schema, ValueType
from protoc_gen_prism.vocabulary import AccessPattern

# Postgres' reserved key words (the "reserved" column of its SQL Key Words appendix): usable only quoted.
POSTGRES_RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
    collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
    except false fetch for foreign freeze from full grant group having ilike in initially inner intersect into
    is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null offset on
    only or order outer overlaps placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user using variadic verbose
    when where window with""".split()  # noqa: SIM905 -- a word list reads best as words
)
# Table names that belong to a database or to Prism itself.
RESERVED_PREFIXES = ("sqlite_", "pg_", "prism_")


def _owned(schema: Schema) -> Iterator[tuple[Entity | ValueType, Field]]:
    """Yield (owner, field) for every field of every entity and value type."""
    for file in schema.files:
        owners: list[Entity | ValueType] = [*file.entities, *file.value_types]
        for owner in owners:
            for f in owner.fields:
                yield owner, f


def _fields(schema: Schema) -> Iterator[tuple[str, Field]]:
    """Yield (owner full name, field) for every field of every entity and value type."""
    for owner, f in _owned(schema):
        yield owner.full_name, f


@rule(
    "LINT_PII_PLAINTEXT",
    Category.LINT,
    Severity.ERROR,
    "a pii field is neither encrypted at rest nor opted out with a written plaintext_reason",
    """
message User {
  option (prism.access_pattern) = "key_value";
  string id = 1 [(prism.key) = true];
  string email = 2 [(prism.pii) = "email"];
}""",
)
def pii_plaintext(schema: Schema) -> Iterator[Hit]:
    """Find pii stored in clear without a reason."""
    for owner, f in _owned(schema):
        o = f.options
        if o.pii is None or o.encrypt_at_rest or o.plaintext_reason.strip():
            continue
        if isinstance(owner, ValueType):
            how = (
                "it lives inside its parent's JSON column, where nothing is encrypted: move it to the entity"
            )
        elif f.proto_type in ("string", "bytes") and not f.repeated:
            how = "set (prism.encrypt_at_rest) = true"
        else:
            how = f"a {f.proto_type} field cannot be encrypted, store it as string or bytes"
        yield Hit(
            f.location,
            f"{owner.full_name}.{f.name}: pii {o.pii} is stored in plaintext; {how}, "
            f'or keep it in clear on purpose with (prism.plaintext_reason) = "why"',
        )


@rule(
    "LINT_PII_NOT_MASKED",
    Category.LINT,
    Severity.ERROR,
    "a pii field has mask_in_logs turned off, so its value can reach logs and reprs",
    """
message User {
  option (prism.access_pattern) = "key_value";
  string id = 1 [(prism.key) = true];
  string email = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true, (prism.mask_in_logs) = false];
}""",
)
def pii_not_masked(schema: Schema) -> Iterator[Hit]:
    """Find pii whose masking was switched off."""
    for owner, f in _fields(schema):
        if f.options.pii is not None and not f.options.mask_in_logs:
            yield Hit(
                f.location,
                f"{owner}.{f.name}: pii {f.options.pii} with (prism.mask_in_logs) = false; "
                "remove the option (pii is masked by default)",
            )


@rule(
    "LINT_PII_KEY",
    Category.LINT,
    Severity.WARNING,
    "a pii field is a key or sort key: keys travel in clear (topic keys, URLs, logs of ids)",
    """
message User {
  option (prism.access_pattern) = "key_value";
  string email = 1 [(prism.key) = true, (prism.pii) = "email", (prism.plaintext_reason) = "lookup"];
}""",
)
def pii_key(schema: Schema) -> Iterator[Hit]:
    """Find pii used as a key."""
    for owner, f in _fields(schema):
        if f.options.pii is not None and (f.options.key or f.options.sort_key):
            role = "key" if f.options.key else "sort_key"
            yield Hit(
                f.location,
                f"{owner}.{f.name}: pii {f.options.pii} is the {role}; key records by an opaque id instead",
            )


@rule(
    "LINT_AUDIT_WITHOUT_PII",
    Category.LINT,
    Severity.ERROR,
    "access_audit is set on a field that is not marked pii, so the audit trail cannot say what it protects",
    """
message User {
  option (prism.access_pattern) = "key_value";
  string id = 1 [(prism.key) = true];
  string notes = 2 [(prism.access_audit) = true];
}""",
)
def audit_without_pii(schema: Schema) -> Iterator[Hit]:
    """Find audited fields that hold no declared personal data."""
    for owner, f in _fields(schema):
        if f.options.access_audit and f.options.pii is None:
            yield Hit(
                f.location,
                f"{owner}.{f.name}: (prism.access_audit) without (prism.pii); say what personal data it holds, "
                'e.g. (prism.pii) = "generic"',
            )


def _entities(schema: Schema, pattern: AccessPattern) -> Iterator[Entity]:
    return (e for e in schema.entities if e.options.access_pattern is pattern)


@rule(
    "LINT_APPEND_WITHOUT_RETENTION",
    Category.LINT,
    Severity.ERROR,
    "an append_heavy message has no retention_days, so its stream grows forever",
    """
message Click {
  option (prism.access_pattern) = "append_heavy";
  string user_id = 1 [(prism.key) = true];
  int64 at_ms = 2 [(prism.event_time) = true];
}""",
)
def append_without_retention(schema: Schema) -> Iterator[Hit]:
    """Find time series kept forever by omission."""
    for e in _entities(schema, AccessPattern.APPEND_HEAVY):
        if e.options.retention_days == 0:
            yield Hit(
                e.location,
                f'{e.full_name}: append_heavy without (prism.retention_days); set e.g. "30" '
                "(days of history to keep)",
            )


@rule(
    "LINT_TTL_WITH_RETENTION",
    Category.LINT,
    Severity.ERROR,
    "a KeyValue message sets both ttl_seconds and retention_days: two lifetimes, and only the TTL expires items",
    """
message Session {
  option (prism.access_pattern) = "key_value";
  option (prism.ttl_seconds) = "86400";
  option (prism.retention_days) = "30";
  string id = 1 [(prism.key) = true];
}""",
)
def ttl_with_retention(schema: Schema) -> Iterator[Hit]:
    """Find entities with a TTL that also set a retention."""
    for entity in schema.entities:
        opts = entity.options
        if opts.ttl_seconds and opts.retention_days:
            yield Hit(
                entity.option_location("retention_days"),
                f"{entity.full_name}: ttl_seconds {opts.ttl_seconds} expires items, so retention_days "
                f"{opts.retention_days} has no effect on a KeyValue store; keep (prism.ttl_seconds) alone",
            )


@rule(
    "LINT_NAMESPACE_RESERVED",
    Category.LINT,
    Severity.ERROR,
    "a namespace starts with sqlite_, pg_ or prism_, names that belong to the database or to Prism",
    """
message History {
  option (prism.access_pattern) = "key_value";
  option (prism.namespace) = "prism_schema_history";
  string id = 1 [(prism.key) = true];
}""",
)
def namespace_reserved(schema: Schema) -> Iterator[Hit]:
    """Find namespaces in a system's own name space."""
    for e in schema.entities:
        prefix = next((p for p in RESERVED_PREFIXES if e.namespace.startswith(p)), None)
        if prefix is not None:
            yield Hit(
                e.location,
                f"{e.full_name}: namespace {e.namespace!r} starts with {prefix!r}, reserved for "
                f"{'Prism' if prefix == 'prism_' else 'the database'}; set another (prism.namespace)",
            )


@cache
def reserved_in(name: str) -> tuple[str, ...]:
    """Return the dialects (postgres, sqlite) in which `name` is a reserved word."""
    found = []
    if name.lower() in POSTGRES_RESERVED:
        found.append("postgres")
    # SQLite's own parser decides: an unquoted reserved word is a syntax error. EXPLAIN compiles the
    # statement without running it, and as a column name the sqlite_ table prefix (another rule) is moot.
    try:
        _sqlite().execute(f"EXPLAIN CREATE TABLE t ({name} INTEGER)")
    except sqlite3.OperationalError:
        found.append("sqlite")
    return tuple(found)


@cache
def _sqlite() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", check_same_thread=False)


@rule(
    "LINT_RESERVED_WORD",
    Category.LINT,
    Severity.ERROR,
    "a namespace (table) or field (column) is a reserved word in Postgres or SQLite: hand-written SQL must quote it",
    """
message Order {
  option (prism.access_pattern) = "key_value";
  string id = 1 [(prism.key) = true];
  string group = 2;
}""",
)
def reserved_word(schema: Schema) -> Iterator[Hit]:
    """Find table and column names that need quoting."""
    for e in schema.entities:
        dialects = reserved_in(e.namespace)
        if dialects:
            yield Hit(
                e.location,
                f"{e.full_name}: namespace {e.namespace!r} is a reserved word in {', '.join(dialects)}; "
                "set another (prism.namespace)",
            )
        for f in e.fields:
            dialects = reserved_in(f.name)
            if dialects:
                yield Hit(
                    f.location,
                    f"{e.full_name}.{f.name}: column {f.name!r} is a reserved word in {', '.join(dialects)}; "
                    "rename the field (the number keeps the wire format)",
                )
