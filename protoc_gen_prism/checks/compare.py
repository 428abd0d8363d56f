"""The two schemas a breaking check compares: images for wire rules, models for the others, matched up once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property

from google.protobuf import descriptor_pb2

from protoc_gen_prism import locations as loc
from protoc_gen_prism.diagnostics import Location
from protoc_gen_prism.images import Image
from protoc_gen_prism.model import Entity, Field, FieldOptions, Schema, ValueType

ENUM_TYPE = descriptor_pb2.FileDescriptorProto.ENUM_TYPE_FIELD_NUMBER
NESTED_ENUM = descriptor_pb2.DescriptorProto.ENUM_TYPE_FIELD_NUMBER
_NO_OPTIONS = FieldOptions()


@dataclass(frozen=True)
class Declared:
    """A message or enum as declared: its file, descriptor and source path."""

    full_name: str
    file: str
    proto: descriptor_pb2.DescriptorProto | descriptor_pb2.EnumDescriptorProto
    path: loc.Path

    @property
    def short_name(self) -> str:
        """Return the name without package and enclosing messages."""
        return self.full_name.rsplit(".", 1)[-1]


class TypeIndex:
    """Every message and enum of an image's own files by full name, with source positions."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self.messages: dict[str, Declared] = {}
        self.enums: dict[str, Declared] = {}
        self._sources: dict[str, loc.SourceIndex] = {}
        for name in image.targets:
            file = image.by_name[name]
            scope = f"{file.package}." if file.package else ""
            for i, enum in enumerate(file.enum_type):
                self.enums[scope + enum.name] = Declared(scope + enum.name, name, enum, (ENUM_TYPE, i))
            self._walk(name, file.message_type, (loc.MESSAGE_TYPE,), scope)

    def _walk(
        self, file: str, protos: Iterable[descriptor_pb2.DescriptorProto], path: loc.Path, scope: str
    ) -> None:
        for i, proto in enumerate(protos):
            here = (*path, i)
            full = scope + proto.name
            self.messages[full] = Declared(full, file, proto, here)
            for j, enum in enumerate(proto.enum_type):
                self.enums[f"{full}.{enum.name}"] = Declared(
                    f"{full}.{enum.name}", file, enum, (*here, NESTED_ENUM, j)
                )
            self._walk(file, proto.nested_type, (*here, loc.NESTED_TYPE), f"{full}.")

    def locate(self, declared: Declared, *suffix: int) -> Location:
        """Return where `declared` (or an element under it) is written."""
        source = self._sources.get(declared.file)
        if source is None:
            source = self._sources[declared.file] = loc.SourceIndex(self.image.by_name[declared.file])
        return source.locate((*declared.path, *suffix), declared.path)


@dataclass
class Comparison:
    """A baseline and the current schema; a model is None when that side does not build."""

    before: Image
    after: Image
    before_schema: Schema | None
    after_schema: Schema | None

    @cached_property
    def before_types(self) -> TypeIndex:
        """Return the baseline's types."""
        return TypeIndex(self.before)

    @cached_property
    def after_types(self) -> TypeIndex:
        """Return the current types."""
        return TypeIndex(self.after)

    @cached_property
    def _model_locations(self) -> dict[tuple[str, int], Location]:
        # The model already located every entity, value type and their fields: reuse that, and read
        # SourceCodeInfo again only for messages the model does not hold.
        found: dict[tuple[str, int], Location] = {}
        for file in self.after_schema.files if self.after_schema is not None else ():
            owners: list[Entity | ValueType] = [*file.entities, *file.value_types]
            for owner in owners:
                found[owner.full_name, 0] = owner.location
                found.update(((owner.full_name, f.number), f.location) for f in owner.fields)
        return found

    def locate(self, declared: Declared, field_index: int | None = None) -> Location:
        """Return where a current message (or its field at `field_index`) is written."""
        message = declared.proto
        number = 0
        if field_index is not None:
            assert isinstance(message, descriptor_pb2.DescriptorProto)
            number = message.field[field_index].number
        known = self._model_locations.get((declared.full_name, number))
        if known is not None:
            return known
        if field_index is None:
            return self.after_types.locate(declared)
        return self.after_types.locate(declared, loc.FIELD, field_index)

    @cached_property
    def entity_pairs(self) -> list[tuple[Entity, Entity]]:
        """Return (baseline, current) entities that share a table; see `pair_entities`."""
        if self.before_schema is None or self.after_schema is None:
            return []
        return pair_entities(self.before_schema, self.after_schema)

    def field_pairs(self) -> Iterator[tuple[str, Field, Field]]:
        """Yield (current owner, baseline field, current field) by field number: a rename is one field.

        Owners are entities and the value types stored inside them (where pii often lives).
        """
        owners: list[tuple[str, tuple[Field, ...], tuple[Field, ...]]] = [
            (new.full_name, old.fields, new.fields) for old, new in self.entity_pairs
        ]
        if self.before_schema is not None and self.after_schema is not None:
            values = {v.full_name: v for f in self.after_schema.files for v in f.value_types}
            for old_file in self.before_schema.files:
                for old_value in old_file.value_types:
                    new_value = values.get(old_value.full_name)
                    if new_value is not None:
                        owners.append((new_value.full_name, old_value.fields, new_value.fields))
                    elif (declared := self.after_types.messages.get(old_value.full_name)) is not None:
                        # The message is still there but no field carries a prism option any more.
                        where = self.after_types.locate(declared)
                        bare = tuple(
                            replace(f, options=_NO_OPTIONS, location=where) for f in old_value.fields
                        )
                        owners.append((old_value.full_name, old_value.fields, bare))
        for owner, old_fields, new_fields in owners:
            by_number = {f.number: f for f in new_fields}
            for old in old_fields:
                new = by_number.get(old.number)
                if new is not None:
                    yield owner, old, new


def pair_entities(before: Schema, after: Schema) -> list[tuple[Entity, Entity]]:
    """Return (baseline, current) entities: the same message, else the same namespace, else a moved message."""
    by_name = {e.full_name: e for e in after.entities}
    by_namespace = {e.namespace: e for e in after.entities}
    before_names = {e.full_name for e in before.entities}
    # A message moved to another package keeps its short name; pair it when that is unambiguous.
    moved: dict[str, list[Entity]] = {}
    for e in after.entities:
        if e.full_name not in before_names:
            moved.setdefault(e.name, []).append(e)
    pairs = []
    for old in before.entities:
        new = by_name.get(old.full_name) or by_namespace.get(old.namespace)
        if new is None and len(moved.get(old.name, [])) == 1:
            new = moved[old.name][0]
        if new is not None:
            pairs.append((old, new))
    return pairs
