"""The storage contract between generated code and backends: what an entity looks like at rest.

Generated clients carry an `EntitySpec` built from the schema at compile time; every backend
reads the same spec, so a client runs unchanged on SQLite, Postgres, Kafka or NATS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

DEFAULT_FIND_LIMIT = 100
"""How many items a generated `find_by_*` returns when not told: part of the generated API."""


class Abstraction(StrEnum):
    """The data abstraction an entity is served through."""

    KEY_VALUE = "key_value"
    TIME_SERIES = "time_series"
    GRAPH = "graph"


class ColumnKind(StrEnum):
    """How one field is stored; each backend maps a kind to its own type (see docs/type-mapping.md)."""

    INT32 = "int32"  # int32, sint32, sfixed32
    INT64 = "int64"  # int64, sint64, sfixed64, uint32, fixed32
    UINT64 = "uint64"  # uint64, fixed64: the full range up to 2^64-1
    FLOAT = "float"
    DOUBLE = "double"
    BOOL = "bool"
    STRING = "string"
    BYTES = "bytes"
    ENUM = "enum"  # the number, so renamed and unknown values round-trip
    TIMESTAMP = "timestamp"  # google.protobuf.Timestamp
    JSON = "json"  # messages, maps, repeated fields: protobuf's canonical JSON mapping


def masked_in_logs(pii: str, mask_in_logs: bool | None) -> bool:
    """The one mask rule: a field is masked when `(prism.mask_in_logs)` says so, else when it has `(prism.pii)`.

    The compiler sets `Column.masked` by it and the runtime's masking of any message (nested ones included,
    which have no columns) applies it to descriptor options; `mask_in_logs` is None when not written.
    """
    return bool(pii) if mask_in_logs is None else mask_in_logs


_T = TypeVar("_T")


def built_at_once(cls: type[_T]) -> type[_T]:
    """Give a frozen dataclass an __init__ that writes every field straight into the instance's dict.

    A frozen dataclass's own __init__ sets each field through object.__setattr__, which is most of what
    building one costs: the compiler's model of a 10,000-message request holds ~80,000 fields and as many
    columns, and a generated module builds a Column per stored field when imported. This __init__ takes the
    same arguments, with the same defaults, and leaves the same instance; equality, hashing, repr, replace()
    and the refusal to assign afterwards are the dataclass's own. Only for dataclasses without __post_init__,
    default factories, keyword-only fields or slots, which is checked.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in fields]
    if "__slots__" in vars(cls) or hasattr(cls, "__post_init__") or {"__self__", "__values__"} & set(names):
        raise TypeError(f"{cls.__name__}: built_at_once is for dataclasses without slots or __post_init__")
    defaults: dict[str, object] = {}
    arguments: list[str] = []
    for f in fields:
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: built_at_once needs plain init fields")
        if f.default is dataclasses.MISSING:
            arguments.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            arguments.append(f"{f.name}=_default_{f.name}")
    # Item by item, in declaration order: the dict then shares its keys with the class's other instances,
    # as after the dataclass's own __init__ (an update() would give each instance a copy of the keys).
    source = (
        f"def __init__(__self__, {', '.join(arguments)}):\n    __values__ = __self__.__dict__\n"
        + "".join(f"    __values__[{f.name!r}] = {f.name}\n" for f in fields)
    )
    namespace = dict(defaults)
    exec(source, namespace)  # as dataclasses writes its own __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses assigning a method)
    return cls


@built_at_once
@dataclass(frozen=True)
class Column:
    """One stored field of an entity."""

    name: str
    number: int
    kind: ColumnKind
    # Nullable columns hold fields with explicit presence (optional, oneof members, messages).
    nullable: bool = False
    # Indexed for equality lookups.
    indexed: bool = False
    # The PII kind, or "" when the field holds no personal data.
    pii: str = ""
    # A repeated scalar or enum: an array of `kind` (Postgres arrays, JSON lists on SQLite).
    repeated: bool = False
    # A google.protobuf.*Value wrapper stored as its nullable inner scalar.
    wrapped: bool = False
    # The oneof the field belongs to, or "": at most one column of a oneof is non-NULL.
    oneof: str = ""
    # Stored as AES-256-GCM ciphertext under the data subject's key (the column kind is then BYTES).
    encrypted: bool = False
    # Never shown in clear in logs, reprs, errors or the CLI.
    masked: bool = False
    # Every read, write, decrypt and erase of the field appends to the access audit log.
    audited: bool = False
    # Findable by equality through a blind index column (see `blind_index_of`).
    searchable: bool = False
    # Set on a derived column holding the blind index of the named encrypted field; number is then 0.
    blind_index_of: str = ""
    # A pii field kept in clear on purpose: the schema's (prism.plaintext_reason), which `forget` reports
    # for records it cannot erase (a stream's log).
    plaintext_reason: str = ""
    # Set on the derived column of an entity with a TTL holding when its row expires (epoch milliseconds, NULL:
    # never); number is then 0. It is always the last column.
    expiry: bool = False


