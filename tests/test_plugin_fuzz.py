"""Malformed CodeGeneratorRequests: every answer is valid files or one clean located line per error.

A request captured from protoc on the examples is mutated a few hundred times with a fixed seed
(duplicate field numbers, unresolved type names, oneof indexes out of range, files missing from the
request, broken names, corrupt option bytes, ...) and answered in-process by `plugin.respond`, the
function the executable runs. No answer may be a traceback or an "internal error".
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest
from conftest import EXAMPLES, write_proto
from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from plugin_requests import answer, capture_request, problems_with

SEED = 20261206
MUTATIONS = 400
EXAMPLE_FILES = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.proto"))

FileProto = descriptor_pb2.FileDescriptorProto
Message = descriptor_pb2.DescriptorProto


@pytest.fixture(scope="module")
def examples_request(tmp_path_factory: pytest.TempPathFactory) -> plugin_pb2.CodeGeneratorRequest:
    return capture_request(EXAMPLES, EXAMPLE_FILES, tmp_path_factory.mktemp("request"))


def _messages(file: FileProto) -> list[Message]:
    found: list[Message] = []

    def walk(messages: list[Message]) -> None:
        for m in messages:
            found.append(m)
            walk(list(m.nested_type))

    walk(list(file.message_type))
    return found


def _corrupt(
    rng: random.Random, options: descriptor_pb2.MessageOptions | descriptor_pb2.FieldOptions
) -> None:
    data = bytearray(options.SerializeToString())
    if not data:
        return
    data[rng.randrange(len(data))] = rng.randrange(256)
    try:
        options.ParseFromString(bytes(data))
    except Exception:  # bytes even descriptor.proto's options cannot hold: leave them as they were
        return


def _field_mutation(rng: random.Random, message: Message) -> None:
    if not message.field:
        return
    field = rng.choice(message.field)
    what = rng.randrange(9)
    if what == 0 and len(message.field) > 1:
        field.number = rng.choice([f.number for f in message.field if f is not field])
    elif what == 1:
        field.type = field.TYPE_MESSAGE
        field.type_name = rng.choice([".nope.Missing", "Missing", ".acme.Nope", ""])
    elif what == 2:
        field.oneof_index = rng.choice([0, 1, 7, 99, -1])
    elif what == 3:
        field.name = rng.choice(["", "a-b", "x" * 80, "1st", message.field[0].name, "ok_name"])
    elif what == 4:
        field.number = rng.choice([0, -1, 19_000, 536_870_912, 2**31 - 1])
    elif what == 5:
        field.label = descriptor_pb2.FieldDescriptorProto.Label.Value(
            rng.choice(["LABEL_OPTIONAL", "LABEL_REQUIRED", "LABEL_REPEATED"])
        )
        field.type = descriptor_pb2.FieldDescriptorProto.Type.Value(
            rng.choice(descriptor_pb2.FieldDescriptorProto.Type.keys())
        )
    elif what == 6:
        _corrupt(rng, field.options)
    elif what == 7:
        message.oneof_decl.add(name=rng.choice(["choice", ""]))
        field.oneof_index = len(message.oneof_decl) - 1
    else:
        field.ClearField("type")
        field.type_name = rng.choice(["", ".google.protobuf.Timestamp"])


def _shape_mutation(rng: random.Random, file: FileProto, messages: list[Message]) -> None:
    """Changes the pool itself refuses (or accepts): syntax, map entries, enums, name clashes, editions."""
    message = rng.choice(messages)
    what = rng.randrange(7)
    if what == 0:
        file.syntax = rng.choice(["proto2", "editions", "weird", ""])
    elif what == 1:
        message.options.map_entry = not message.options.map_entry
    elif what == 2 and message.field:
        message.nested_type.add(name=message.field[0].name)
    elif what == 3:
        enum = file.enum_type.add(name=rng.choice(["E", "", message.name]))
        enum.value.add(name=rng.choice(["A", ""]), number=rng.choice([0, 1]))
        enum.value.add(name="A", number=0)
    elif what == 4 and message.field:
        field = rng.choice(message.field)
        field.type = field.TYPE_ENUM
        field.type_name = rng.choice(
            [".google.protobuf.Timestamp", ".google.protobuf.FieldDescriptorProto.Type"]
        )
    elif what == 5:
        message.extension_range.add(start=rng.choice([1, 100]), end=rng.choice([2, 50, 1000]))
    elif message.field:
        rng.choice(message.field).proto3_optional ^= True
        file.edition = rng.choice([descriptor_pb2.EDITION_2023, descriptor_pb2.EDITION_MAX])


def _file_mutation(rng: random.Random, file: FileProto) -> None:
    messages = _messages(file)
    what = rng.randrange(7)
    if messages and what < 3:
        _field_mutation(rng, rng.choice(messages))
    elif messages and what == 3:
        message = rng.choice(messages)
        if rng.random() < 0.5:
            _corrupt(rng, message.options)
        else:
            message.name = rng.choice(["", "X", "a.b", message.name + "2", messages[0].name])
    elif messages and what == 6:
        _shape_mutation(rng, file, messages)
    elif what == 4:
        file.dependency.append(rng.choice(["nope.proto", file.name, "google/protobuf/empty.proto"]))
    else:
        file.package = rng.choice(["", "acme..v1", "acme.v1", "9acme"])


def mutate(rng: random.Random, request: plugin_pb2.CodeGeneratorRequest) -> None:
    """Apply one mutation; a file's change is mirrored in its source_file_descriptors copy 4 times in 5."""
    what = rng.randrange(10)
    if what == 0:
        request.file_to_generate.append(rng.choice(["nope.proto", "", "google/protobuf/any.proto"]))
    elif what == 1:
        del request.proto_file[rng.randrange(len(request.proto_file))]
    elif what == 2:
        files = list(request.proto_file)
        rng.shuffle(files)
        del request.proto_file[:]
        request.proto_file.extend(files)
    elif what == 3:
        request.parameter = rng.choice(["x", "profile=local", "=,,", "profile=nope", "sql_dialect=duckdb"])
    else:
        target = rng.choice(list(request.proto_file))
        sources = [f for f in request.source_file_descriptors if f.name == target.name]
        seed = rng.random()
        _file_mutation(random.Random(seed), target)
        if sources and rng.random() < 0.8:
            _file_mutation(random.Random(seed), sources[0])


