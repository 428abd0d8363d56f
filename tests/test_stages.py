"""The compiler's stages and single sources: validation apart from building, planning once, the generated
spec literal written from the dataclass, one naming rule, and comments and enum types carried into clients."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path

import pytest
from conftest import run_protoc, write_proto
from test_typing import mypy

from prism_runtime.stream_plans import StreamSettings, TopicSettings, planned_streams
from protoc_gen_prism.diagnostics import SchemaError
from protoc_gen_prism.emitters.plan_file import PLAN_FILE
from protoc_gen_prism.generator import plan
from protoc_gen_prism.images import compile_image
from protoc_gen_prism.model_builder import build_model, validated
from protoc_gen_prism.plan_source import load_plan
from protoc_gen_prism.planner import plan_schema
from protoc_gen_prism.settings import Profile
from protoc_gen_prism.validate import check_plans, check_schema

HEADER = """syntax = "proto3";
package stagestest.stages.v1;
import "prism/options.proto";
"""

COLORS = """syntax = "proto3";
package stagestest.colors.v1;

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
}
"""

GRAPH = (
    HEADER
    + """import "stagestest/colors/v1/colors.proto";

// A place on the map.
message Place {
  option (prism.access_pattern) = "graph_node";
  string place_id = 1 [(prism.key) = true];
  // The country the place is in,
  // as an ISO code.
  string country = 2;
  int32 floors = 3; // Storeys above ground.
  stagestest.colors.v1.Color color = 4;
  Kind kind = 5;
  // Which way the door opens.
  bool class = 6;

  enum Kind {
    KIND_UNSPECIFIED = 0;
    KIND_TOWN = 1;
  }
}

message HTTPRequest {
  option (prism.access_pattern) = "key_value";
  string request_id = 1 [(prism.key) = true];
  // Where the reply goes.
  string reply_to = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true, (prism.searchable) = true];
}
"""
)


@pytest.fixture(scope="module")
def stages_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proto")
    write_proto(root, "stagestest/colors/v1/colors.proto", COLORS)
    write_proto(root, "stagestest/stages/v1/stages.proto", GRAPH)
    out = tmp_path_factory.mktemp("gen")
    run = run_protoc(
        root, ["stagestest/colors/v1/colors.proto", "stagestest/stages/v1/stages.proto"], out, python=True
    )
    assert run.returncode == 0, run.stderr
    return out


def client(out: Path) -> str:
    return (out / "stagestest/stages/v1/stages_prism.py").read_text()


def test_leading_and_trailing_field_comments_reach_the_filter_and_the_finder(stages_module: Path) -> None:
    text = client(stages_module)
    # The keyword-named field makes the functional TypedDict form: comments go above each key.
    assert '        # The country the place is in, as an ISO code.\n        "country": str,\n' in text
    assert '        # Storeys above ground.\n        "floors": int,\n' in text
    assert '        # Which way the door opens.\n        "class": bool,\n' in text
    assert "        reply_to: Where the reply goes.\n" in text


def test_enum_filter_fields_are_typed_by_the_enum_own_file_included(stages_module: Path) -> None:
    text = client(stages_module)
    assert "import stagestest.colors.v1.colors_pb2\n" in text
    assert '"color": stagestest.colors.v1.colors_pb2.Color.ValueType,' in text
    assert '"kind": stages_pb2.Place.Kind.ValueType,' in text
    program = stages_module / "enum_filter.py"
    program.write_text(
        "from stagestest.colors.v1 import colors_pb2\n"
        "from stagestest.stages.v1 import stages_pb2, stages_prism\n\n"
        'right: stages_prism.PlaceFilter = {"color": colors_pb2.COLOR_RED, "kind": stages_pb2.Place.KIND_TOWN}\n'
        'wrong: stages_prism.PlaceFilter = {"kind": 1}\n'
    )
    done = mypy(program, cwd=stages_module)
    program.unlink()
    assert done.returncode == 1, done.stdout
    errors = [line for line in done.stdout.splitlines() if ": error: " in line]
    assert len(errors) == 1, done.stdout
    assert "enum_filter.py:5:" in errors[0] and '"kind"' in errors[0] and "ValueType" in errors[0]


def test_spec_constant_and_namespace_split_words_alike(stages_module: Path) -> None:
    text = client(stages_module)
    assert "_HTTP_REQUEST_SPEC = EntitySpec(" in text
    assert 'namespace="stagestest_stages_v1_http_request",' in text
    assert "_HTTPREQUEST_SPEC" not in text


def test_the_generated_spec_literal_is_the_model_spec(stages_module: Path, tmp_path: Path) -> None:
    root = tmp_path / "proto"
    write_proto(root, "stagestest/colors/v1/colors.proto", COLORS)
    write_proto(root, "stagestest/stages/v1/stages.proto", GRAPH)
    image = compile_image(root)
    plans = image.plans()
    sys.path.insert(0, str(stages_module))
    try:
        importlib.invalidate_caches()
        module = importlib.import_module("stagestest.stages.v1.stages_prism")
    finally:
        sys.path.remove(str(stages_module))
    for entity in image.schema().entities:
        generated = getattr(
            module, "_" + entity.namespace.removeprefix("stagestest_stages_v1_").upper() + "_SPEC"
        )
        expected = dataclasses.replace(entity.spec, planned_backend=str(plans[entity.full_name].backend))
        assert generated == expected
        assert generated.ddl["sqlite"]  # the DDL the runtime runs on SQLite rides along
    # Defaults are left out: a KeyValue spec names no event_time, retention or edge fields.
    text = client(stages_module)
    literal = text[text.index("_HTTP_REQUEST_SPEC = EntitySpec(") :].split("\n)\n", 1)[0]
    for absent in (
        "sort_key=",
        "event_time=",
        "retention_days=",
        "edge_source=",
        "bidirectional=",
        "subject=",
    ):
        assert absent not in literal


BROKEN = (
    HEADER
    + """
