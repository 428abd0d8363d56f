"""Request -> model: resolve prism options into the typed IR, checking every value where it is written.

Every problem becomes a located `Diagnostic`; the builder keeps going so that one run reports all
of them, and raises `SchemaError` at the end if there were any.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from prism_runtime.schema import Abstraction
from prism_runtime.sql.names import EVENT_ID_COLUMN, SEQUENCE_COLUMN
from protoc_gen_prism import locations as loc
from protoc_gen_prism.descriptors import OptionMap, OptionsUnreadable, PrismOptionReader, is_map_entry
from protoc_gen_prism.diagnostics import Diagnostic, Location, SchemaError, allowed_values
from protoc_gen_prism.limits import COUNT_RANGES, MAX_IDENTIFIER_BYTES
from protoc_gen_prism.model import (
    Entity,
    EntityOptions,
    Field,
    FieldOptions,
    ProtoFile,
    Schema,
    ValueType,
    blind_index_column,
)
from protoc_gen_prism.request_check import check_request, load_pool
from protoc_gen_prism.storage import KEY_TYPES, PROTO_TYPE_NAMES, TIMESTAMP, column_kind, key_types_stored_as
from protoc_gen_prism.vocabulary import AccessPattern, BackendKind, EdgeDirection, PiiKind

# Postgres truncates identifiers at 63 bytes; namespaces also name topics and subjects.
# Always fullmatch: `$` would also accept a name followed by a newline.
_NAMESPACE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_MAX_IDENTIFIER = MAX_IDENTIFIER_BYTES
# A count as written: ASCII digits only (str.isdigit and int() also take fullwidth and Arabic-Indic digits),
# optionally grouped with single underscores as in "10_000".
_COUNT_RE = re.compile(r"[0-9]+(?:_[0-9]+)*")
_ROLE_OPTIONS = (
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


def build_schema(
    proto_files: Sequence[descriptor_pb2.FileDescriptorProto],
    files_to_generate: Sequence[str],
    source_files: Sequence[descriptor_pb2.FileDescriptorProto] = (),
) -> Schema:
    """Build the model of the files to generate, or raise SchemaError with every problem found."""
    check_request(proto_files, files_to_generate, source_files)
    pool = load_pool(proto_files)
    reader = PrismOptionReader(pool)
    # Source-retention options only survive in source_file_descriptors; prefer them when sent.
    by_name = {f.name: f for f in proto_files}
    by_name.update({f.name: f for f in source_files})
    builder = _Builder(pool, reader)
    files = tuple(builder.file(by_name[name]) for name in files_to_generate)
    builder.check_namespaces(files)
    if builder.diagnostics:
        raise SchemaError(builder.diagnostics)
    return Schema(files)


def default_namespace(full_name: str) -> str:
    """Return the snake_case namespace of a message: acme.users.v1.UserProfile -> acme_users_v1_user_profile."""
    parts = [re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", p) for p in full_name.split(".")]
    return "_".join(parts).lower()


@dataclass
class _Place:
    """Where a message is: its descriptor, its proto, its path and the file's source index."""

    desc: descriptor.Descriptor
    proto: descriptor_pb2.DescriptorProto
    path: loc.Path
    python_name: str


