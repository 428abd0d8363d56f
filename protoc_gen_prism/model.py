"""The typed IR of a schema: what the emitters see. Built once by `model_builder`, never mutated."""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from functools import cached_property

from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec, built_at_once, expiry_column
from protoc_gen_prism.diagnostics import Location
from protoc_gen_prism.naming import python_module
from protoc_gen_prism.vocabulary import AccessPattern, BackendKind, EdgeDirection, PiiKind

_ROLES = ("key", "sort_key", "event_time", "edge_source", "edge_target", "subject")
"""The field options that give a field a role in its entity; one field per role."""


@dataclass(frozen=True)
class FieldOptions:
    """The prism options of one field, typed and with defaults resolved."""

    pii: PiiKind | None = None
    encrypt_at_rest: bool = False
    mask_in_logs: bool = False
    access_audit: bool = False
    key: bool = False
    sort_key: bool = False
    event_time: bool = False
    subject: bool = False
    index: bool = False
    searchable: bool = False
    edge_source: bool = False
    edge_target: bool = False
    plaintext_reason: str = ""

    @cached_property
    def roles(self) -> tuple[str, ...]:
        """Return the roles these options give a field (of _ROLES, in that order); fields with the same
        options share one value, so this is worked out once per distinct set."""
        return tuple(role for role in _ROLES if getattr(self, role))


NO_FIELD_OPTIONS = FieldOptions()
"""The options of a field without prism options (most fields): every default, one shared value. The model
builder gives it to every such field, so `options is NO_FIELD_OPTIONS` skips the rules about options."""


@built_at_once
@dataclass(frozen=True)
class Field:
    """One field of an entity."""

    name: str
    number: int
    proto_type: str  # "string", "int64", "message", "enum", ... as written in .proto
    type_name: str  # full name of the message or enum type, "" for scalars
    repeated: bool
    is_map: bool
    has_presence: bool
    oneof: str | None
    column_kind: ColumnKind
    column_repeated: bool
    column_wrapped: bool
    options: FieldOptions
    location: Location
    comment: str = ""
    option_locations: tuple[tuple[str, Location], ...] = ()
    """Where each field option was written, for errors about it."""
    type_file: str = ""
    """The .proto file declaring the field's message or enum type, "" for scalars."""
    type_python_name: str = ""
    """The class path of that type inside its *_pb2 module ("Outer.Color"), "" for scalars."""

    @property
    def python_parameter(self) -> str:
        """Return the field's name as a Python parameter: a keyword such as `class` gets a trailing '_'."""
        return f"{self.name}_" if keyword.iskeyword(self.name) else self.name

    @property
    def python_key_type(self) -> str:
        """Return the Python type a key of this field has in generated signatures."""
        if self.proto_type == "string":
            return "str"
        if self.proto_type == "bytes":
            return "bytes"
        return "int"


@built_at_once
@dataclass(frozen=True)
class EntityOptions:
    """The prism options of one message, typed and with defaults resolved."""

    access_pattern: AccessPattern
    namespace: str
    estimated_write_rps: int = 0
    estimated_read_rps: int = 0
    retention_days: int = 0
    backend: BackendKind | None = None
    estimated_message_bytes: int | None = None
    consumer_parallelism: int | None = None
    edge_source_type: str = ""
    edge_target_type: str = ""
    edge_direction: EdgeDirection = EdgeDirection.UNIDIRECTIONAL
    ttl_seconds: int = 0  # 0: items never expire