message Orphan {
  string id = 1 [(prism.key) = true];
}

message Twice {
  option (prism.access_pattern) = "key_value";
  string a = 1 [(prism.key) = true];
  repeated string b = 2 [(prism.key) = true];
  string c = 3 [(prism.pii) = "emial"];
}
"""
)


def test_validation_is_its_own_stage_and_collects_every_problem_with_its_trail(tmp_path: Path) -> None:
    root = tmp_path / "proto"
    write_proto(root, "stagestest/stages/v1/broken.proto", BROKEN)
    image = compile_image(root)
    model = build_model(image.files, image.targets)
    # Reading reports what it cannot read (the pii kind); the rules are validation's, reported all at once.
    assert [d.element for d in model.problems] == ["stagestest.stages.v1.Twice.c"]
    found = {(d.element, d.message.split(";")[0]) for d in check_schema(model)}
    assert found == {
        (
            "stagestest.stages.v1.Orphan.id",
            "(prism.key) needs (prism.access_pattern) on stagestest.stages.v1.Orphan",
        ),
        (
            "stagestest.stages.v1.Twice.b",
            "a key must be a singular string, bytes or integer field, not a repeated string field",
        ),
        (
            "stagestest.stages.v1.Twice.b",
            "more than one (prism.key) field: 'a' is already the key",
        ),
    }


STREAMS = (
    HEADER
    + """
message BigA {
  option (prism.access_pattern) = "append_heavy";
  option (prism.namespace) = "big_";
  option (prism.estimated_write_rps) = "5000";
  string id = 1 [(prism.key) = true];
  int64 at = 2 [(prism.event_time) = true];
  string email = 3 [(prism.pii) = "email"];
}

message BigB {
  option (prism.access_pattern) = "append_heavy";
  option (prism.namespace) = "_big";
  option (prism.estimated_write_rps) = "5000";
  string id = 1 [(prism.key) = true];
  int64 at = 2 [(prism.event_time) = true];
}

message SmallA {
  option (prism.access_pattern) = "append_heavy";
  option (prism.namespace) = "small_";
  string id = 1 [(prism.key) = true];
  int64 at = 2 [(prism.event_time) = true];
}

