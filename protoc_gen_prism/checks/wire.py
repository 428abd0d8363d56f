"""Wire rules: changes that break readers or writers of already-encoded messages, found on the descriptors."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf import descriptor_pb2

from protoc_gen_prism import locations as loc
from protoc_gen_prism.checks.compare import Comparison, Declared, TypeIndex
from protoc_gen_prism.checks.rules import Category, Hit, Severity, rule
from protoc_gen_prism.diagnostics import Location
from protoc_gen_prism.storage import PROTO_TYPE_NAMES

_FD = descriptor_pb2.FieldDescriptorProto


def _message(d: Declared) -> descriptor_pb2.DescriptorProto:
    assert isinstance(d.proto, descriptor_pb2.DescriptorProto)
    return d.proto


def _enum(d: Declared) -> descriptor_pb2.EnumDescriptorProto:
    assert isinstance(d.proto, descriptor_pb2.EnumDescriptorProto)
    return d.proto


def _reserved(message: descriptor_pb2.DescriptorProto, number: int, name: str) -> bool:
    # Message reserved ranges are half-open [start, end).
    return name in message.reserved_name or any(r.start <= number < r.end for r in message.reserved_range)


def _enum_reserved(enum: descriptor_pb2.EnumDescriptorProto, number: int, name: str) -> bool:
    # Enum reserved ranges are closed [start, end].
    return name in enum.reserved_name or any(r.start <= number <= r.end for r in enum.reserved_range)


def _type(field: descriptor_pb2.FieldDescriptorProto) -> str:
    name = field.type_name.lstrip(".") if field.type_name else PROTO_TYPE_NAMES[field.type]
    return f"repeated {name}" if field.label == _FD.LABEL_REPEATED else name


def _where_gone(change: Comparison, declared: Declared) -> Location:
    """Locate something deleted: its enclosing message now, else its file now, else the baseline file."""
    parent = declared.full_name.rsplit(".", 1)[0]
    now = change.after_types.messages.get(parent)
    if now is not None:
        return change.locate(now)
    if declared.file in change.after.by_name:
        return Location(declared.file)
    return change.before_types.locate(declared)


def _pairs(before: dict[str, Declared], after: dict[str, Declared]) -> Iterator[tuple[Declared, Declared]]:
    for name, old in before.items():
        new = after.get(name)
        if new is not None:
            yield old, new


@rule(
    "WIRE_FIELD_DELETED",
    Category.WIRE,
    Severity.ERROR,
    "a field was deleted without reserving its number and name, so the number can be reused with another type",
    "message M {\n  string id = 1;\n  string note = 2;\n}",
    "message M {\n  string id = 1;\n}",
)
def field_deleted(change: Comparison) -> Iterator[Hit]:
    """Find deleted, unreserved field numbers."""
    for old, new in _pairs(change.before_types.messages, change.after_types.messages):
        now = _message(new)
        numbers = {f.number for f in now.field}
        names = {f.name for f in now.field}
        for f in _message(old).field:
            if f.number in numbers or _reserved(now, f.number, f.name) or f.name in names:
                continue
            yield Hit(
                change.locate(new),
                f"{new.full_name}: field {f.name} = {f.number} was deleted; add `reserved {f.number};` and "
                f'`reserved "{f.name}";` so the number is never reused',
            )


@rule(
    "WIRE_FIELD_NUMBER_CHANGED",
    Category.WIRE,
    Severity.ERROR,
    "a field kept its name but changed its number: old data decodes as an unknown field",
    "message M {\n  string id = 1;\n  string note = 2;\n}",
    "message M {\n  string id = 1;\n  string note = 3;\n}",
)
def field_number_changed(change: Comparison) -> Iterator[Hit]:
    """Find fields whose number moved."""
    for old, new in _pairs(change.before_types.messages, change.after_types.messages):
        now = _message(new)
        numbers = {f.number for f in now.field}
        by_name = {f.name: (i, f) for i, f in enumerate(now.field)}
        for f in _message(old).field:
            if f.number in numbers or f.name not in by_name:
                continue
            i, moved = by_name[f.name]
            yield Hit(
                change.locate(new, i),
                f"{new.full_name}.{f.name}: number changed from {f.number} to {moved.number}; "
                f"keep {f.number} (data on the wire and in streams is keyed by number)",
            )


@rule(
    "WIRE_FIELD_TYPE_CHANGED",
    Category.WIRE,
    Severity.ERROR,
    "a field number now has another type or cardinality: old bytes decode wrongly or not at all",
    "message M {\n  string id = 1;\n  int32 count = 2;\n}",
    "message M {\n  string id = 1;\n  string count = 2;\n}",
)
def field_type_changed(change: Comparison) -> Iterator[Hit]:
    """Find fields whose type or label changed under the same number."""
    for old, new in _pairs(change.before_types.messages, change.after_types.messages):
        by_number = {f.number: (i, f) for i, f in enumerate(_message(new).field)}
        for f in _message(old).field:
            if f.number not in by_number:
                continue
            i, now = by_number[f.number]
            if _type(f) != _type(now):
                yield Hit(
                    change.locate(new, i),
                    f"{new.full_name}.{now.name}: field {f.number} changed type from {_type(f)} to {_type(now)}; "
                    "add a new field with a new number instead",
                )


@rule(
    "WIRE_FIELD_RENAMED",
    Category.WIRE,
    Severity.WARNING,
    "a field was renamed under the same number: binary-compatible, but JSON, the Python API and the column change",
    "message M {\n  string id = 1;\n  string nick = 2;\n}",
    "message M {\n  string id = 1;\n  string nickname = 2;\n}",
)
def field_renamed(change: Comparison) -> Iterator[Hit]:
    """Find fields renamed in place."""
    for old, new in _pairs(change.before_types.messages, change.after_types.messages):
        by_number = {f.number: (i, f) for i, f in enumerate(_message(new).field)}
        for f in _message(old).field:
            if f.number in by_number and by_number[f.number][1].name != f.name:
                i, now = by_number[f.number]
                yield Hit(
                    change.locate(new, i),
                    f"{new.full_name}.{now.name}: field {f.number} renamed from {f.name}; JSON and generated code "
                    "change, `prism migrate` renames the column",
                )


@rule(
    "WIRE_ENUM_VALUE_DELETED",
    Category.WIRE,
    Severity.ERROR,
    "an enum value was deleted without reserving its number and name",
    "enum Status {\n  STATUS_UNSPECIFIED = 0;\n  STATUS_OLD = 1;\n}",
    "enum Status {\n  STATUS_UNSPECIFIED = 0;\n}",
)
def enum_value_deleted(change: Comparison) -> Iterator[Hit]:
    """Find deleted, unreserved enum numbers."""
    for old, new in _pairs(change.before_types.enums, change.after_types.enums):
        now = _enum(new)
        numbers = {v.number for v in now.value}
        for v in _enum(old).value:
            if v.number in numbers or _enum_reserved(now, v.number, v.name):
                continue
            yield Hit(
                change.locate(new),
                f"{new.full_name}: value {v.name} = {v.number} was deleted; add `reserved {v.number};` and "
                f'`reserved "{v.name}";`',
            )


def _gone(before: TypeIndex, after: TypeIndex, kind: str) -> Iterator[tuple[Declared, Declared | None]]:
    """Yield (baseline type, the same-named type elsewhere now or None) for types whose full name disappeared."""
    old_types = before.messages if kind == "message" else before.enums
    new_types = after.messages if kind == "message" else after.enums
    by_short: dict[str, list[Declared]] = {}
    for d in new_types.values():
        by_short.setdefault(d.short_name, []).append(d)
    for name, old in old_types.items():
        if name in new_types:
            continue
        # A type whose enclosing message is gone is reported with its parent only.
        parent = name.rsplit(".", 1)[0]
        if parent in before.messages and parent not in after.messages:
            continue
        candidates = [d for d in by_short.get(old.short_name, []) if d.full_name not in old_types]
        yield old, candidates[0] if candidates else None


@rule(
    "WIRE_MESSAGE_MOVED",
    Category.WIRE,
    Severity.ERROR,
    "a message changed its full name (package or enclosing message): type URLs, Any and imports break",
    "package acme.a.v1;\nmessage M {\n  string id = 1;\n}",
    "package acme.b.v1;\nmessage M {\n  string id = 1;\n}",
)
def message_moved(change: Comparison) -> Iterator[Hit]:
    """Find messages that now live under another full name."""
    for old, new in _gone(change.before_types, change.after_types, "message"):
        if new is not None:
            yield Hit(
                change.locate(new),
                f"{old.full_name}: moved to {new.full_name}; keep the old name (type URLs and imports use it)",
            )


@rule(
    "WIRE_MESSAGE_DELETED",
    Category.WIRE,
    Severity.ERROR,
    "a message was deleted: its readers and writers no longer compile",
    "message M {\n  string id = 1;\n}\nmessage Old {\n  string id = 1;\n}",
    "message M {\n  string id = 1;\n}",
)
def message_deleted(change: Comparison) -> Iterator[Hit]:
    """Find messages that are gone."""
    for old, new in _gone(change.before_types, change.after_types, "message"):
        if new is None:
            yield Hit(_where_gone(change, old), f"{old.full_name}: message deleted; deprecate it instead")


@rule(
    "WIRE_ENUM_DELETED",
    Category.WIRE,
    Severity.ERROR,
    "an enum was deleted or changed its full name",
    "message M {\n  string id = 1;\n}\nenum Color {\n  COLOR_UNSPECIFIED = 0;\n}",
    "message M {\n  string id = 1;\n}",
)
def enum_deleted(change: Comparison) -> Iterator[Hit]:
    """Find enums that are gone or renamed."""
    for old, new in _gone(change.before_types, change.after_types, "enum"):
        hint = f"moved to {new.full_name}" if new is not None else "deleted"
        where = change.locate(new) if new is not None else _where_gone(change, old)
        yield Hit(where, f"{old.full_name}: enum {hint}; keep it under its old name")


@rule(
    "WIRE_FILE_MOVED",
    Category.WIRE,
    Severity.ERROR,
    "a .proto file was moved or deleted: its imports and generated module paths break",
    "// file acme/a/v1/a.proto\nmessage M {\n  string id = 1;\n}",
    "// file acme/a/v1/renamed.proto\nmessage M {\n  string id = 1;\n}",
)
def file_moved(change: Comparison) -> Iterator[Hit]:
    """Find files that are no longer there, and say where their types went."""
    now_files = set(change.after.targets)
    for name in change.before.targets:
        if name in now_files:
            continue
        declared = [
            d
            for d in change.before_types.messages.values()
            if d.file == name and d.path[:1] == (loc.MESSAGE_TYPE,)
        ]
        homes = sorted(
            {
                change.after_types.messages[d.full_name].file
                for d in declared
                if d.full_name in change.after_types.messages
            }
        )
        where = f"moved to {', '.join(homes)}" if homes else "deleted"
        yield Hit(Location(name), f"{name}: file {where}; imports of {name} and its generated modules break")
