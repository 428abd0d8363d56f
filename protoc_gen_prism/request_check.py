"""Structural checks of a request's descriptors, before any of them reaches a descriptor pool.

protoc only ever sends well-formed, linked descriptors, but a request can also come from another
front end (buf, a replayed or hand-edited PRISM_DUMP_REQUEST file, a tool that builds descriptors
itself). A malformed one must get a located, one-line-per-problem answer rather than whatever
exception the pool or the model builder happens to raise. The structural checks run when the pool
refuses a file (upb and C++ pools check everything; they only locate what was refused) and always
with the pure-Python runtime, whose pool checks little; anything the pool refuses that these checks
do not foresee is still reported as one line naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from google.protobuf.internal import api_implementation

from protoc_gen_prism import locations as loc
from protoc_gen_prism.diagnostics import Diagnostic, Location, SchemaError

_F = descriptor_pb2.FileDescriptorProto
_M = descriptor_pb2.DescriptorProto
_FD = descriptor_pb2.FieldDescriptorProto

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_FIELD_NUMBER = 536_870_911
"""2**29 - 1: the largest field number the wire format can carry."""
RESERVED_NUMBERS = range(19_000, 20_000)
"""Field numbers reserved for the protobuf implementation itself."""

_NAMED_TYPES = frozenset({_FD.TYPE_MESSAGE, _FD.TYPE_ENUM, _FD.TYPE_GROUP})
_VALID_TYPES = frozenset(_FD.Type.values())
_VALID_LABELS = frozenset(_FD.Label.values())
_REPLAY = "the request is not what protoc sends for a .proto file"
_SYNTAXES = ("", "proto2", "proto3", "editions")
# The editions the generator declares in its response; protoc holds editions files to the same range.
MIN_EDITION = descriptor_pb2.EDITION_PROTO2
MAX_EDITION = descriptor_pb2.EDITION_2024


def check_request(
    proto_files: Sequence[descriptor_pb2.FileDescriptorProto],
    files_to_generate: Sequence[str],
    source_files: Sequence[descriptor_pb2.FileDescriptorProto] = (),
) -> None:
    """Raise SchemaError for what no pool sees: files to generate not sent, source files that disagree."""
    problems: list[Diagnostic] = []
    sent = [f.name for f in proto_files]
    for name in files_to_generate:
        if name not in sent:
            problems.append(
                Diagnostic(
                    Location(name or "<unnamed file>"),
                    "file_to_generate",
                    f"this file is to be generated but is not among the request's proto_file; {_REPLAY}",
                )
            )
    by_name = {f.name: f for f in proto_files}
    for source in source_files:
        problems.extend(_check_source(source, by_name.get(source.name)))
    if problems:
        raise SchemaError(problems)


def check_structure(proto_files: Sequence[descriptor_pb2.FileDescriptorProto]) -> None:
    """Raise SchemaError with one located diagnostic per structural problem of the descriptors."""
    problems: list[Diagnostic] = []
    defined = _defined_types(proto_files)
    seen: set[str] = set()
    for file in proto_files:
        problems.extend(_FileCheck(file, seen, defined).run())
        seen.add(file.name)
    if problems:
        raise SchemaError(problems)


def load_pool(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """Return a fresh pool holding `files`, or raise SchemaError: located lines when the structural
    checks find the problem, else one line naming the file the pool refused."""
    pure_python = api_implementation.Type() == "python"
    if pure_python:
        check_structure(files)  # the pure-Python pool checks little itself; upb and C++ check it all
    pool = descriptor_pool.DescriptorPool()
    for file in files:
        try:
            pool.AddSerializedFile(file.SerializeToString())
            if pure_python:
                # It also resolves options and features lazily: resolve them now, here.
                _resolve(pool.FindFileByName(file.name).message_types_by_name.values())
        except Exception as error:  # the pool's own exception types differ between upb and pure Python
            check_structure(files)
            reason = " ".join(str(error).split()).removeprefix(
                "Couldn't build proto file into descriptor pool: "
            )
            raise SchemaError(
                [
                    Diagnostic(
                        Location(file.name or "<unnamed file>"),
                        file.package or file.name,
                        f"the descriptors of this file do not load: {reason or type(error).__name__}; {_REPLAY}",
                    )
                ]
            ) from None
    return pool


def _resolve(messages: Iterable[descriptor.Descriptor]) -> None:
    for message in messages:
        message.GetOptions()
        for field in message.fields:
            field.GetOptions()
            _ = field.has_presence
        _resolve(message.nested_types)


def _defined_types(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> set[str]:
    names: set[str] = set()
    for file in files:
        prefix = f".{file.package}" if file.package else ""
        names.update(f"{prefix}.{e.name}" for e in file.enum_type)
        for full_name, message, _ in _walk(file.message_type, prefix, (loc.MESSAGE_TYPE,)):
            names.add(full_name)
            names.update(f"{full_name}.{e.name}" for e in message.enum_type)
    return names


def _walk(
    messages: Iterable[descriptor_pb2.DescriptorProto], scope: str, path: loc.Path
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto, loc.Path]]:
    """Yield (full name with a leading '.', message, path) for every message, nested ones included."""
    for i, message in enumerate(messages):
        full_name = f"{scope}.{message.name}"
        here = (*path, i)
        yield full_name, message, here
        yield from _walk(message.nested_type, full_name, (*here, loc.NESTED_TYPE))


@dataclass
class _FileCheck:
    file: descriptor_pb2.FileDescriptorProto
    earlier: set[str]
    defined: set[str]

    def run(self) -> list[Diagnostic]:
        self._src: loc.SourceIndex | None = None  # built on the first problem: most requests have none
        self.problems: list[Diagnostic] = []
        file = self.file
        if not file.name:
            self._error((), "<unnamed file>", f"a proto_file has no name; {_REPLAY}")
        if file.name in self.earlier:
            self._error((), file.name, f"this file is sent twice in proto_file; {_REPLAY}")
        if file.syntax not in _SYNTAXES:
            self._error(
                (), file.name, f"syntax {file.syntax!r} is not one of {', '.join(_SYNTAXES[1:])}; {_REPLAY}"
            )
        elif (file.syntax == "editions" or file.HasField("edition")) and not (
            MIN_EDITION <= file.edition <= MAX_EDITION
        ):
            self._error(
                (),
                file.name,
                f"edition {descriptor_pb2.Edition.Name(file.edition)} is outside what protoc-gen-prism "
                f"supports; allowed: {descriptor_pb2.Edition.Name(MIN_EDITION)} to "
                f"{descriptor_pb2.Edition.Name(MAX_EDITION)}",
            )
        if file.package and not _PACKAGE.fullmatch(file.package):
            self._error((), file.package, "the package is not a dotted name of letters, digits and '_'")
        for i, dependency in enumerate(file.dependency):
            if dependency not in self.earlier:
                self._error(
                    (loc.DEPENDENCY, i),
                    f"import {dependency!r}",
                    f"the request does not send this file before {file.name!r}, which imports it; {_REPLAY}",
                )
        prefix = f".{file.package}" if file.package else ""
        self._siblings(
            prefix or file.name,
            [(m.name, (loc.MESSAGE_TYPE, i)) for i, m in enumerate(file.message_type)]
            + [(e.name, (loc.FILE_ENUM, i)) for i, e in enumerate(file.enum_type)],
        )
        for i, extension in enumerate(file.extension):
            self._field(prefix, prefix, extension, (loc.FILE_EXTENSION, i), oneofs=0)
        for full_name, message, path in _walk(file.message_type, prefix, (loc.MESSAGE_TYPE,)):
            self._message(full_name, message, path)
        return self.problems

    def _error(self, path: loc.Path, element: str, message: str, *fallback: loc.Path) -> None:
        if self._src is None:
            self._src = loc.SourceIndex(self.file)
        where = self._src.locate(path, *fallback) if path else Location(self.file.name or "<unnamed file>")
        self.problems.append(Diagnostic(where, element.lstrip("."), message))

    def _siblings(self, scope: str, named: Sequence[tuple[str, loc.Path]]) -> None:
        first: dict[str, loc.Path] = {}
        for name, path in named:
            element = f"{scope}.{name}" if scope.startswith(".") else name
            if not _IDENTIFIER.fullmatch(name):
                self._error(
                    path,
                    element or scope,
                    f"{name!r} is not a valid name; allowed: letters, digits and '_', not starting with a digit",
                )
            elif name in first:
                self._error(
                    path, element, f"{name!r} is declared twice in {scope.lstrip('.') or self.file.name}"
                )
            first.setdefault(name, path)

    def _message(self, full_name: str, message: descriptor_pb2.DescriptorProto, path: loc.Path) -> None:
        self._siblings(
            full_name,
            [(m.name, (*path, loc.NESTED_TYPE, i)) for i, m in enumerate(message.nested_type)]
            + [(e.name, (*path, loc.MESSAGE_ENUM, i)) for i, e in enumerate(message.enum_type)],
        )
        self._siblings(full_name, [(o.name, (*path, loc.ONEOF, i)) for i, o in enumerate(message.oneof_decl)])
        self._siblings(full_name, [(f.name, (*path, loc.FIELD, i)) for i, f in enumerate(message.field)])
        numbers: dict[int, str] = {}
        for i, field in enumerate(message.field):
            field_path = (*path, loc.FIELD, i)
            self._field(full_name, full_name, field, field_path, oneofs=len(message.oneof_decl))
            if field.number in numbers:
                self._error(
                    (*field_path, loc.FIELD_NUMBER),
                    f"{full_name}.{field.name}",
                    f"field number {field.number} is already used by {numbers[field.number]!r}; "
                    f"allowed: one field per number",
                    field_path,
                )
            numbers.setdefault(field.number, field.name)
        for i, extension in enumerate(message.extension):
            self._field(full_name, full_name, extension, (*path, loc.MESSAGE_EXTENSION, i), oneofs=0)

    def _field(
        self,
        owner: str,
        scope: str,
        field: descriptor_pb2.FieldDescriptorProto,
        path: loc.Path,
        *,
        oneofs: int,
    ) -> None:
        element = f"{owner}.{field.name}"
        if not 1 <= field.number <= MAX_FIELD_NUMBER or field.number in RESERVED_NUMBERS:
            self._error(
                (*path, loc.FIELD_NUMBER),
                element,
                f"field number {field.number} is out of range; allowed: 1 to {MAX_FIELD_NUMBER}, "
                f"except {RESERVED_NUMBERS.start} to {RESERVED_NUMBERS.stop - 1}",
                path,
            )
        if field.label not in _VALID_LABELS:
            self._error(path, element, f"label {field.label} is not a protobuf label; {_REPLAY}")
        if field.HasField("type") and field.type not in _VALID_TYPES:
            self._error(path, element, f"type {field.type} is not a protobuf field type; {_REPLAY}")
        named = field.type in _NAMED_TYPES or not field.HasField("type")
        if field.type_name and named:
            if self._resolve(scope, field.type_name) is None:
                self._error(
                    (*path, loc.FIELD_TYPE_NAME),
                    element,
                    f"type {field.type_name.lstrip('.')!r} is not defined in this file or the files it imports",
                    path,
                )
        elif named:
            self._error(path, element, f"the field has neither a type nor a type name; {_REPLAY}")
        elif field.type_name:
            self._error(
                (*path, loc.FIELD_TYPE_NAME),
                element,
                f"a {_FD.Type.Name(field.type).removeprefix('TYPE_').lower()} field cannot name a type "
                f"({field.type_name.lstrip('.')!r}); {_REPLAY}",
                path,
            )
        if field.HasField("extendee") and self._resolve(scope, field.extendee) is None:
            self._error(
                (*path, loc.FIELD_EXTENDEE),
                element,
                f"extends {field.extendee.lstrip('.')!r}, which is not defined in this file or the files it imports",
                path,
            )
        if field.HasField("oneof_index") and not 0 <= field.oneof_index < oneofs:
            self._error(
                (*path, loc.FIELD_ONEOF),
                element,
                f"oneof_index {field.oneof_index} is out of range: the message declares {oneofs} oneof(s); "
                f"{_REPLAY}",
                path,
            )

    def _resolve(self, scope: str, name: str) -> str | None:
        """Return the full name `name` refers to from `scope`, as protoc's scoping rules find it."""
        if name.startswith("."):
            return name if name in self.defined else None
        parts = scope.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join((*parts[:end], name))
            if candidate in self.defined:
                return candidate
        return None