message SmallB {
  option (prism.access_pattern) = "append_heavy";
  option (prism.namespace) = "_small";
  string id = 1 [(prism.key) = true];
  int64 at = 2 [(prism.event_time) = true];
}
"""
)


def test_the_plan_stage_plans_once_and_reports_every_plan_problem(tmp_path: Path) -> None:
    root = tmp_path / "proto"
    write_proto(root, "stagestest/stages/v1/streams.proto", STREAMS)
    image = compile_image(root)
    schema = validated(build_model(image.files, image.targets))  # the schema is valid; its plans are not
    plans = plan_schema(schema, Profile.PRODUCTION)
    assert [p.backend.value for p in plans] == ["kafka", "kafka", "nats", "nats"]
    problems = check_plans(schema, plans)
    assert sorted(d.element for d in problems) == [
        "stagestest.stages.v1.BigA.email",
        "stagestest.stages.v1.BigB",
        "stagestest.stages.v1.SmallB",
    ]
    # Both manifest kinds' clashes come out of one stage, not out of whichever emitter ran first.
    assert {
        d.message.split(" manifest")[0].split("the ")[-1] for d in problems if "manifest" in d.message
    } == {
        "KafkaTopic",
        "NATS Stream",
    }
    with pytest.raises(SchemaError) as raised:
        plan(schema, Profile.PRODUCTION)
    assert len(raised.value.diagnostics) == 3


def test_a_proto_directory_is_planned_in_process_as_the_plugin_plans_it(tmp_path: Path) -> None:
    root = tmp_path / "proto"
    write_proto(
        root,
        "stagestest/stages/v1/ok.proto",
        STREAMS.replace('"_big"', '"big_b"')
        .replace('"_small"', '"small_b"')
        .replace(
            'string email = 3 [(prism.pii) = "email"];',
            'string email = 3 [(prism.pii) = "email", (prism.encrypt_at_rest) = true];',
        ),
    )
    run = run_protoc(root, ["stagestest/stages/v1/ok.proto"], tmp_path / "gen", parameter="profile=local")
    assert run.returncode == 0, run.stderr
    written = json.loads((tmp_path / "gen" / PLAN_FILE).read_text())
    loaded = load_plan(root, profile="local")
    assert loaded.document == written  # the same document, made in-process without the plugin or the file
    # The typed topics and streams provisioning takes are the planner's own, and read back from the file alike.
    image = compile_image(root)
    plans = plan_schema(validated(build_model(image.files, image.targets)), Profile.LOCAL)
    assert list(loaded.streams) == plans.streams() == planned_streams(written)
    assert [(s.backend, s.namespace) for s in loaded.streams] == [
        ("kafka", "big_"),
        ("kafka", "big_b"),
        ("nats", "small_"),
        ("nats", "small_b"),
    ]
    assert isinstance(loaded.streams[0].settings, TopicSettings)
    assert isinstance(loaded.streams[2].settings, StreamSettings)
    assert load_plan(tmp_path / "gen").streams == loaded.streams


def test_two_messages_the_client_would_name_alike_are_a_located_error(tmp_path: Path) -> None:
    root = tmp_path / "proto"
    text = HEADER + "".join(
        f"""
message {name} {{
  option (prism.access_pattern) = "key_value";
  option (prism.namespace) = "{name.lower()}_{n}";
  string id = 1 [(prism.key) = true];
}}
"""
        for n, name in enumerate(("HTTPRequest", "HttpRequest"))
    )
    write_proto(root, "stagestest/stages/v1/names.proto", text)
    run = run_protoc(root, ["stagestest/stages/v1/names.proto"], tmp_path / "gen")
    assert run.returncode == 1
    assert run.errors == (
        "--prism_out: stagestest/stages/v1/names.proto:11:1: stagestest.stages.v1.HttpRequest: the generated client "
        "names this message's spec '_HTTP_REQUEST_SPEC', as it names stagestest.stages.v1.HTTPRequest's; "
        "allowed: message names that differ in more than letter case and '_'"
    )


def test_a_message_named_as_another_ones_blocking_twin_is_a_located_error(tmp_path: Path) -> None:
    root = tmp_path / "proto"
    text = HEADER + "".join(
        f"""
message {name} {{
  option (prism.access_pattern) = "key_value";
  option (prism.namespace) = "twin_{n}";
  string id = 1 [(prism.key) = true];
}}
"""
        for n, name in enumerate(("Note", "NoteSync"))
    )
    write_proto(root, "stagestest/stages/v1/twins.proto", text)
    run = run_protoc(root, ["stagestest/stages/v1/twins.proto"], tmp_path / "gen")
    assert run.returncode == 1
    assert run.errors == (
        "--prism_out: stagestest/stages/v1/twins.proto:11:1: stagestest.stages.v1.NoteSync: the generated client "
        "would name this message's class as it names stagestest.stages.v1.Note's blocking twin (NoteSync...); "
        "allowed: a name that is not another key_value message's name followed by 'Sync'"
    )
