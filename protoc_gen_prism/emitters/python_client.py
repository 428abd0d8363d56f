"""Emit `<file>_prism.py`: typed async stores for every entity of a .proto file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from prism_runtime.schema import Abstraction, EntitySpec
from protoc_gen_prism import __version__
from protoc_gen_prism.emitters import GeneratedFile
from protoc_gen_prism.model import Entity, ProtoFile, Schema
from protoc_gen_prism.planner import plan_schema
from protoc_gen_prism.settings import Settings
from protoc_gen_prism.templating import render


@dataclass(frozen=True)
class _Store:
    """What the template needs to write one store class."""

    entity: Entity
    spec: EntitySpec
    class_name: str
    base: str
    type_args: str
    spec_name: str
    docstring: str


def emit(schema: Schema, settings: Settings) -> list[GeneratedFile]:
    """Return one client module per file that has entities."""
    planned = {p.namespace: str(p.backend) for p in plan_schema(schema, settings.profile)}
    return [_module(f, planned) for f in schema.files if f.entities]


def _module(file: ProtoFile, planned: dict[str, str]) -> GeneratedFile:
    package, _, module = file.python_module.rpartition(".")
    pb2_import = f"from {package} import {module}" if package else f"import {module}"
    stores = [
        _series(e, module) if e.abstraction is Abstraction.TIME_SERIES else _store(e, module)
        for e in file.entities
        if e.abstraction in (Abstraction.KEY_VALUE, Abstraction.TIME_SERIES)
    ]
    stores = [
        dataclasses.replace(s, spec=dataclasses.replace(s.spec, planned_backend=planned[s.spec.namespace]))
        for s in stores
    ]
    content = render(
        "client.py.jinja",
        version=__version__,
        source=file.name,
        pb2_import=pb2_import,
        pb2_module=module,
        stores=stores,
    )
    return GeneratedFile(f"{file.output_stem}_prism.py", content)


def _store(entity: Entity, pb2: str) -> _Store:
    message = f"{pb2}.{entity.python_name}"
    key, sort_key = entity.key, entity.sort_key
    assert key is not None  # the model builder guarantees a key on every KeyValue entity
    class_name = entity.python_name.replace(".", "") + "Store"
    if sort_key is None:
        base, type_args = "KeyValueStore", f"{message}, {key.python_key_type}"
    else:
        base = "SortedKeyValueStore"
        type_args = f"{message}, {key.python_key_type}, {sort_key.python_key_type}"
    summary = _docstring_safe(entity.comment) or f"KeyValue store of {entity.full_name}."
    layout = f"keyed by {key.name}" + (f", sorted by {sort_key.name} within a key" if sort_key else "")
    return _Store(
        entity=entity,
        spec=entity.spec,
        class_name=class_name,
        base=base,
        type_args=type_args,
        spec_name="_" + _upper_snake(entity.python_name) + "_SPEC",
        docstring=f"{summary.rstrip('.')}.\n\n    Namespace ``{entity.namespace}``, {layout}.",
    )


def _series(entity: Entity, pb2: str) -> _Store:
    key, event_time = entity.key, entity.event_time
    assert key is not None and event_time is not None  # the model builder guarantees both on TimeSeries
    summary = _docstring_safe(entity.comment) or f"TimeSeries of {entity.full_name}."
    return _Store(
        entity=entity,
        spec=entity.spec,
        class_name=entity.python_name.replace(".", "") + "Series",
        base="TimeSeries",
        type_args=f"{pb2}.{entity.python_name}, {key.python_key_type}",
        spec_name="_" + _upper_snake(entity.python_name) + "_SPEC",
        docstring=(
            f"{summary.rstrip('.')}.\n\n    Namespace ``{entity.namespace}``, a series per {key.name}, "
            f"ordered by {event_time.name}."
        ),
    )


def _upper_snake(python_name: str) -> str:
    out = []
    for part in python_name.split("."):
        chars = [
            ("_" + c if c.isupper() and i and not part[i - 1].isupper() else c) for i, c in enumerate(part)
        ]
        out.append("".join(chars))
    return "_".join(out).upper()


def _docstring_safe(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