EXPIRES_AT_COLUMN = "prism_expires_at"
"""The column a KeyValue entity with `(prism.ttl_seconds)` keeps each row's expiry in."""


def expiry_column() -> Column:
    """Return the expiry column of an entity with a TTL (indexed: the purge deletes by it)."""
    return Column(EXPIRES_AT_COLUMN, 0, ColumnKind.INT64, nullable=True, indexed=True, expiry=True)


@dataclass(frozen=True)
class EntitySpec:
    """An annotated message as the runtime needs it: namespace, keys and columns."""

    namespace: str
    message_name: str
    abstraction: Abstraction
    key: str
    columns: tuple[Column, ...]
    sort_key: str | None = None
    event_time: str | None = None
    retention_days: int = 0
    source_file: str = ""
    # The field naming the data subject that `forget` erases; None means the record key.
    subject: str | None = None
    # The backend kind the capacity planner chose (sqlite, postgres, kafka, nats); "" when unknown.
    # A config that names a URL for this kind binds the namespace there (see prism_runtime.config).
    planned_backend: str = ""
    # Graph edges: the fields holding the source and target node keys (also the key and sort key, so an
    # edge table is keyed by (source, target)), the node messages they name, and whether the edge has no
    # direction. Empty on every other entity.
    edge_source: str | None = None
    edge_target: str | None = None
    source_type: str = ""
    target_type: str = ""
    bidirectional: bool = False
    # KeyValue: seconds an item lives after its last put (0: forever); the table then has the expiry column.
    ttl_seconds: int = 0
    # The DDL of the entity's table and indexes where the runtime creates them on first use (SQLite), by
    # dialect name: rendered by the compiler and carried in the generated module, so the runtime renders none.
    ddl: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    def column(self, name: str) -> Column:
        """Return the column of the field `name`."""
        return self._by_name[name]

    def ddl_for(self, dialect: str) -> tuple[str, ...]:
        """Return the DDL of this entity in `dialect`, or nothing where the compiler emitted none."""
        return tuple(self.ddl.get(dialect, ()))

    @property
    def key_columns(self) -> tuple[Column, ...]:
        """Return the primary key columns: key, then sort key when there is one."""
        names = (self.key,) if self.sort_key is None else (self.key, self.sort_key)
        return tuple(self._by_name[n] for n in names)

    @property
    def expires(self) -> bool:
        """Return whether rows carry an expiry (the last column): the entity has a TTL."""
        return bool(self.columns) and self.columns[-1].expiry

    @property
    def subject_column(self) -> Column:
        """Return the column naming the data subject: the (prism.subject) field, else the key."""
        return self._by_name[self.subject or self.key]

    @property
    def protects_pii(self) -> bool:
        """Return whether any column is encrypted, audited or a blind index: the PII layer then applies."""
        return any(c.encrypted or c.audited or c.blind_index_of for c in self.columns)

    @property
    def holds_pii(self) -> bool:
        """Return whether the entity belongs in the PII catalog: a pii field, in clear or not, or protection."""
        return self.protects_pii or any(c.pii for c in self.columns)


_REGISTERED: dict[str, EntitySpec] = {}


def register(spec: EntitySpec) -> EntitySpec:
    """Record a generated spec so connect() can check namespace bindings before first use; return it."""
    _REGISTERED[spec.namespace] = spec
    return spec


def registered() -> dict[str, EntitySpec]:
    """Return the specs of every generated module imported so far, by namespace."""
    return dict(_REGISTERED)
