"""Validation: the rules a schema (and then its plan) must follow, apart from reading the options.

The model builder only reads: it turns each option into a typed value and reports a value it cannot read.
Every rule about how fields and messages fit together is here, as a function of the typed model, so that a
rule is found by name and tested alone. Each rule reports through a `Trail` (file > message > field, the
way protoc-gen-validate names a violation) into a `Report` that collects every problem; nothing stops at
the first one. Messages are the exact sentences users already see.

Two passes, one per stage:
  `check_schema(model)` after the model is built, before planning;
  `check_plans(schema, plans)` after planning (what depends on the backend chosen).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from prism_runtime.backends.registry import serving
from prism_runtime.schema import EXPIRES_AT_COLUMN, Abstraction, ColumnKind, built_at_once
from prism_runtime.sql.names import EVENT_ID_COLUMN, SEQUENCE_COLUMN
from protoc_gen_prism.diagnostics import Diagnostic, Location, allowed_values
from protoc_gen_prism.limits import (
    INT32_MAX,
    INT64_MAX,
    MAX_IDENTIFIER_BYTES,
    NATS_MAX_PAYLOAD_BYTES,
    SQL_MAX_RETENTION_DAYS,
)
from protoc_gen_prism.model import (
    NO_FIELD_OPTIONS,
    Entity,
    Field,
    ProtoFile,
    Schema,
    ValueType,
    blind_index_column,
)
from protoc_gen_prism.naming import SYNC, class_name, k8s_name, spec_constant
from protoc_gen_prism.planner import HEADROOM, MS_PER_DAY, NS_PER_DAY, Plan
from protoc_gen_prism.storage import KEY_TYPES, TIMESTAMP, key_types_stored_as
from protoc_gen_prism.vocabulary import AccessPattern, BackendKind, EdgeDirection

ROLE_OPTIONS = (
    "key",
    "sort_key",
    "event_time",
    "subject",
    "index",
    "searchable",
    "edge_source",
    "edge_target",
)
_EDGE_MESSAGE_OPTIONS = ("edge_source_type", "edge_target_type", "edge_direction")
_EDGE_ENDS = (("edge_source", "edge_source_type", "starts"), ("edge_target", "edge_target_type", "ends"))
# Roles that do not identify graph entities: an edge is (source, target), a node is its key alone.
_NOT_FOR = {
    AccessPattern.GRAPH_EDGE: ("key", "sort_key"),
    AccessPattern.GRAPH_NODE: ("sort_key", "edge_source", "edge_target"),
}
_ENCRYPTABLE = frozenset({"string", "bytes"})
_EVENT_TIME_TYPES = frozenset({"int64", "uint64", "sint64", "fixed64", "sfixed64"})
_STREAMS = frozenset({BackendKind.KAFKA, BackendKind.NATS})

# -- the trail and the report ------------------------------------------------------------------------


@built_at_once
@dataclass(frozen=True)
class Trail:
    """Where a rule is checked: the element's dotted name (message > field) and its position."""

    element: str
    location: Location
    options: tuple[tuple[str, Location], ...] = ()

    @staticmethod
    def of_entity(entity: Entity) -> Trail:
        """Return the trail of a message."""
        return Trail(entity.full_name, entity.location, entity.option_locations)

    def field(self, f: Field) -> Trail:
        """Return the trail of one of this message's fields."""
        return Trail(f"{self.element}.{f.name}", f.location, f.option_locations)

    def at(self, option: str) -> Location:
        """Return where `(prism.<option>)` was written on this element, else the element itself."""
        return dict(self.options).get(option, self.location)


@dataclass
class Report:
    """Every problem found so far; rules add to it and never stop the walk."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, trail: Trail, message: str, where: Location | None = None) -> None:
        """Add one problem at `where` (by default the element itself)."""
        self.diagnostics.append(Diagnostic(where or trail.location, trail.element, message))


# -- what validation reads besides the schema --------------------------------------------------------


@dataclass(frozen=True)
class LooseMessage:
    """A message with prism options that is neither an entity nor a value type (its pattern is missing or
    unknown, which the builder reported): its fields are still checked."""

    type: ValueType
    entity: bool  # (prism.access_pattern) was written, so the fields are held to entity rules


@dataclass(frozen=True)
class Model:
    """The model stage's result: the schema, what it could not read, and what validation also needs."""

    schema: Schema
    problems: tuple[Diagnostic, ...] = ()
    loose: tuple[LooseMessage, ...] = ()
    message_file: Callable[[str], str | None] = lambda _name: None
    """The file declaring a message of the request, by full name (None: no such message)."""