class _Builder:
    def __init__(self, pool: descriptor_pool.DescriptorPool, reader: PrismOptionReader) -> None:
        self.pool = pool
        self.reader = reader
        self.diagnostics: list[Diagnostic] = []
        self._src: loc.SourceIndex | None = None
        self._value_types: list[ValueType] = []
        # Where each graph_edge of the current file is, for errors located at its edge options.
        self._edges: list[tuple[Entity, _Place, OptionMap]] = []

    # -- reporting -------------------------------------------------------------------------------

    @property
    def src(self) -> loc.SourceIndex:
        assert self._src is not None
        return self._src

    def error(self, where: Location, element: str, message: str) -> None:
        self.diagnostics.append(Diagnostic(where, element, message))

    # -- walking ---------------------------------------------------------------------------------

    def file(self, file: descriptor_pb2.FileDescriptorProto) -> ProtoFile:
        self._src = loc.SourceIndex(file)
        self._value_types = []
        self._edges = []
        entities = [e for place in self._messages(file) if (e := self.entity(place)) is not None]
        proto_file = ProtoFile(
            name=file.name,
            package=file.package,
            entities=tuple(entities),
            value_types=tuple(self._value_types),
        )
        for edge, place, options in self._edges:
            self._check_edge(proto_file, edge, place, options)
        if entities:
            self._check_python_module(proto_file)
        return proto_file

    def _check_python_module(self, file: ProtoFile) -> None:
        """The generated client imports the file's *_pb2 module: every part of its path must be importable."""
        for part in file.python_module.split("."):
            if not part.isidentifier() or keyword.iskeyword(part):
                self.error(
                    Location(file.name),
                    file.package or file.name,
                    f"the generated client imports {file.python_module!r}, but {part!r} is "
                    f"{'a Python keyword' if keyword.iskeyword(part) else 'not a Python identifier'}; "
                    f"allowed: directories and file names that are Python identifiers",
                )
                return

    def _messages(self, file: descriptor_pb2.FileDescriptorProto) -> Iterator[_Place]:
        prefix = f"{file.package}." if file.package else ""

        def walk(
            protos: Sequence[descriptor_pb2.DescriptorProto], path: loc.Path, scope: str, py: str
        ) -> Iterator[_Place]:
            for i, proto in enumerate(protos):
                here = (*path, i)
                desc = self.pool.FindMessageTypeByName(scope + proto.name)
                if is_map_entry(desc):
                    continue
                python_name = f"{py}{proto.name}"
                yield _Place(desc, proto, here, python_name)
                yield from walk(
                    proto.nested_type, (*here, loc.NESTED_TYPE), f"{desc.full_name}.", f"{python_name}."
                )

        return walk(file.message_type, (loc.MESSAGE_TYPE,), prefix, "")

    # -- entities --------------------------------------------------------------------------------

    def entity(self, place: _Place) -> Entity | None:
        name = place.desc.full_name
        try:
            message_options = self.reader.message_options(place.proto.options)
        except OptionsUnreadable as error:
            self.error(
                self.src.locate((*place.path, loc.MESSAGE_OPTIONS), place.path), name, _unreadable(error)
            )
            return None
        field_options: list[OptionMap] = []
        for i, f in enumerate(place.proto.field):
            try:
                field_options.append(self.reader.field_options(f.options))
            except OptionsUnreadable as error:
                path = (*place.path, loc.FIELD, i)
                self.error(
                    self.src.locate((*path, loc.FIELD_OPTIONS), path), f"{name}.{f.name}", _unreadable(error)
                )
                return None
        if not message_options and not any(field_options):
            return None
        where = self.src.locate(place.path)
        pattern = self._access_pattern(place, message_options)
        fields = tuple(
            self.field(place, i, proto, opts, entity="access_pattern" in message_options, pattern=pattern)
            for i, (proto, opts) in enumerate(zip(place.proto.field, field_options, strict=True))
        )
        if pattern is None:
            # A message with only pii options is a value type inside entities, not an entity itself.
            if not message_options:
                self._value_types.append(ValueType(name, fields, where))
            return None
        options = self._entity_options(place, message_options, pattern)
        entity = Entity(
            full_name=name,
            python_name=place.python_name,
            proto_file=self.src.file_name,
            options=options,
            fields=fields,
            location=where,
            comment=self.src.comment(place.path),
            option_locations=tuple(
                (option, self._option_location(place.path, loc.MESSAGE_OPTIONS, value.number))
                for option, value in sorted(message_options.items())
            ),
        )
        self._check_roles(entity)
        for part in place.python_name.split("."):
            if keyword.iskeyword(part):
                self.error(
                    where,
                    name,
                    f"the generated client names this message as {place.python_name!r}, but {part!r} is a "
                    f"Python keyword; allowed: a message name that is not one",
                )
        if pattern is AccessPattern.GRAPH_EDGE:
            self._edges.append((entity, place, message_options))
        else:
            for option in _EDGE_MESSAGE_OPTIONS:
                if option in message_options:
                    self.error(
                        self._option_location(
                            place.path, loc.MESSAGE_OPTIONS, message_options[option].number
                        ),
                        name,
                        f"(prism.{option}) applies to graph_edge messages, not {pattern}; allowed: graph_edge",
                    )
        return entity

    def _access_pattern(self, place: _Place, options: OptionMap) -> AccessPattern | None:
        name = place.desc.full_name
        raw = options.get("access_pattern")
        if raw is None:
            for option_name, value in sorted(options.items()):
                self.error(
                    self._option_location(place.path, loc.MESSAGE_OPTIONS, value.number),
                    name,
                    f"(prism.{option_name}) needs (prism.access_pattern) on the message; "
                    f"allowed patterns: {', '.join(AccessPattern)}",
                )
            return None
        written = str(raw.value)
        try:
            return AccessPattern(written)
        except ValueError:
            self.error(
                self._option_location(place.path, loc.MESSAGE_OPTIONS, raw.number),
                name,
                f"unknown access_pattern {written!r}; {allowed_values(written, list(AccessPattern))}",
            )
            return None

    def _entity_options(self, place: _Place, options: OptionMap, pattern: AccessPattern) -> EntityOptions:
        name = place.desc.full_name

        def where(option: str) -> Location:
            return self._option_location(place.path, loc.MESSAGE_OPTIONS, options[option].number)

        def count(option: str) -> int | None:
            if option not in options:
                return None
            written = str(options[option].value)
            if not _COUNT_RE.fullmatch(written):
                digits = (
                    "ASCII digits 0-9" if any(c.isdigit() and not c.isascii() for c in written) else "digits"
                )
                self.error(
                    where(option),
                    name,
                    f"{option} must be a non-negative whole number, got {written!r}; "
                    f'allowed: {digits}, e.g. "10000"',
                )
                return None
            digits = written.replace("_", "").lstrip("0") or "0"
            low, high = COUNT_RANGES[option]
            # Compare lengths first: int() refuses strings of more than 4300 digits.
            if len(digits) > len(str(high)) or not low <= int(digits) <= high:
                shown = digits if len(digits) <= 40 else f"{digits[:20]}...({len(digits)} digits)"
                self.error(where(option), name, f"{option} {shown} is out of range; allowed: {low} to {high}")
                return None
            return int(digits)

        def choice(option: str, allowed: type[BackendKind] | type[EdgeDirection]) -> str | None:
            if option not in options:
                return None
            value = str(options[option].value)
            if value not in {a.value for a in allowed}:
                self.error(
                    where(option), name, f"unknown {option} {value!r}; {allowed_values(value, list(allowed))}"
                )
                return None
            return value

        namespace = default_namespace(name)
        if "namespace" in options:
            written = str(options["namespace"].value)
            if _NAMESPACE_RE.fullmatch(written):
                namespace = written
            else:
                self.error(
                    where("namespace"),
                    name,
                    f"namespace {written!r} is not a valid name; allowed: lowercase letters, digits and "
                    f"'_', starting with a letter or '_', at most 63 characters",
                )
        elif not _NAMESPACE_RE.fullmatch(namespace):
            # Derived names are held to the same rule: the table, topic and stream are all named by it.
            size = len(namespace.encode())
            why = (
                f"is {size} bytes, more than the {_MAX_IDENTIFIER} a Postgres table name may have"
                if size > _MAX_IDENTIFIER
                else "is not a valid name"
            )
            self.error(
                self.src.locate(place.path),
                name,
                f"the namespace derived from the message's full name, {namespace!r}, {why}; allowed: set "
                f"(prism.namespace) to lowercase letters, digits and '_', at most {_MAX_IDENTIFIER} characters",
            )
        backend = choice("backend", BackendKind)
        direction = choice("edge_direction", EdgeDirection)
        return EntityOptions(
            access_pattern=pattern,
            namespace=namespace,
            estimated_write_rps=count("estimated_write_rps") or 0,
            estimated_read_rps=count("estimated_read_rps") or 0,
            retention_days=count("retention_days") or 0,
            backend=BackendKind(backend) if backend else None,
            estimated_message_bytes=count("estimated_message_bytes"),
            consumer_parallelism=count("consumer_parallelism"),
            edge_source_type=str(options["edge_source_type"].value) if "edge_source_type" in options else "",
            edge_target_type=str(options["edge_target_type"].value) if "edge_target_type" in options else "",
            edge_direction=EdgeDirection(direction) if direction else EdgeDirection.UNIDIRECTIONAL,
        )

    # -- fields ----------------------------------------------------------------------------------

    def field(
        self,
        place: _Place,
        index: int,
        proto: descriptor_pb2.FieldDescriptorProto,
        options: OptionMap,
        *,
        entity: bool,
        pattern: AccessPattern | None = None,
    ) -> Field:
        desc = place.desc.fields_by_name[proto.name]
        path = (*place.path, loc.FIELD, index)
        element = f"{place.desc.full_name}.{proto.name}"
        proto_type = PROTO_TYPE_NAMES[desc.type]
        type_name = ""
        if desc.message_type is not None:
            type_name = desc.message_type.full_name
        elif desc.enum_type is not None:
            type_name = desc.enum_type.full_name
        is_map = desc.message_type is not None and is_map_entry(desc.message_type)
        # is_repeated arrived in protobuf 5.x/6.x; older runtimes only have label.
        repeated = bool(
            getattr(desc, "is_repeated", None) or getattr(desc, "label", 0) == desc.LABEL_REPEATED
        )
        oneof = None
        if proto.HasField("oneof_index") and not proto.proto3_optional:
            oneof = place.proto.oneof_decl[proto.oneof_index].name

        def where(option: str) -> Location:
            return self._option_location(path, loc.FIELD_OPTIONS, options[option].number)

        if entity and len(proto.name.encode()) > _MAX_IDENTIFIER:
            self.error(
                self.src.locate(path),
                element,
                f"field name is {len(proto.name.encode())} bytes long, more than the {_MAX_IDENTIFIER} a Postgres "
                f"column name may have; allowed: names of at most {_MAX_IDENTIFIER} bytes",
            )
        if options.get("searchable") and options["searchable"].value and entity:
            column = blind_index_column(proto.name)
            if len(column.encode()) > _MAX_IDENTIFIER:
                self.error(
                    where("searchable"),
                    element,
                    f"its blind index column {column!r} is {len(column.encode())} bytes, more than the "
                    f"{_MAX_IDENTIFIER} a Postgres column name may have; allowed: searchable fields named in "
                    f"at most {_MAX_IDENTIFIER - len(blind_index_column('').encode())} bytes",
                )
        pii: PiiKind | None = None
        if "pii" in options:
            value = str(options["pii"].value)
            try:
                pii = PiiKind(value)
            except ValueError:
                self.error(
                    where("pii"),
                    element,
                    f"unknown pii kind {value!r}; {allowed_values(value, list(PiiKind))}",
                )
        flags = {
            name: bool(options[name].value) for name in options if name not in ("pii", "plaintext_reason")
        }
        if not entity:
            for role in _ROLE_OPTIONS:
                if flags.get(role):
                    self.error(
                        where(role),
                        element,
                        f"(prism.{role}) needs (prism.access_pattern) on {place.desc.full_name}; "
                        f"allowed patterns: {', '.join(AccessPattern)}",
                    )
        if pattern is not None:
            for role in _NOT_FOR.get(pattern, ("edge_source", "edge_target")):
                if flags.get(role):
                    self.error(where(role), element, _role_misuse(role, pattern))
        if flags.get("edge_source") and flags.get("edge_target"):
            self.error(
                where("edge_target"),
                element,
                "a field cannot be both the edge_source and the edge_target; allowed: one role per field",
            )
        if not entity:
            for option in ("encrypt_at_rest", "access_audit"):
                if flags.get(option):
                    self.error(
                        where(option),
                        element,
                        f"(prism.{option}) applies to fields of entities; {place.desc.full_name} has no "
                        f"(prism.access_pattern), so its fields are stored inside a parent's JSON column; "
                        f"allowed: move the field to the entity, or keep only (prism.pii) for masking",
                    )
        if flags.get("encrypt_at_rest") and (proto_type not in _ENCRYPTABLE or repeated):
            self.error(
                where("encrypt_at_rest"),
                element,
                f"encrypt_at_rest applies to singular string and bytes fields, not {_describe(proto_type, repeated, is_map)}; "
                f"allowed: string, bytes",
            )
        for role in ("key", "sort_key"):
            if not flags.get(role):
                continue
            if repeated or proto_type not in KEY_TYPES:
                self.error(
                    where(role),
                    element,
                    f"a {role} must be a singular string, bytes or integer field, not "
                    f"{_describe(proto_type, repeated, is_map)}; allowed: {', '.join(sorted(KEY_TYPES))}",
                )
            elif oneof is not None:
                self.error(
                    where(role), element, f"a {role} cannot be a member of oneof {oneof!r}; move it out"
                )
        for role in ("edge_source", "edge_target"):
            # Its type is checked against the node key once the node is known; presence is checked here.
            if flags.get(role) and oneof is not None:
                self.error(
                    where(role), element, f"an {role} cannot be a member of oneof {oneof!r}; move it out"
                )
        if flags.get("event_time") and not (
            not repeated and (type_name == TIMESTAMP or proto_type in _EVENT_TIME_TYPES)
        ):
            self.error(
                where("event_time"),
                element,
                f"event_time must be a google.protobuf.Timestamp or a 64-bit integer of epoch milliseconds, "
                f"not {_describe(proto_type, repeated, is_map)}; allowed: google.protobuf.Timestamp, int64, uint64",
            )
        kind, as_array, wrapped = column_kind(proto_type, type_name, repeated, is_map)
        field_options = FieldOptions(
            pii=pii,
            mask_in_logs=flags.get("mask_in_logs", pii is not None),
            plaintext_reason=str(options["plaintext_reason"].value) if "plaintext_reason" in options else "",
            **{name: value for name, value in flags.items() if name != "mask_in_logs"},
        )
        return Field(
            name=proto.name,
            number=proto.number,
            proto_type=proto_type,
            type_name=type_name,
            repeated=repeated,
            is_map=is_map,
            has_presence=bool(desc.has_presence),
            oneof=oneof,
            column_kind=kind,
            column_repeated=as_array,
            column_wrapped=wrapped,
            options=field_options,
            location=self.src.locate(path),
            comment=self.src.comment(path),
        )

    # -- rules across fields ---------------------------------------------------------------------

    def _check_roles(self, entity: Entity) -> None:
        for role in ("key", "sort_key", "event_time", "subject", "edge_source", "edge_target"):
            holders = [f for f in entity.fields if getattr(f.options, role)]
            for extra in holders[1:]:
                self.error(
                    extra.location,
                    f"{entity.full_name}.{extra.name}",
                    f"more than one (prism.{role}) field: {holders[0].name!r} is already the {role}; "
                    f"allowed: one {role} per message",
                )
        self._check_pii(entity)
        self._check_columns(entity)
        key, sort_key = entity.key, entity.sort_key
        pattern = entity.options.access_pattern
        if sort_key is not None and key is None:
            self.error(
                sort_key.location,
                f"{entity.full_name}.{sort_key.name}",
                "a sort_key needs a key: mark the partition key field with (prism.key) = true",
            )
        elif key is None and pattern is not AccessPattern.GRAPH_EDGE:
            self.error(
                entity.location,
                entity.full_name,
                f"a {pattern} message needs a key: mark one field with (prism.key) = true; "
                f"allowed key types: {', '.join(sorted(KEY_TYPES))}",
            )
        if entity.event_time is None and pattern is AccessPattern.APPEND_HEAVY:
            # The event time orders a series and is part of an event's identity (retries dedupe on it).
            self.error(
                entity.location,
                entity.full_name,
                "an append_heavy message needs an event time: mark one field with (prism.event_time) = true; "
                "allowed types: google.protobuf.Timestamp, int64, uint64",
            )
        if entity.event_time is not None and pattern is not AccessPattern.APPEND_HEAVY:
            f = entity.event_time
            self.error(
                f.location,
                f"{entity.full_name}.{f.name}",
                f"(prism.event_time) applies to append_heavy messages, not {pattern}; allowed: append_heavy",
            )

    def _check_columns(self, entity: Entity) -> None:
        """Every column of the entity's table, derived ones included, has a name no other column has."""
        owners: dict[str, tuple[str, str]] = {}
        if entity.abstraction is Abstraction.TIME_SERIES:
            for column in (EVENT_ID_COLUMN, SEQUENCE_COLUMN):
                owners[column] = (column, "Prism's own column of a TimeSeries table")
        for f in entity.fields:
            columns = [(f.name, "column")]
            if f.options.searchable:
                columns.append((blind_index_column(f.name), "blind index column"))
            for column, what in columns:
                # SQLite compares column names ignoring case; Postgres keeps quoted names as written.
                name, owner = owners.setdefault(column.lower(), (column, f"the {what} of field {f.name!r}"))
                if owner == f"the {what} of field {f.name!r}":
                    continue
                case = "" if name == column else f" ({name!r}: SQLite compares column names ignoring case)"
                self.error(
                    f.location,
                    f"{entity.full_name}.{f.name}",
                    f"its {what} {column!r} clashes with {owner}{case}; allowed: a name no other column of "
                    f"the table has",
                )

    def _check_pii(self, entity: Entity) -> None:
        for f in entity.fields:
            element = f"{entity.full_name}.{f.name}"
            o = f.options
            roles = [r for r in ("key", "sort_key", "subject") if getattr(o, r)]
            if o.encrypt_at_rest and roles:
                self.error(
                    f.location,
                    element,
                    f"a {roles[0]} cannot be encrypt_at_rest: rows are found and keys chosen by its clear "
                    f"value; allowed: encrypt_at_rest on other fields, or (prism.searchable) for lookups",
                )
            if o.searchable and entity.abstraction is not Abstraction.KEY_VALUE:
                self.error(
                    f.location,
                    element,
                    f"(prism.searchable) gives KeyValue stores a find_by_{f.name}; {entity.full_name} is "
                    f"{entity.options.access_pattern}; allowed: key_value, read_heavy, write_heavy",
                )
            if o.searchable and not o.encrypt_at_rest:
                self.error(
                    f.location,
                    element,
                    "(prism.searchable) applies to encrypt_at_rest fields; allowed: add "
                    "(prism.encrypt_at_rest) = true, or use (prism.index) on a plaintext field",
                )
            if o.subject and (f.repeated or f.proto_type not in KEY_TYPES):
                self.error(
                    f.location,
                    element,
                    f"a subject must be a singular string, bytes or integer field, not "
                    f"{_describe(f.proto_type, f.repeated, f.is_map)}; allowed: {', '.join(sorted(KEY_TYPES))}",
                )

    def _check_edge(self, file: ProtoFile, edge: Entity, place: _Place, options: OptionMap) -> None:
        """Check an edge against the node messages it names: they exist, are nodes, and key types match."""
        name = edge.full_name
        nodes = [e.full_name for e in file.entities if e.options.access_pattern is AccessPattern.GRAPH_NODE]
        allowed = ", ".join(nodes) if nodes else f"none: declare a graph_node message in {file.name}"
        ends: list[Entity] = []
        for role, option, verb in _EDGE_ENDS:
            holder = getattr(edge, role)
            if holder is None:
                self.error(
                    edge.location,
                    name,
                    f"a graph_edge message needs an {role} field: mark the field holding the key of the node "
                    f"the edge {verb} at with (prism.{role}) = true",
                )
            if option not in options:
                self.error(
                    edge.location,
                    name,
                    f"a graph_edge message needs (prism.{option}): the full name of the graph_node message "
                    f"the edge {verb} at; allowed: {allowed}",
                )
                continue
            where = self._option_location(place.path, loc.MESSAGE_OPTIONS, options[option].number)
            written = str(options[option].value)
            node = file.entity(written.removeprefix("."))
            # Suggest a close name only for a typo: a real message of another kind is no typo.
            unknown = node is None and self._message(written) is None
            if node is None or node.options.access_pattern is not AccessPattern.GRAPH_NODE:
                self.error(
                    where,
                    name,
                    f"{option} {written!r} {self._not_a_node(file, written)}; "
                    + (allowed_values(written, nodes) if nodes and unknown else f"allowed: {allowed}"),
                )
                continue
            ends.append(node)
            key = node.key
            if holder is None or key is None:
                continue
            # Stored alike: the same column kind, and one plain value (repeated scalars are arrays now).
            if (
                holder.column_kind is key.column_kind
                and holder.proto_type in KEY_TYPES
                and not holder.repeated
            ):
                continue
            same = key_types_stored_as(key.column_kind)
            self.error(
                holder.location,
                f"{name}.{holder.name}",
                f"the {role} is {_describe(holder.proto_type, holder.repeated, holder.is_map)} but holds keys "
                f"of {node.full_name}, whose key {key.name!r} is {_describe(key.proto_type, False, False)}; "
                f"allowed: {', '.join(same)}",
            )
        direction = edge.options.edge_direction
        if direction is EdgeDirection.BIDIRECTIONAL and len(ends) == 2 and ends[0] is not ends[1]:
            self.error(
                self._option_location(place.path, loc.MESSAGE_OPTIONS, options["edge_direction"].number),
                name,
                f"a bidirectional edge connects one node type to itself, but it goes from {ends[0].full_name} "
                f"to {ends[1].full_name}; allowed: unidirectional, or the same edge_source_type and "
                f"edge_target_type",
            )

    def _message(self, full_name: str) -> descriptor.Descriptor | None:
        try:
            return self.pool.FindMessageTypeByName(full_name.removeprefix("."))
        except KeyError:
            return None

    def _not_a_node(self, file: ProtoFile, written: str) -> str:
        """Say why a name written as a node type is not one: unknown, elsewhere, or another pattern."""
        entity = file.entity(written.removeprefix("."))
        if entity is not None:
            return f"is a {entity.options.access_pattern} message, not a graph_node"
        message = self._message(written)
        if message is None:
            return f"is not a message of {file.name}"
        if message.file.name != file.name:
            return f"is declared in {message.file.name}; an edge and its nodes must be in the same file"
        return "is not a graph_node message: it has no (prism.access_pattern)"

    def check_namespaces(self, files: Sequence[ProtoFile]) -> None:
        seen: dict[str, Entity] = {}
        for entity in (e for f in files for e in f.entities):
            first = seen.setdefault(entity.namespace, entity)
            if first is not entity:
                self.error(
                    entity.location,
                    entity.full_name,
                    f"namespace {entity.namespace!r} is already used by {first.full_name} ({first.location}); "
                    f"set a distinct (prism.namespace)",
                )

    def _option_location(self, element: loc.Path, options_field: int, number: int) -> Location:
        # protoc locates `option (x) = v;` at (..., options, extension number); fall back to the element.
        return self.src.locate((*element, options_field, number), element)


def _unreadable(error: OptionsUnreadable) -> str:
    return f"its options do not parse ({error}); the request is not what protoc sends for a .proto file"


def _role_misuse(role: str, pattern: AccessPattern) -> str:
    if pattern is AccessPattern.GRAPH_EDGE:
        return (
            f"(prism.{role}) does not apply to graph_edge messages: an edge is identified by its "
            f"(prism.edge_source) and (prism.edge_target) fields"
        )
    if role == "sort_key":
        return "(prism.sort_key) does not apply to graph_node messages: a node is identified by its key alone"
    return f"(prism.{role}) applies to graph_edge messages, not {pattern}; allowed: graph_edge"


def _describe(proto_type: str, repeated: bool, is_map: bool) -> str:
    if is_map:
        return "a map field"
    if repeated:
        return f"a repeated {proto_type} field"
    article = "an" if proto_type[0] in "aeiou" else "a"
    return f"{article} {proto_type} field"
