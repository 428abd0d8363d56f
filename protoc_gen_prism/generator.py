"""The compiler pipeline as one pure function: CodeGeneratorRequest -> CodeGeneratorResponse."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.compiler import plugin_pb2

from protoc_gen_prism.diagnostics import SchemaError
from protoc_gen_prism.emitters import (
    GeneratedFile,
    kafka_topics,
    nats_streams,
    package_markers,
    plan_file,
    python_client,
    sql_ddl,
)
from protoc_gen_prism.model import Schema
from protoc_gen_prism.model_builder import build_schema
from protoc_gen_prism.request_check import MAX_EDITION, MIN_EDITION
from protoc_gen_prism.settings import Settings, SettingsError, parse_parameter

Emitter = Callable[[Schema, Settings], list[GeneratedFile]]

# Every emitter is a pure function of the model and the settings; order does not matter.
EMITTERS: list[Emitter] = [
    python_client.emit,
    sql_ddl.emit,
    plan_file.emit,
    kafka_topics.emit,
    nats_streams.emit,
    package_markers.emit,
]

# Proto2, proto3 and editions up to 2024: everything the model reads goes through resolved
# descriptors (has_presence, is_repeated), so features need no special handling here.
MINIMUM_EDITION = MIN_EDITION
MAXIMUM_EDITION = MAX_EDITION


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Compile a request; on any error the response carries it and no files."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=(
            plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
            | plugin_pb2.CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
        ),
        minimum_edition=MINIMUM_EDITION,
        maximum_edition=MAXIMUM_EDITION,
    )
    try:
        files = compile_files(request, parse_parameter(request.parameter))
    except (SchemaError, SettingsError) as error:
        response.error = str(error)
        return response
    for f in files:
        response.file.add(name=f.name, content=f.content)
    return response


def compile_files(request: plugin_pb2.CodeGeneratorRequest, settings: Settings) -> list[GeneratedFile]:
    """Run model -> emitters and return every generated file, sorted by name."""
    schema = build_schema(request.proto_file, request.file_to_generate, request.source_file_descriptors)
    files = [f for emit in EMITTERS for f in emit(schema, settings)]
    return sorted(files, key=lambda f: f.name)