# -- stage 1: the schema -----------------------------------------------------------------------------


def check_schema(model: Model) -> list[Diagnostic]:
    """Return every rule the schema breaks (the builder's reading problems are not repeated)."""
    report = Report()
    for file in model.schema.files:
        for entity in file.entities:
            _entity(report, entity)
        for value in file.value_types:
            trail = Trail(value.full_name, value.location)
            for f in value.fields:
                _field(report, trail.field(f), f, value.full_name, entity=False, pattern=None)
        for edge in file.entities:
            if edge.options.access_pattern is AccessPattern.GRAPH_EDGE:
                _edge(report, file, edge, model.message_file)
        if file.entities:
            _python_module(report, file)
            _generated_names(report, file)
    for loose in model.loose:
        trail = Trail(loose.type.full_name, loose.type.location)
        for f in loose.type.fields:
            _field(report, trail.field(f), f, loose.type.full_name, entity=loose.entity, pattern=None)
    _namespaces(report, model.schema.files)
    _backends(report, model.schema)
    return report.diagnostics


def _entity(report: Report, entity: Entity) -> None:
    trail = Trail.of_entity(entity)
    pattern = entity.options.access_pattern
    for f in entity.fields:
        # A field without prism options can only break the rule on its name's length.
        if f.options is not NO_FIELD_OPTIONS or len(f.name.encode()) > MAX_IDENTIFIER_BYTES:
            _field(report, trail.field(f), f, entity.full_name, entity=True, pattern=pattern)
    _roles(report, trail, entity)
    _pii(report, trail, entity)
    _columns(report, trail, entity)
    _indexes(report, trail, entity)
    if entity.options.ttl_seconds and entity.abstraction is not Abstraction.KEY_VALUE:
        report.error(
            trail,
            f"(prism.ttl_seconds) expires items of KeyValue stores; {entity.full_name} is "
            f"{entity.options.access_pattern}; allowed: key_value, read_heavy, write_heavy (a TimeSeries keeps "
            f"events for (prism.retention_days))",
            trail.at("ttl_seconds"),
        )
    for part in entity.python_name.split("."):
        if keyword.iskeyword(part):
            report.error(
                trail,
                f"the generated client names this message as {entity.python_name!r}, but {part!r} is a "
                f"Python keyword; allowed: a message name that is not one",
            )
    if pattern is not AccessPattern.GRAPH_EDGE:
        written = dict(entity.option_locations)
        for option in _EDGE_MESSAGE_OPTIONS:
            if option in written:
                report.error(
                    trail,
                    f"(prism.{option}) applies to graph_edge messages, not {pattern}; allowed: graph_edge",
                    written[option],
                )


