"""Request -> model: read the prism options into the typed IR (the model stage).

Reading only: each option becomes a typed value, and a value that cannot be read (an unknown pii kind, a
count that is no number, options that do not parse) becomes a located `Diagnostic`. The rules about how
options fit together are `validate.py`'s; `build_schema` runs both and raises `SchemaError` with all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from prism_runtime.schema import masked_in_logs
from protoc_gen_prism import locations as loc
from protoc_gen_prism.descriptors import OptionMap, OptionsUnreadable, PrismOptionReader, is_map_entry
from protoc_gen_prism.diagnostics import Diagnostic, Location, SchemaError, allowed_values
from protoc_gen_prism.limits import COUNT_RANGES, MAX_IDENTIFIER_BYTES
from protoc_gen_prism.model import (
    NO_FIELD_OPTIONS,
    Entity,
    EntityOptions,
    Field,
    FieldOptions,
    ProtoFile,
    Schema,
    ValueType,
)
from protoc_gen_prism.naming import default_namespace
from protoc_gen_prism.request_check import check_request, load_pool
from protoc_gen_prism.storage import PROTO_TYPE_NAMES, column_kind
from protoc_gen_prism.validate import LooseMessage, Model, check_schema
from protoc_gen_prism.vocabulary import AccessPattern, BackendKind, EdgeDirection, PiiKind

# Postgres truncates identifiers at 63 bytes; namespaces also name topics and subjects.
# Always fullmatch: `$` would also accept a name followed by a newline.
_NAMESPACE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_MAX_IDENTIFIER = MAX_IDENTIFIER_BYTES
# A count as written: ASCII digits only (str.isdigit and int() also take fullwidth and Arabic-Indic digits),
# optionally grouped with single underscores as in "10_000".
_COUNT_RE = re.compile(r"[0-9]+(?:_[0-9]+)*")


def build_model(
    proto_files: Sequence[descriptor_pb2.FileDescriptorProto],
    files_to_generate: Sequence[str],
    source_files: Sequence[descriptor_pb2.FileDescriptorProto] = (),
) -> Model:
    """Read the files to generate into the model, with every option value that could not be read."""
    check_request(proto_files, files_to_generate, source_files)
    pool = load_pool(proto_files)
    reader = PrismOptionReader(pool)
    # Source-retention options only survive in source_file_descriptors; prefer them when sent.
    by_name = {f.name: f for f in proto_files}
    by_name.update({f.name: f for f in source_files})
    builder = _Builder(pool, reader)
    files = tuple(builder.file(by_name[name]) for name in files_to_generate)

    def message_file(full_name: str) -> str | None:
        try:
            return str(pool.FindMessageTypeByName(full_name).file.name)
        except KeyError:
            return None

    return Model(Schema(files), tuple(builder.diagnostics), tuple(builder.loose), message_file)


def build_schema(
    proto_files: Sequence[descriptor_pb2.FileDescriptorProto],
    files_to_generate: Sequence[str],
    source_files: Sequence[descriptor_pb2.FileDescriptorProto] = (),
) -> Schema:
    """Build and validate the model of the files to generate, or raise SchemaError with every problem."""
    return validated(build_model(proto_files, files_to_generate, source_files))


def validated(model: Model) -> Schema:
    """Return the model's schema when it was read cleanly and breaks no rule, else raise SchemaError."""
    problems = [*model.problems, *check_schema(model)]
    if problems:
        raise SchemaError(problems)
    return model.schema


_DeclaredType = tuple[str, str, str, bool]
"""A field's message or enum type: (full name, file, class path in its *_pb2 module, is a map entry)."""


@dataclass
class _Place:
    """Where a message is: its descriptor, its proto, its path and the file's source index."""

    desc: descriptor.Descriptor
    proto: descriptor_pb2.DescriptorProto
    path: loc.Path
    python_name: str
    full_name: str