@built_at_once
@dataclass(frozen=True)
class Entity:
    """An annotated message: the unit every emitter works on."""

    full_name: str
    python_name: str  # the class path inside the *_pb2 module, "Outer.Inner" for nested messages
    proto_file: str
    options: EntityOptions
    fields: tuple[Field, ...]
    location: Location
    comment: str = ""
    option_locations: tuple[tuple[str, Location], ...] = ()
    """Where each message option was written, for errors about values derived from it."""

    def option_location(self, option: str) -> Location:
        """Return where `(prism.<option>)` was written, else where the message is."""
        return dict(self.option_locations).get(option, self.location)

    @property
    def name(self) -> str:
        """Return the message's short name."""
        return self.full_name.rsplit(".", 1)[-1]

    @cached_property
    def abstraction(self) -> Abstraction:
        """Return the abstraction that serves this entity."""
        return self.options.access_pattern.abstraction

    @property
    def namespace(self) -> str:
        """Return the entity's logical data set name."""
        return self.options.namespace

    @cached_property
    def _roles(self) -> dict[str, Field]:
        """Return the first field holding each role, read in one pass (the role properties ask it often)."""
        found: dict[str, Field] = {}
        for f in self.fields:
            for role in f.options.roles:
                if role not in found:
                    found[role] = f
        return found

    @property
    def key(self) -> Field | None:
        """Return the partition key field."""
        return self._roles.get("key")

    @property
    def sort_key(self) -> Field | None:
        """Return the sort key field, if any."""
        return self._roles.get("sort_key")

    @property
    def event_time(self) -> Field | None:
        """Return the event time field, if any."""
        return self._roles.get("event_time")

    @property
    def edge_source(self) -> Field | None:
        """Return the field holding an edge's source node key, if any."""
        return self._roles.get("edge_source")

    @property
    def edge_target(self) -> Field | None:
        """Return the field holding an edge's target node key, if any."""
        return self._roles.get("edge_target")

    @cached_property
    def spec(self) -> EntitySpec:
        """Return the storage contract the runtime serves this entity by."""
        key = self.key
        sort_key = self.sort_key
        event_time = self.event_time
        source, target = self.edge_source, self.edge_target
        if source is not None and target is not None:
            # An edge is a sorted map from source to targets: keyed by (source, target), like Netflix's adjacency.
            key, sort_key = source, target
        return EntitySpec(
            namespace=self.namespace,
            message_name=self.full_name,
            abstraction=self.abstraction,
            key=key.name if key else "",
            sort_key=sort_key.name if sort_key else None,
            event_time=event_time.name if event_time else None,
            retention_days=self.options.retention_days,
            source_file=self.proto_file,
            edge_source=source.name if source else None,
            edge_target=target.name if target else None,
            source_type=self.options.edge_source_type,
            target_type=self.options.edge_target_type,
            bidirectional=self.options.edge_direction is EdgeDirection.BIDIRECTIONAL,
            subject=subject.name if (subject := self._roles.get("subject")) else None,
            ttl_seconds=self.options.ttl_seconds,
            # `is`, not `in`: a field is one of the keys only as itself, and == compares every attribute.
            columns=(
                *(c for f in self.fields for c in _columns(f, primary=f is key or f is sort_key)),
                *((expiry_column(),) if self.options.ttl_seconds else ()),
            ),
        )


def _columns(f: Field, *, primary: bool) -> tuple[Column, ...]:
    """Return the stored columns of one field: itself, then its blind index when searchable."""
    o = f.options
    encrypted = o.encrypt_at_rest
    column = Column(
        name=f.name,
        number=f.number,
        # Ciphertext is bytes whatever the field type; the runtime turns it back into str or bytes.
        kind=ColumnKind.BYTES if encrypted else f.column_kind,
        nullable=f.has_presence and not primary,
        indexed=o.index,
        pii=o.pii.value if o.pii else "",
        repeated=f.column_repeated,
        wrapped=f.column_wrapped,
        oneof=f.oneof or "",
        encrypted=encrypted,
        masked=o.mask_in_logs,
        audited=o.access_audit,
        searchable=o.searchable,
        plaintext_reason=o.plaintext_reason.strip() if o.pii and not encrypted else "",
    )
    if not o.searchable:
        return (column,)
    index = Column(
        name=blind_index_column(f.name),
        number=0,
        kind=ColumnKind.BYTES,
        nullable=True,
        indexed=True,
        blind_index_of=f.name,
    )
    return (column, index)


def blind_index_column(field_name: str) -> str:
    """Return the name of the column holding a searchable field's blind index."""
    return f"{field_name}__bidx"


@dataclass(frozen=True)
class ValueType:
    """A message with prism field options (such as pii) but no access_pattern: a value stored inside entities."""

    full_name: str
    fields: tuple[Field, ...]
    location: Location


@dataclass(frozen=True)
class ProtoFile:
    """One .proto file the request asked to generate, with its entities."""

    name: str
    package: str
    entities: tuple[Entity, ...]
    # Messages without an access_pattern whose fields carry prism options (pii), stored inside entities.
    value_types: tuple[ValueType, ...] = ()

    def entity(self, full_name: str) -> Entity | None:
        """Return the entity of this file with the full name `full_name`, if any."""
        return next((e for e in self.entities if e.full_name == full_name), None)

    @property
    def python_module(self) -> str:
        """Return the dotted module path of this file's *_pb2 module."""
        return python_module(self.name)

    @property
    def output_stem(self) -> str:
        """Return the path, without suffix, that generated files for this file start from."""
        return self.name.removesuffix(".proto").replace("-", "_")


@dataclass(frozen=True)
class Schema:
    """Every file to generate; the whole input of the planner and the emitters."""

    files: tuple[ProtoFile, ...]

    @cached_property
    def entities(self) -> tuple[Entity, ...]:
        """Return every entity of every file, in file order."""
        return tuple(e for f in self.files for e in f.entities)

    @cached_property
    def value_types(self) -> dict[str, ValueType]:
        """Return every value type of every file by its full name."""
        return {v.full_name: v for f in self.files for v in f.value_types}