def _field(
    report: Report, trail: Trail, f: Field, message: str, *, entity: bool, pattern: AccessPattern | None
) -> None:
    """The rules of one field's options on their own: the field's type, the message's pattern."""
    o = f.options
    size = len(f.name.encode())
    if entity and size > MAX_IDENTIFIER_BYTES:
        report.error(
            trail,
            f"field name is {size} bytes long, more than the {MAX_IDENTIFIER_BYTES} a Postgres "
            f"column name may have; allowed: names of at most {MAX_IDENTIFIER_BYTES} bytes",
        )
    if o.searchable and entity:
        column = blind_index_column(f.name)
        if len(column.encode()) > MAX_IDENTIFIER_BYTES:
            report.error(
                trail,
                f"its blind index column {column!r} is {len(column.encode())} bytes, more than the "
                f"{MAX_IDENTIFIER_BYTES} a Postgres column name may have; allowed: searchable fields named in "
                f"at most {MAX_IDENTIFIER_BYTES - len(blind_index_column('').encode())} bytes",
                trail.at("searchable"),
            )
    if not entity:
        for role in ROLE_OPTIONS:
            if getattr(o, role):
                report.error(
                    trail,
                    f"(prism.{role}) needs (prism.access_pattern) on {message}; "
                    f"allowed patterns: {', '.join(AccessPattern)}",
                    trail.at(role),
                )
    if pattern is not None:
        for role in _NOT_FOR.get(pattern, ("edge_source", "edge_target")):
            if getattr(o, role):
                report.error(trail, _role_misuse(role, pattern), trail.at(role))
    if o.edge_source and o.edge_target:
        report.error(
            trail,
            "a field cannot be both the edge_source and the edge_target; allowed: one role per field",
            trail.at("edge_target"),
        )
    if not entity:
        for option in ("encrypt_at_rest", "access_audit"):
            if getattr(o, option):
                report.error(
                    trail,
                    f"(prism.{option}) applies to fields of entities; {message} has no "
                    f"(prism.access_pattern), so its fields are stored inside a parent's JSON column; "
                    f"allowed: move the field to the entity, or keep only (prism.pii) for masking",
                    trail.at(option),
                )
    if o.encrypt_at_rest and (f.proto_type not in _ENCRYPTABLE or f.repeated):
        report.error(
            trail,
            f"encrypt_at_rest applies to singular string and bytes fields, not {describe(f)}; "
            f"allowed: string, bytes",
            trail.at("encrypt_at_rest"),
        )
    for role in ("key", "sort_key"):
        if not getattr(o, role):
            continue
        if f.repeated or f.proto_type not in KEY_TYPES:
            report.error(
                trail,
                f"a {role} must be a singular string, bytes or integer field, not "
                f"{describe(f)}; allowed: {', '.join(sorted(KEY_TYPES))}",
                trail.at(role),
            )
        elif f.oneof is not None:
            report.error(
                trail, f"a {role} cannot be a member of oneof {f.oneof!r}; move it out", trail.at(role)
            )
    for role in ("edge_source", "edge_target"):
        # Its type is checked against the node key once the node is known; presence is checked here.
        if getattr(o, role) and f.oneof is not None:
            report.error(
                trail, f"an {role} cannot be a member of oneof {f.oneof!r}; move it out", trail.at(role)
            )
    if o.event_time and not (
        not f.repeated and (f.type_name == TIMESTAMP or f.proto_type in _EVENT_TIME_TYPES)
    ):
        report.error(
            trail,
            f"event_time must be a google.protobuf.Timestamp or a 64-bit integer of epoch milliseconds, "
            f"not {describe(f)}; allowed: google.protobuf.Timestamp, int64, uint64",
            trail.at("event_time"),
        )


def _roles(report: Report, trail: Trail, entity: Entity) -> None:
    """One field per role; the key, sort key and event time an access pattern needs."""
    with_roles = [f for f in entity.fields if f.options.roles]
    for role in ("key", "sort_key", "event_time", "subject", "edge_source", "edge_target"):
        holders = [f for f in with_roles if role in f.options.roles]
        for extra in holders[1:]:
            report.error(
                trail.field(extra),
                f"more than one (prism.{role}) field: {holders[0].name!r} is already the {role}; "
                f"allowed: one {role} per message",
            )
    key, sort_key = entity.key, entity.sort_key
    pattern = entity.options.access_pattern
    if sort_key is not None and key is None:
        report.error(
            trail.field(sort_key),
            "a sort_key needs a key: mark the partition key field with (prism.key) = true",
        )
    elif key is None and pattern is not AccessPattern.GRAPH_EDGE:
        report.error(
            trail,
            f"a {pattern} message needs a key: mark one field with (prism.key) = true; "
            f"allowed key types: {', '.join(sorted(KEY_TYPES))}",
        )
    if entity.event_time is None and pattern is AccessPattern.APPEND_HEAVY:
        # The event time orders a series and is part of an event's identity (retries dedupe on it).
        report.error(
            trail,
            "an append_heavy message needs an event time: mark one field with (prism.event_time) = true; "
            "allowed types: google.protobuf.Timestamp, int64, uint64",
        )
    if entity.event_time is not None and pattern is not AccessPattern.APPEND_HEAVY:
        report.error(
            trail.field(entity.event_time),
            f"(prism.event_time) applies to append_heavy messages, not {pattern}; allowed: append_heavy",
        )


