"""messages=betterproto: betterproto's dataclass modules, written by this plugin beside its own files.

betterproto 2.0.0b7's generator writes one module per proto package (`acme/v1/__init__.py`), for every package
of the request, dependencies included (`prism/__init__.py`, which would hide the runtime's `prism.options_pb2`),
plus an `__init__.py` at the root. Run as a second plugin into the same tree, it collides with the package
markers Prism writes. So Prism runs it in-process on the same request and keeps only the modules of the
packages it was asked to generate: one plugin, one tree, the same from `prism generate`, protoc and buf.

What betterproto cannot represent is refused here, with the element's location, before anything is written.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

from protoc_gen_prism import locations
from protoc_gen_prism.diagnostics import Diagnostic, Location, SchemaError
from protoc_gen_prism.emitters import GeneratedFile
from protoc_gen_prism.emitters.package_markers import INIT
from protoc_gen_prism.locations import SourceIndex
from protoc_gen_prism.settings import SettingsError

BETTERPROTO_VERSION = "2.0.0b7"
"""The betterproto release this plugin runs and the runtime builds dataclasses for (both extras pin it)."""
INSTALL = "pip install 'protoc-gen-prism[betterproto]'"

_FDP = descriptor_pb2.FieldDescriptorProto


class BetterprotoMissing(SettingsError):
    """betterproto's generator is not installed (or is another release than the one Prism runs)."""


def _betterproto() -> Any:
    try:
        import betterproto
    except ModuleNotFoundError:
        raise BetterprotoMissing(
            f"messages=betterproto needs betterproto {BETTERPROTO_VERSION} and its generator; {INSTALL}"
        ) from None
    version = getattr(betterproto, "__version__", "")
    if version and version != BETTERPROTO_VERSION:
        raise BetterprotoMissing(
            f"messages=betterproto runs betterproto {BETTERPROTO_VERSION}, and {version} is installed; {INSTALL}"
        )
    return betterproto


def betterproto_class_name(python_name: str) -> str:
    """Return betterproto's class name of a message ("Outer.Inner" in *_pb2 is `OuterInner`)."""
    _betterproto()
    from betterproto.compile.naming import pythonize_class_name

    return str(pythonize_class_name(python_name.replace(".", "_")))


def check(request: plugin_pb2.CodeGeneratorRequest) -> None:
    """Raise SchemaError with every problem `problems` finds; a missing betterproto raises BetterprotoMissing."""
    _betterproto()
    found = problems(request)
    if found:
        raise SchemaError(found)


def problems(request: plugin_pb2.CodeGeneratorRequest) -> list[Diagnostic]:
    """Return what betterproto cannot generate faithfully in the files to generate, each where it is written."""
    found: list[Diagnostic] = []
    by_name = {f.name: f for f in request.proto_file}
    for name in request.file_to_generate:
        file = by_name[name]
        index = SourceIndex(file)
        if file.syntax == "editions":
            found.append(
                Diagnostic(
                    index.locate((locations.SYNTAX,)),
                    name,
                    f"betterproto {BETTERPROTO_VERSION} does not read editions files; use messages=protobuf, "
                    'or syntax = "proto3"',
                )
            )
            continue
        if not file.package:
            found.append(
                Diagnostic(
                    Location(name),
                    name,
                    "messages=betterproto needs a package statement: betterproto writes one module per package",
                )
            )
        for path, full_name, field in _fields(file):
            where = index.locate(path)
            element = f"{full_name}.{field.name}"
            if field.type == _FDP.TYPE_GROUP:
                found.append(
                    Diagnostic(
                        where,
                        element,
                        f"betterproto {BETTERPROTO_VERSION} has no proto2 groups; make it a message field "
                        "(the same data, a different wire format), or use messages=protobuf",
                    )
                )
            elif field.HasField("default_value"):
                found.append(
                    Diagnostic(
                        where,
                        element,
                        f"betterproto {BETTERPROTO_VERSION} ignores proto2 default values, so the two styles "
                        "would read this field differently; remove [default = ...], or use messages=protobuf",
                    )
                )
    return found


def _fields(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[locations.Path, str, descriptor_pb2.FieldDescriptorProto]]:
    """Yield every field of every message of a file (nested ones too), with its path and message's name."""

    def walk(
        messages: Sequence[descriptor_pb2.DescriptorProto], path: locations.Path, scope: str
    ) -> Iterator[tuple[locations.Path, str, descriptor_pb2.FieldDescriptorProto]]:
        for i, message in enumerate(messages):
            full_name = f"{scope}.{message.name}" if scope else message.name
            here = (*path, i)
            for j, field in enumerate(message.field):
                yield (*here, locations.FIELD, j), full_name, field
            yield from walk(message.nested_type, (*here, locations.NESTED_TYPE), full_name)

    return walk(file.message_type, (locations.MESSAGE_TYPE,), file.package)


def generate(request: plugin_pb2.CodeGeneratorRequest) -> list[GeneratedFile]:
    """Return betterproto's modules of the packages of the files to generate (and no other of its files)."""
    _betterproto()
    from betterproto.lib.google.protobuf.compiler import CodeGeneratorRequest
    from betterproto.plugin.models import monkey_patch_oneof_index
    from betterproto.plugin.parser import generate_code

    monkey_patch_oneof_index()  # type: ignore[no-untyped-call] # what betterproto's own plugin does first (proto2/proto3 oneof_index)
    theirs = CodeGeneratorRequest().parse(request.SerializeToString())
    with contextlib.redirect_stderr(io.StringIO()):  # its "Writing ..." lines
        response = generate_code(theirs)
    by_name = {f.name: f for f in request.proto_file}
    wanted = {_module_path(by_name[name].package) for name in request.file_to_generate}
    return [GeneratedFile(f.name, f.content) for f in response.file if f.name in wanted]


def _module_path(package: str) -> str:
    return "/".join([*package.split("."), "__init__.py"])


def merged(prism: list[GeneratedFile], betterproto: list[GeneratedFile]) -> list[GeneratedFile]:
    """Return Prism's files with betterproto's modules in place of the package markers at the same paths.

    A package that holds no .proto file of its own (its files live under other paths) gets its markers here,
    and so do its parents, so the dataclass modules are regular, typed packages like the rest of the tree.
    """
    files = {f.name: f for f in prism}
    for module in betterproto:
        files[module.name] = module
        parts = module.name.split("/")[:-1]
        for end in range(1, len(parts) + 1):
            folder = "/".join(parts[:end])
            files.setdefault(f"{folder}/__init__.py", GeneratedFile(f"{folder}/__init__.py", INIT))
            files.setdefault(f"{folder}/py.typed", GeneratedFile(f"{folder}/py.typed", ""))
    return sorted(files.values(), key=lambda f: f.name)