class _Builder:
    def __init__(self, pool: descriptor_pool.DescriptorPool, reader: PrismOptionReader) -> None:
        self.pool = pool
        self.reader = reader
        self.diagnostics: list[Diagnostic] = []
        self._src: loc.SourceIndex | None = None
        self._value_types: list[ValueType] = []
        self._typed_options: dict[int, tuple[OptionMap, FieldOptions]] = {}
        self._declared: dict[descriptor.Descriptor | descriptor.EnumDescriptor, _DeclaredType] = {}
        # Messages with prism options that are neither entities nor value types; validation checks their fields.
        self.loose: list[LooseMessage] = []

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
        entities = [e for place in self._messages(file) if (e := self.entity(place)) is not None]
        proto_file = ProtoFile(
            name=file.name,
            package=file.package,
            entities=tuple(entities),
            value_types=tuple(self._value_types),
        )
        return proto_file

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
                full_name = desc.full_name
                yield _Place(desc, proto, here, python_name, full_name)
                yield from walk(
                    proto.nested_type, (*here, loc.NESTED_TYPE), f"{full_name}.", f"{python_name}."
                )

        return walk(file.message_type, (loc.MESSAGE_TYPE,), prefix, "")

    # -- entities --------------------------------------------------------------------------------

    def entity(self, place: _Place) -> Entity | None:
        name = place.full_name
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
                # Most fields have no options at all: asking first is cheaper than reading empty ones.
                field_options.append(self.reader.field_options(f.options) if f.HasField("options") else _NONE)
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
        descs = place.desc.fields  # the pool's fields are the proto's, in the same order
        fields = tuple(
            self.field(place, i, proto, descs[i], opts)
            for i, (proto, opts) in enumerate(zip(place.proto.field, field_options, strict=True))
        )
        if pattern is None:
            # A message with only pii options is a value type inside entities, not an entity itself.
            if not message_options:
                self._value_types.append(ValueType(name, fields, where))
            else:
                self.loose.append(
                    LooseMessage(ValueType(name, fields, where), "access_pattern" in message_options)
                )
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
        return entity

    def _access_pattern(self, place: _Place, options: OptionMap) -> AccessPattern | None:
        name = place.full_name
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
        name = place.full_name

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
            ttl_seconds=count("ttl_seconds") or 0,
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
        desc: descriptor.FieldDescriptor,
        options: OptionMap,
    ) -> Field:
        src = self.src
        path = (*place.path, loc.FIELD, index)
        proto_type = PROTO_TYPE_NAMES[desc.type]
        # Only a message or enum field has a declared type (scalars are most fields: two reads saved).
        declared: descriptor.Descriptor | descriptor.EnumDescriptor | None = None
        if proto_type == "message":
            declared = desc.message_type
        elif proto_type == "enum":
            declared = desc.enum_type
        if declared is None:
            type_name = type_file = type_python_name = ""
            is_map = False
        else:
            type_name, type_file, type_python_name, is_map = self._declared_type(declared)
        # is_repeated arrived in protobuf 5.x/6.x; older runtimes only have label.
        repeated = getattr(desc, "is_repeated", None)
        if repeated is None:
            repeated = getattr(desc, "label", 0) == desc.LABEL_REPEATED
        oneof = None
        if proto.HasField("oneof_index") and not proto.proto3_optional:
            oneof = place.proto.oneof_decl[proto.oneof_index].name
        kind, as_array, wrapped = column_kind(proto_type, type_name, repeated, is_map)
        return Field(
            name=proto.name,
            number=proto.number,
            proto_type=proto_type,
            type_name=type_name,
            repeated=bool(repeated),
            is_map=is_map,
            has_presence=bool(desc.has_presence),
            oneof=oneof,
            column_kind=kind,
            column_repeated=as_array,
            column_wrapped=wrapped,
            options=self._field_options(place, proto, path, options) if options else NO_FIELD_OPTIONS,
            location=src.locate(path),
            comment=src.comment(path),
            type_file=type_file,
            type_python_name=type_python_name,
            option_locations=tuple(
                (option, self._option_location(path, loc.FIELD_OPTIONS, value.number))
                for option, value in sorted(options.items())
            )
            if options
            else (),
        )

    def _declared_type(self, declared: descriptor.Descriptor | descriptor.EnumDescriptor) -> _DeclaredType:
        """Return (full name, file, class path in its *_pb2 module, is a map entry) of a field's message or
        enum type; read once per type, as most types (Timestamp, an enum) type many fields."""
        known = self._declared.get(declared)
        if known is None:
            type_name = declared.full_name
            declared_file = declared.file
            package = declared_file.package
            known = (
                type_name,
                declared_file.name,
                type_name.removeprefix(f"{package}.") if package else type_name,
                isinstance(declared, descriptor.Descriptor) and is_map_entry(declared),
            )
            self._declared[declared] = known
        return known

    def _field_options(
        self, place: _Place, proto: descriptor_pb2.FieldDescriptorProto, path: loc.Path, options: OptionMap
    ) -> FieldOptions:
        # The reader shares one map among fields with the same options, and so do their typed values (which
        # are immutable); a map whose reading reported a problem is read again, to report it where it is.
        known = self._typed_options.get(id(options))
        if known is not None and known[0] is options:
            return known[1]
        reported = len(self.diagnostics)
        typed = self._read_field_options(place, proto, path, options)
        if len(self.diagnostics) == reported:
            self._typed_options[id(options)] = (options, typed)
        return typed

    def _read_field_options(
        self, place: _Place, proto: descriptor_pb2.FieldDescriptorProto, path: loc.Path, options: OptionMap
    ) -> FieldOptions:
        pii: PiiKind | None = None
        if "pii" in options:
            value = str(options["pii"].value)
            try:
                pii = PiiKind(value)
            except ValueError:
                self.error(
                    self._option_location(path, loc.FIELD_OPTIONS, options["pii"].number),
                    f"{place.full_name}.{proto.name}",
                    f"unknown pii kind {value!r}; {allowed_values(value, list(PiiKind))}",
                )
        flags = {
            name: bool(value.value)
            for name, value in options.items()
            if name not in ("pii", "plaintext_reason", "mask_in_logs")
        }
        mask = options.get("mask_in_logs")
        return FieldOptions(
            pii=pii,
            mask_in_logs=masked_in_logs(pii.value if pii else "", None if mask is None else bool(mask.value)),
            plaintext_reason=str(options["plaintext_reason"].value) if "plaintext_reason" in options else "",
            **flags,
        )

    def _option_location(self, element: loc.Path, options_field: int, number: int) -> Location:
        # protoc locates `option (x) = v;` at (..., options, extension number); fall back to the element.
        return self.src.locate((*element, options_field, number), element)


_NONE: OptionMap = {}


def _unreadable(error: OptionsUnreadable) -> str:
    return f"its options do not parse ({error}); the request is not what protoc sends for a .proto file"