def _pii(report: Report, trail: Trail, entity: Entity) -> None:
    """Encryption and blind indexes fit the field's role and the message's abstraction."""
    for f in entity.fields:
        o = f.options
        if o is NO_FIELD_OPTIONS:
            continue
        at = trail.field(f)
        roles = [r for r in ("key", "sort_key", "subject") if getattr(o, r)]
        if o.encrypt_at_rest and roles:
            report.error(
                at,
                f"a {roles[0]} cannot be encrypt_at_rest: rows are found and keys chosen by its clear "
                f"value; allowed: encrypt_at_rest on other fields, or (prism.searchable) for lookups",
            )
        if o.searchable and entity.abstraction is not Abstraction.KEY_VALUE:
            report.error(
                at,
                f"(prism.searchable) gives KeyValue stores a find_by_{f.name}; {entity.full_name} is "
                f"{entity.options.access_pattern}; allowed: key_value, read_heavy, write_heavy",
            )
        if o.searchable and not o.encrypt_at_rest:
            report.error(
                at,
                "(prism.searchable) applies to encrypt_at_rest fields; allowed: add "
                "(prism.encrypt_at_rest) = true, or use (prism.index) on a plaintext field",
            )
        if o.subject and (f.repeated or f.proto_type not in KEY_TYPES):
            report.error(
                at,
                f"a subject must be a singular string, bytes or integer field, not "
                f"{describe(f)}; allowed: {', '.join(sorted(KEY_TYPES))}",
            )


def _indexes(report: Report, trail: Trail, entity: Entity) -> None:
    """An index serves equality lookups (find_by_<field>): its field holds one comparable value in clear."""
    for f in entity.fields:
        o = f.options
        if o is NO_FIELD_OPTIONS or not o.index:
            continue
        at = trail.field(f)
        if f.repeated or f.is_map or (f.proto_type == "message" and not f.column_wrapped):
            report.error(
                at,
                f"(prism.index) gives find_by_{f.name} an equality lookup, which {describe(f)} cannot have "
                f"(it is stored as {'JSON' if f.column_kind is ColumnKind.JSON else f.column_kind}); allowed: "
                f"singular scalar, enum and google.protobuf.*Value wrapper fields",
                at.at("index"),
            )
        elif o.encrypt_at_rest and not o.searchable:
            report.error(
                at,
                "(prism.index) on an encrypt_at_rest field would index ciphertext, which no value equals; "
                "allowed: (prism.searchable) = true for a lookup through a blind index, or no (prism.index)",
                at.at("index"),
            )


def _columns(report: Report, trail: Trail, entity: Entity) -> None:
    """Every column of the entity's table, derived ones included, has a name no other column has."""
    owners: dict[str, tuple[str, str]] = {}
    if entity.abstraction is Abstraction.TIME_SERIES:
        for column in (EVENT_ID_COLUMN, SEQUENCE_COLUMN):
            owners[column] = (column, "Prism's own column of a TimeSeries table")
    if entity.options.ttl_seconds:
        owners[EXPIRES_AT_COLUMN] = (EXPIRES_AT_COLUMN, "Prism's expiry column of an entity with a TTL")
    for f in entity.fields:
        columns = [(f.name, "column")]
        if f.options.searchable:
            columns.append((blind_index_column(f.name), "blind index column"))
        for column, what in columns:
            # SQLite compares column names ignoring case; Postgres keeps quoted names as written.
            this = f"the {what} of field {f.name!r}"
            name, owner = owners.setdefault(column.lower(), (column, this))
            if owner == this:
                continue
            case = "" if name == column else f" ({name!r}: SQLite compares column names ignoring case)"
            report.error(
                trail.field(f),
                f"its {what} {column!r} clashes with {owner}{case}; allowed: a name no other column of "
                f"the table has",
            )


