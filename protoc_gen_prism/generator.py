"""The compiler pipeline as one pure function: CodeGeneratorRequest -> CodeGeneratorResponse.

The stages, each a function of the previous one's result:

    request -> model (model_builder.build_model: read the options)
            -> validate (validate.check_schema: the rules; SchemaError with every problem)
            -> plan (planner.plan_schema, once; validate.check_plans: the rules on the plans)
            -> emitters (each a pure function of schema, plans and settings)
            -> response
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.compiler import plugin_pb2

from protoc_gen_prism import betterproto_messages
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
from protoc_gen_prism.model_builder import build_model, validated
from protoc_gen_prism.planner import Plans, plan_schema
from protoc_gen_prism.request_check import MAX_EDITION, MIN_EDITION
from protoc_gen_prism.settings import MessageStyle, Profile, Settings, SettingsError, parse_parameter
from protoc_gen_prism.validate import check_plans

Emitter = Callable[[Schema, Plans, Settings], list[GeneratedFile]]

# Every emitter is a pure function of the model, the plans and the settings; order does not matter.
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
    """Run model -> validate -> plan -> emitters and return every generated file, sorted by name."""
    model = build_model(request.proto_file, request.file_to_generate, request.source_file_descriptors)
    schema = validated(model)
    plans = plan(schema, settings.profile)
    if settings.messages is not MessageStyle.BETTERPROTO:
        return emit(schema, plans, settings)
    betterproto_messages.check(request)
    return betterproto_messages.merged(emit(schema, plans, settings), betterproto_messages.generate(request))


def emit(schema: Schema, plans: Plans, settings: Settings) -> list[GeneratedFile]:
    """The emit stage: every emitter on the same schema and plans; the files sorted by name."""
    files = [f for emitter in EMITTERS for f in emitter(schema, plans, settings)]
    return sorted(files, key=lambda f: f.name)


def plan(schema: Schema, profile: Profile) -> Plans:
    """The plan stage: plan every entity once, then check the plans; raise SchemaError with every problem."""
    plans = plan_schema(schema, profile)
    problems = check_plans(schema, plans)
    if problems:
        raise SchemaError(problems)
    return plans