def _shape(file: descriptor_pb2.FileDescriptorProto) -> list[tuple[object, ...]]:
    """Return what the model builder reads of a file's structure: names, numbers, types, oneofs."""
    prefix = f".{file.package}" if file.package else ""
    return [
        (
            full_name,
            tuple(
                (
                    f.name,
                    f.number,
                    f.type,
                    f.type_name,
                    f.label,
                    f.oneof_index if f.HasField("oneof_index") else None,
                    f.proto3_optional,
                )
                for f in message.field
            ),
            len(message.oneof_decl),
        )
        for full_name, message, _ in _walk(file.message_type, prefix, (loc.MESSAGE_TYPE,))
    ]


def _check_source(
    source: descriptor_pb2.FileDescriptorProto, sent: descriptor_pb2.FileDescriptorProto | None
) -> Iterator[Diagnostic]:
    where = Location(source.name or "<unnamed file>")
    if sent is None:
        yield Diagnostic(
            where, "source_file_descriptors", f"this file is not among the request's proto_file; {_REPLAY}"
        )
    elif source.SerializeToString() == sent.SerializeToString():
        # The usual case: no option of the file has source retention. Equal bytes are equal messages, and
        # comparing them is cheaper than message equality; anything else is judged by its shape below.
        return
    elif source.package != sent.package or _shape(source) != _shape(sent):
        yield Diagnostic(
            where,
            "source_file_descriptors",
            f"its messages or fields differ from the proto_file of the same name; {_REPLAY}",
        )