def _edge(report: Report, file: ProtoFile, edge: Entity, message_file: Callable[[str], str | None]) -> None:
    """An edge against the node messages it names: they exist, are nodes, and key types match."""
    trail = Trail.of_entity(edge)
    written_at = dict(edge.option_locations)
    nodes = [e.full_name for e in file.entities if e.options.access_pattern is AccessPattern.GRAPH_NODE]
    allowed = ", ".join(nodes) if nodes else f"none: declare a graph_node message in {file.name}"
    ends: list[Entity] = []
    for role, option, verb in _EDGE_ENDS:
        holder: Field | None = getattr(edge, role)
        if holder is None:
            report.error(
                trail,
                f"a graph_edge message needs an {role} field: mark the field holding the key of the node "
                f"the edge {verb} at with (prism.{role}) = true",
            )
        if option not in written_at:
            report.error(
                trail,
                f"a graph_edge message needs (prism.{option}): the full name of the graph_node message "
                f"the edge {verb} at; allowed: {allowed}",
            )
            continue
        written: str = getattr(edge.options, option)
        node = file.entity(written.removeprefix("."))
        # Suggest a close name only for a typo: a real message of another kind is no typo.
        unknown = node is None and message_file(written.removeprefix(".")) is None
        if node is None or node.options.access_pattern is not AccessPattern.GRAPH_NODE:
            report.error(
                trail,
                f"{option} {written!r} {_not_a_node(file, written, message_file)}; "
                + (allowed_values(written, nodes) if nodes and unknown else f"allowed: {allowed}"),
                written_at[option],
            )
            continue
        ends.append(node)
        key = node.key
        if holder is None or key is None:
            continue
        # Stored alike: the same column kind, and one plain value (repeated scalars are arrays now).
        if holder.column_kind is key.column_kind and holder.proto_type in KEY_TYPES and not holder.repeated:
            continue
        same = key_types_stored_as(key.column_kind)
        report.error(
            trail.field(holder),
            f"the {role} is {describe(holder)} but holds keys of {node.full_name}, whose key {key.name!r} is "
            f"{_describe(key.proto_type, False, False)}; allowed: {', '.join(same)}",
        )
    direction = edge.options.edge_direction
    if direction is EdgeDirection.BIDIRECTIONAL and len(ends) == 2 and ends[0] is not ends[1]:
        report.error(
            trail,
            f"a bidirectional edge connects one node type to itself, but it goes from {ends[0].full_name} "
            f"to {ends[1].full_name}; allowed: unidirectional, or the same edge_source_type and "
            f"edge_target_type",
            trail.at("edge_direction"),
        )


def _not_a_node(file: ProtoFile, written: str, message_file: Callable[[str], str | None]) -> str:
    """Say why a name written as a node type is not one: unknown, elsewhere, or another pattern."""
    entity = file.entity(written.removeprefix("."))
    if entity is not None:
        return f"is a {entity.options.access_pattern} message, not a graph_node"
    declared_in = message_file(written.removeprefix("."))
    if declared_in is None:
        return f"is not a message of {file.name}"
    if declared_in != file.name:
        return f"is declared in {declared_in}; an edge and its nodes must be in the same file"
    return "is not a graph_node message: it has no (prism.access_pattern)"


def _python_module(report: Report, file: ProtoFile) -> None:
    """The generated client imports the file's *_pb2 module: every part of its path must be importable."""
    for part in file.python_module.split("."):
        if not part.isidentifier() or keyword.iskeyword(part):
            report.error(
                Trail(file.package or file.name, Location(file.name)),
                f"the generated client imports {file.python_module!r}, but {part!r} is "
                f"{'a Python keyword' if keyword.iskeyword(part) else 'not a Python identifier'}; "
                f"allowed: directories and file names that are Python identifiers",
            )
            return


def _generated_names(report: Report, file: ProtoFile) -> None:
    """The names a generated client gives its entities' specs and classes do not clash (HTTPRequest and
    HttpRequest; Note's blocking twin NoteSyncStore and a message NoteSync's NoteSyncStore)."""
    seen: dict[str, Entity] = {}
    for entity in file.entities:
        name = spec_constant(entity.python_name)
        first = seen.setdefault(name, entity)
        if first is not entity:
            report.error(
                Trail.of_entity(entity),
                f"the generated client names this message's spec {name!r}, as it names {first.full_name}'s; "
                f"allowed: message names that differ in more than letter case and '_'",
            )
    stems = {(class_name(e.python_name, ""), e.abstraction): e for e in file.entities}
    for entity in file.entities:
        stem = class_name(entity.python_name, "")
        twin_of = stems.get((stem.removesuffix(SYNC), entity.abstraction)) if stem.endswith(SYNC) else None
        if twin_of is not None and twin_of is not entity:
            report.error(
                Trail.of_entity(entity),
                f"the generated client would name this message's class as it names {twin_of.full_name}'s "
                f"blocking twin ({stem}...); allowed: a name that is not another {entity.abstraction} "
                f"message's name followed by {SYNC!r}",
            )


