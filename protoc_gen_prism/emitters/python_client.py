"""Emit `<file>_prism.py`: typed async stores for every entity of a .proto file."""

from __future__ import annotations

from dataclasses import dataclass

from prism_runtime.schema import Abstraction
from protoc_gen_prism import __version__
from protoc_gen_prism.emitters import GeneratedFile
from protoc_gen_prism.model import Entity, Field, ProtoFile, Schema
from protoc_gen_prism.settings import Settings
from protoc_gen_prism.templating import render


@dataclass(frozen=True)
class _Store:
    """What the template needs to write one store class."""

    entity: Entity
    class_name: str
    base: str
    type_args: str
    spec_name: str
    docstring: str
    finders: list[Field]


def emit(schema: Schema, settings: Settings) -> list[GeneratedFile]:
    """Return one client module per file that has entities."""
    return [_module(f) for f in schema.files if f.entities]


def _module(file: ProtoFile) -> GeneratedFile:
    package, _, module = file.python_module.rpartition(".")
    pb2_import = f"from {package} import {module}" if package else f"import {module}"
    stores = [_store(e, module) for e in file.entities if e.abstraction is Abstraction.KEY_VALUE]
    content = render(
        "client.py.jinja",
        version=__version__,
        source=file.name,
        pb2_import=pb2_import,
        pb2_module=module,
        stores=stores,
        masked=[e.python_name for e in file.entities if any(f.options.mask_in_logs for f in e.fields)],
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
        class_name=class_name,
        base=base,
        type_args=type_args,
        spec_name="_" + _upper_snake(entity.python_name) + "_SPEC",
        docstring=f"{summary.rstrip('.')}.\n\n    Namespace ``{entity.namespace}``, {layout}.",
        finders=[f for f in entity.fields if f.options.searchable],
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
