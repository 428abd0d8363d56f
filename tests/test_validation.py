"""Wrong option values: one located protoc error each, through real protoc, and no files at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_protoc, write_proto

HEADER = 'syntax = "proto3";\npackage acme.bad.v1;\nimport "prism/options.proto";\nimport "google/protobuf/timestamp.proto";\n'

# (name, body after the header, expected error: "LINE:COL: element: message")
CASES = [
    (
        "unknown_access_pattern",
        'message M {\n  option (prism.access_pattern) = "read_hevy";\n  string id = 1 [(prism.key) = true];\n}\n',
        "6:3: acme.bad.v1.M: unknown access_pattern 'read_hevy'; allowed: key_value, read_heavy, write_heavy, "
        "append_heavy, graph_node, graph_edge; did you mean 'read_heavy'?",
    ),
    (
        "non_numeric_write_rps",
        'message M {\n  option (prism.access_pattern) = "read_heavy";\n'
        '  option (prism.estimated_write_rps) = "10k";\n  string id = 1 [(prism.key) = true];\n}\n',
        "7:3: acme.bad.v1.M: estimated_write_rps must be a non-negative whole number, got '10k'; "
        'allowed: digits, e.g. "10000"',
    ),
    (
        "negative_retention",
        'message M {\n  option (prism.access_pattern) = "key_value";\n'
        '  option (prism.retention_days) = "-5";\n  string id = 1 [(prism.key) = true];\n}\n',
        "7:3: acme.bad.v1.M: retention_days must be a non-negative whole number, got '-5'; "
        'allowed: digits, e.g. "10000"',
    ),
    (
        "unknown_pii_kind",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n'
        '  string mail = 2 [(prism.pii) = "emial"];\n}\n',
        "8:20: acme.bad.v1.M.mail: unknown pii kind 'emial'; allowed: email, ssn, phone, name, address, dob, "
        "ip, credit_card, generic; did you mean 'email'?",
    ),
    (
        "key_on_repeated",
        'message M {\n  option (prism.access_pattern) = "key_value";\n'
        "  repeated string ids = 1 [(prism.key) = true];\n}\n",
        "7:28: acme.bad.v1.M.ids: a key must be a singular string, bytes or integer field, not a repeated "
        "string field; allowed: bytes, fixed32, int32, int64, sfixed32, sfixed64, sint32, sint64, string, uint32",
    ),
    (
        "key_on_message",
        'message M {\n  option (prism.access_pattern) = "key_value";\n'
        "  google.protobuf.Timestamp at = 1 [(prism.key) = true];\n}\n",
        "7:37: acme.bad.v1.M.at: a key must be a singular string, bytes or integer field, not a message field; "
        "allowed: bytes, fixed32, int32, int64, sfixed32, sfixed64, sint32, sint64, string, uint32",
    ),
    (
        "two_keys",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  string a = 1 [(prism.key) = true];\n'
        "  string b = 2 [(prism.key) = true];\n}\n",
        "8:3: acme.bad.v1.M.b: more than one (prism.key) field: 'a' is already the key; "
        "allowed: one key per message",
    ),
    (
        "sort_key_without_key",
        'message M {\n  option (prism.access_pattern) = "key_value";\n'
        "  int64 seq = 1 [(prism.sort_key) = true];\n}\n",
        "7:3: acme.bad.v1.M.seq: a sort_key needs a key: mark the partition key field with (prism.key) = true",
    ),
    (
        "encrypt_non_string",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n'
        "  int64 salary = 2 [(prism.encrypt_at_rest) = true];\n}\n",
        "8:21: acme.bad.v1.M.salary: encrypt_at_rest applies to singular string and bytes fields, not an int64 "
        "field; allowed: string, bytes",
    ),
    (
        "keyvalue_without_key",
        'message M {\n  option (prism.access_pattern) = "write_heavy";\n  string id = 1;\n}\n',
        "5:1: acme.bad.v1.M: a write_heavy message needs a key: mark one field with (prism.key) = true; "
        "allowed key types: bytes, fixed32, int32, int64, sfixed32, sfixed64, sint32, sint64, string, uint32",
    ),
    (
        "unknown_backend",
        'message M {\n  option (prism.access_pattern) = "append_heavy";\n  option (prism.backend) = "kafak";\n'
        "  string id = 1 [(prism.key) = true];\n  int64 at = 2 [(prism.event_time) = true];\n}\n",
        "7:3: acme.bad.v1.M: unknown backend 'kafak'; allowed: sqlite, postgres, kafka, nats; did you mean 'kafka'?",
    ),
    (
        "bad_namespace",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.namespace) = "Users; DROP";\n'
        "  string id = 1 [(prism.key) = true];\n}\n",
        "7:3: acme.bad.v1.M: namespace 'Users; DROP' is not a valid name; allowed: lowercase letters, digits "
        "and '_', starting with a letter or '_', at most 63 characters",
    ),
    (
        "key_without_access_pattern",
        "message M {\n  string id = 1 [(prism.key) = true];\n}\n",
        "6:18: acme.bad.v1.M.id: (prism.key) needs (prism.access_pattern) on acme.bad.v1.M; allowed patterns: "
        "key_value, read_heavy, write_heavy, append_heavy, graph_node, graph_edge",
    ),
    (
        "event_time_wrong_type",
        'message M {\n  option (prism.access_pattern) = "append_heavy";\n  string id = 1 [(prism.key) = true];\n'
        "  string at = 2 [(prism.event_time) = true];\n}\n",
        "8:18: acme.bad.v1.M.at: event_time must be a google.protobuf.Timestamp or a 64-bit integer of epoch "
        "milliseconds, not a string field; allowed: google.protobuf.Timestamp, int64, uint64",
    ),
    (
        "append_heavy_without_event_time",
        'message M {\n  option (prism.access_pattern) = "append_heavy";\n  string id = 1 [(prism.key) = true];\n}\n',
        "5:1: acme.bad.v1.M: an append_heavy message needs an event time: mark one field with "
        "(prism.event_time) = true; allowed types: google.protobuf.Timestamp, int64, uint64",
    ),
    (
        "kafka_for_key_value",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.backend) = "kafka";\n'
        "  string id = 1 [(prism.key) = true];\n}\n",
        "5:1: acme.bad.v1.M: (prism.backend) kafka cannot serve key_value messages (the key_value abstraction); "
        "allowed: sqlite, postgres",
    ),
    (
        "key_on_double",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  double id = 1 [(prism.key) = true];\n}\n',
        "7:18: acme.bad.v1.M.id: a key must be a singular string, bytes or integer field, not a double field; "
        "allowed: bytes, fixed32, int32, int64, sfixed32, sfixed64, sint32, sint64, string, uint32",
    ),
    (
        "rps_without_access_pattern",
        'message M {\n  option (prism.estimated_write_rps) = "100";\n  string id = 1;\n}\n',
        "6:3: acme.bad.v1.M: (prism.estimated_write_rps) needs (prism.access_pattern) on the message; allowed "
        "patterns: key_value, read_heavy, write_heavy, append_heavy, graph_node, graph_edge",
    ),
    (
        "field_name_too_long",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n'
        f"  string {'x' * 64} = 2;\n}}\n",
        f"8:3: acme.bad.v1.M.{'x' * 64}: field name is 64 bytes long, more than the 63 a Postgres column name may "
        "have; allowed: names of at most 63 bytes",
    ),
    (
        "key_in_oneof",
        'message M {\n  option (prism.access_pattern) = "key_value";\n'
        "  oneof id {\n    string name = 1 [(prism.key) = true];\n    int64 number = 2;\n  }\n}\n",
        "8:22: acme.bad.v1.M.name: a key cannot be a member of oneof 'id'; move it out",
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_wrong_option_is_one_located_error_and_no_files(
    tmp_path: Path, name: str, body: str, expected: str
) -> None:
    proto = write_proto(tmp_path / "src", f"acme/bad/v1/{name}.proto", HEADER + body)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode != 0
    assert run.errors == f"--prism_out: {proto}:{expected}"
    assert run.files() == {}


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    body = (
        'message A {\n  option (prism.access_pattern) = "kv";\n  string id = 1 [(prism.key) = true];\n}\n'
        'message B {\n  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.pii) = "mail"];\n}\n'
    )
    proto = write_proto(tmp_path / "src", "acme/bad/v1/many.proto", HEADER + body)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    lines = run.errors.removeprefix("--prism_out: ").splitlines()
    assert [line.split(": ")[1] for line in lines] == ["acme.bad.v1.A", "acme.bad.v1.B", "acme.bad.v1.B.id"]
    assert run.files() == {}


def test_namespace_collision_across_files(tmp_path: Path) -> None:
    one = 'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.namespace) = "shared";\n  string id = 1 [(prism.key) = true];\n}\n'
    a = write_proto(tmp_path / "src", "acme/bad/v1/a.proto", HEADER + one)
    b = write_proto(tmp_path / "src", "acme/bad/v2/b.proto", HEADER.replace("v1", "v2") + one)
    run = run_protoc(tmp_path / "src", [a, b], tmp_path / "out")
    assert run.errors == (
        f"--prism_out: {b}:5:1: acme.bad.v2.M: namespace 'shared' is already used by acme.bad.v1.M "
        f"({a}:5:1); set a distinct (prism.namespace)"
    )