def _namespaces(report: Report, files: Sequence[ProtoFile]) -> None:
    """Each namespace names one entity of the request."""
    seen: dict[str, Entity] = {}
    for entity in (e for f in files for e in f.entities):
        first = seen.setdefault(entity.namespace, entity)
        if first is not entity:
            report.error(
                Trail.of_entity(entity),
                f"namespace {entity.namespace!r} is already used by {first.full_name} ({first.location}); "
                f"set a distinct (prism.namespace)",
            )


def _backends(report: Report, schema: Schema) -> None:
    """An explicit (prism.backend) serves the entity's abstraction (as the backend registry says)."""
    for entity in schema.entities:
        backend = entity.options.backend
        allowed = serving(entity.abstraction)
        if backend is not None and backend not in allowed:
            report.error(
                Trail.of_entity(entity),
                f"(prism.backend) {backend} cannot serve {entity.options.access_pattern} messages "
                f"(the {entity.abstraction} abstraction); allowed: {', '.join(allowed)}",
            )


# -- stage 2: the plans ------------------------------------------------------------------------------


def check_plans(schema: Schema, plans: Iterable[Plan]) -> list[Diagnostic]:
    """Return every problem of the plans: pii in clear on a stream, values beyond a backend, names clashing."""
    report = Report()
    plans = list(plans)
    by_namespace = {e.namespace: e for e in schema.entities}
    for plan in plans:
        entity = by_namespace[plan.namespace]
        # A value message stored by two stream entities is reported once, for the first.
        reported = {(d.location, d.element) for d in report.diagnostics}
        report.diagnostics += [
            d
            for d in plaintext_on_stream(entity, plan.backend, schema)
            if (d.location, d.element) not in reported
        ]
        report.diagnostics += limit_problems(entity, plan)
    for kind, on in (("KafkaTopic", BackendKind.KAFKA), ("NATS Stream", BackendKind.NATS)):
        _k8s_names(report, by_namespace, [p for p in plans if p.backend is on], kind)
    return report.diagnostics


def plaintext_on_stream(entity: Entity, backend: BackendKind, schema: Schema) -> list[Diagnostic]:
    """Refuse pii in clear on a stream, whose log `forget` cannot edit, unless a plaintext_reason says why.

    Encrypted fields are fine (forget destroys their keys); so are pii fields of the value messages the
    entity stores, when they are in this schema, under the same rule.
    """
    if backend not in _STREAMS:
        return []
    values = schema.value_types
    report = Report()
    seen: set[str] = set()
    pending: list[tuple[str, tuple[Field, ...]]] = [(entity.full_name, entity.fields)]
    while pending:
        owner, fields = pending.pop()
        for f in fields:
            o = f.options
            if f.type_name in values and f.type_name not in seen:
                seen.add(f.type_name)
                pending.append((f.type_name, values[f.type_name].fields))
            if o.pii is None or o.encrypt_at_rest or o.plaintext_reason.strip():
                continue
            encrypt = (
                "(prism.encrypt_at_rest) = true (forget destroys its keys)"
                if owner == entity.full_name
                else "move it to the entity with (prism.encrypt_at_rest) = true"
            )
            report.error(
                Trail(f"{owner}.{f.name}", f.location),
                f"pii in clear on {backend}, where {entity.full_name} is planned: a stream's log cannot "
                f"be edited, so forget could not erase it; allowed: {encrypt}, "
                f'(prism.plaintext_reason) = "why" to keep it in clear on purpose (forget then reports '
                f'it as not erasable), or (prism.backend) = "postgres"',
            )
    return report.diagnostics