def test_mutated_requests_get_files_or_clean_errors(
    examples_request: plugin_pb2.CodeGeneratorRequest,
) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    bad: list[str] = []
    for i in range(MUTATIONS):
        request = plugin_pb2.CodeGeneratorRequest()
        request.CopyFrom(examples_request)
        for _ in range(rng.randrange(1, 3)):
            mutate(rng, request)
        response = answer(request)
        outcomes["error" if response.error else "files"] += 1
        bad.extend(f"mutation {i}: {p}" for p in problems_with(response))
    assert not bad, "\n".join(bad[:10])
    # The mutations do reach the checks: most requests are refused, some still generate.
    assert outcomes["error"] > MUTATIONS // 2
    assert outcomes["files"] > 0


# -- the four kinds the fuzzing first found, each answered with its own located line --------------

HEADER = 'syntax = "proto3";\npackage acme.fz.v1;\nimport "prism/options.proto";\n'
BODY = (
    'message Item {\n  option (prism.access_pattern) = "key_value";\n'
    "  string id = 1 [(prism.key) = true];\n  oneof choice {\n    string a = 2;\n    int64 b = 3;\n  }\n"
    "  Part part = 4;\n}\n"
    "message Part {\n  string name = 1;\n}\n"
)


@pytest.fixture(scope="module")
def small_request(tmp_path_factory: pytest.TempPathFactory) -> plugin_pb2.CodeGeneratorRequest:
    root = tmp_path_factory.mktemp("small")
    name = write_proto(root / "src", "acme/fz/v1/fz.proto", HEADER + BODY)
    return capture_request(root / "src", [name], root)


def _edit(
    request: plugin_pb2.CodeGeneratorRequest, change: Callable[[FileProto], None]
) -> plugin_pb2.CodeGeneratorResponse:
    copy = plugin_pb2.CodeGeneratorRequest()
    copy.CopyFrom(request)
    for file in (*copy.proto_file, *copy.source_file_descriptors):
        if file.name == "acme/fz/v1/fz.proto":
            change(file)
    return answer(copy)


def _item(file: FileProto) -> Message:
    return file.message_type[0]


def test_duplicate_field_number_is_located(small_request: plugin_pb2.CodeGeneratorRequest) -> None:
    def change(file: FileProto) -> None:
        _item(file).field[1].number = 1

    response = _edit(small_request, change)
    assert response.error == (
        "acme/fz/v1/fz.proto:8:16: acme.fz.v1.Item.a: field number 1 is already used by 'id'; "
        "allowed: one field per number"
    )


def test_unresolved_type_name_is_located(small_request: plugin_pb2.CodeGeneratorRequest) -> None:
    def change(file: FileProto) -> None:
        _item(file).field[3].type_name = ".acme.fz.v1.Prat"

    response = _edit(small_request, change)
    assert response.error == (
        "acme/fz/v1/fz.proto:11:3: acme.fz.v1.Item.part: type 'acme.fz.v1.Prat' is not defined in this "
        "file or the files it imports"
    )


def test_oneof_index_out_of_range_is_located(small_request: plugin_pb2.CodeGeneratorRequest) -> None:
    def change(file: FileProto) -> None:
        _item(file).field[2].oneof_index = 5

    response = _edit(small_request, change)
    assert response.error == (
        "acme/fz/v1/fz.proto:9:5: acme.fz.v1.Item.b: oneof_index 5 is out of range: the message declares "
        "1 oneof(s); the request is not what protoc sends for a .proto file"
    )


def test_file_to_generate_missing_from_the_request(small_request: plugin_pb2.CodeGeneratorRequest) -> None:
    copy = plugin_pb2.CodeGeneratorRequest()
    copy.CopyFrom(small_request)
    copy.file_to_generate.append("acme/fz/v1/other.proto")
    response = answer(copy)
    assert response.error == (
        "acme/fz/v1/other.proto: file_to_generate: this file is to be generated but is not among the "
        "request's proto_file; the request is not what protoc sends for a .proto file"
    )


def test_several_problems_are_one_line_each(small_request: plugin_pb2.CodeGeneratorRequest) -> None:
    def change(file: FileProto) -> None:
        _item(file).field[1].number = 1
        _item(file).field[2].oneof_index = 5

    lines = _edit(small_request, change).error.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["acme.fz.v1.Item.a", "acme.fz.v1.Item.b"]


def test_the_unmutated_requests_generate(
    examples_request: plugin_pb2.CodeGeneratorRequest, small_request: plugin_pb2.CodeGeneratorRequest
) -> None:
    for request in (examples_request, small_request):
        response = answer(request)
        assert not response.error
        assert response.file
        assert not problems_with(response)