def limit_problems(entity: Entity, plan: Plan) -> list[Diagnostic]:
    """Return a located diagnostic for every planned value its backend (or the plan file) cannot hold."""
    opts = entity.options
    trail = Trail.of_entity(entity)
    report = Report()

    def beyond(option: str, message: str) -> None:
        report.error(trail, message, trail.at(option))

    size_from = (
        "estimated_message_bytes" if opts.estimated_message_bytes is not None else "estimated_write_rps"
    )
    if plan.storage_bytes > INT64_MAX or plan.write_bytes_per_s > INT64_MAX:
        beyond(
            "estimated_write_rps",
            f"the storage estimate ({opts.estimated_write_rps} writes/s x {plan.message_bytes} B x "
            f"{opts.retention_days} days x {HEADROOM}) is more than the {INT64_MAX} bytes a 64-bit size "
            f"holds (NATS max_bytes, the numbers of prism.plan.json); allowed: a smaller "
            f"estimated_write_rps, estimated_message_bytes or retention_days",
        )
    if plan.kafka is not None:
        retention_ms = int(plan.kafka.config["retention.ms"])
        if retention_ms > INT64_MAX:
            beyond(
                "retention_days",
                f"retention_days {opts.retention_days} is {retention_ms} ms, more than Kafka's retention.ms "
                f"(a 64-bit integer) holds; allowed on kafka: 0 to {INT64_MAX // MS_PER_DAY}",
            )
        if int(plan.kafka.config["max.message.bytes"]) > INT32_MAX:
            beyond(
                size_from,
                f"a record of {plan.message_bytes} bytes needs max.message.bytes "
                f"{plan.kafka.config['max.message.bytes']}, more than Kafka's {INT32_MAX} (a 32-bit "
                f"config); allowed on kafka: records of at most {INT32_MAX // 2} bytes",
            )
    if plan.nats is not None:
        if plan.nats.max_age_ns > INT64_MAX:
            beyond(
                "retention_days",
                f"retention_days {opts.retention_days} is {plan.nats.max_age_ns} ns, more than a NATS "
                f"max_age (a 64-bit Go duration) holds; allowed on nats: 0 to {INT64_MAX // NS_PER_DAY}",
            )
        if plan.message_bytes > NATS_MAX_PAYLOAD_BYTES:
            beyond(
                size_from,
                f"a record of {plan.message_bytes} bytes is more than the {NATS_MAX_PAYLOAD_BYTES} bytes a "
                f"NATS server's max_payload can be raised to; allowed on nats: records of at most "
                f"{NATS_MAX_PAYLOAD_BYTES} bytes",
            )
    if plan.sql is not None and plan.sql.drop_after_days > SQL_MAX_RETENTION_DAYS:
        beyond(
            "retention_days",
            f"retention_days {opts.retention_days} puts the partition cutoff before year 1, a date "
            f"{plan.backend} partitions cannot be dropped by; allowed on {plan.backend}: 0 to "
            f"{SQL_MAX_RETENTION_DAYS}",
        )
    return report.diagnostics


def _k8s_names(report: Report, entities: dict[str, Entity], plans: Iterable[Plan], kind: str) -> None:
    """Two namespaces must not give one Kubernetes manifest name ('a_' and 'a' are both 'a')."""
    first: dict[str, str] = {}
    for plan in plans:
        name = k8s_name(plan.namespace)
        seen = first.setdefault(name, plan.namespace)
        if seen != plan.namespace:
            entity = entities[plan.namespace]
            trail = Trail.of_entity(entity)
            report.error(
                trail,
                f"namespace {plan.namespace!r} gives the {kind} manifest name {name!r}, which namespace "
                f"{seen!r} already has (Kubernetes names hold no '_' and start and end alphanumeric); "
                f"allowed: namespaces that differ in more than leading, trailing or doubled '_'",
                trail.at("namespace"),
            )


# -- wording ------------------------------------------------------------------------------------------


def _role_misuse(role: str, pattern: AccessPattern) -> str:
    if pattern is AccessPattern.GRAPH_EDGE:
        return (
            f"(prism.{role}) does not apply to graph_edge messages: an edge is identified by its "
            f"(prism.edge_source) and (prism.edge_target) fields"
        )
    if role == "sort_key":
        return "(prism.sort_key) does not apply to graph_node messages: a node is identified by its key alone"
    return f"(prism.{role}) applies to graph_edge messages, not {pattern}; allowed: graph_edge"


def describe(f: Field) -> str:
    """Return how a field's type is named in messages: 'a string field', 'a repeated int64 field', 'a map field'."""
    return _describe(f.proto_type, f.repeated, f.is_map)


def _describe(proto_type: str, repeated: bool, is_map: bool) -> str:
    if is_map:
        return "a map field"
    if repeated:
        return f"a repeated {proto_type} field"
    article = "an" if proto_type[0] in "aeiou" else "a"
    return f"{article} {proto_type} field"
