"""Graph schema rules: each broken rule is one located protoc error, through real protoc, and no files."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_protoc, write_proto

HEADER = 'syntax = "proto3";\npackage acme.bad.v1;\nimport "prism/options.proto";\n'
PERSON = (
    'message Person {\n  option (prism.access_pattern) = "graph_node";\n'
    "  string id = 1 [(prism.key) = true];\n}\n"
)  # lines 4-7


def edge(*lines: str) -> str:
    """Return an edge message starting on line 8 after HEADER + PERSON."""
    return "message Follows {\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


GOOD_OPTIONS = (
    'option (prism.access_pattern) = "graph_edge";',
    'option (prism.edge_source_type) = "acme.bad.v1.Person";',
    'option (prism.edge_target_type) = "acme.bad.v1.Person";',
)
GOOD_FIELDS = ("string src = 1 [(prism.edge_source) = true];", "string dst = 2 [(prism.edge_target) = true];")

# (name, body after HEADER + PERSON, expected error: "LINE:COL: element: message")
CASES = [
    (
        "edge_without_source_field",
        edge(*GOOD_OPTIONS, "string src = 1;", GOOD_FIELDS[1]),
        "8:1: acme.bad.v1.Follows: a graph_edge message needs an edge_source field: mark the field holding "
        "the key of the node the edge starts at with (prism.edge_source) = true",
    ),
    (
        "edge_without_target_field",
        edge(*GOOD_OPTIONS, GOOD_FIELDS[0], "string dst = 2;"),
        "8:1: acme.bad.v1.Follows: a graph_edge message needs an edge_target field: mark the field holding "
        "the key of the node the edge ends at with (prism.edge_target) = true",
    ),
    (
        "edge_without_source_type",
        edge(GOOD_OPTIONS[0], GOOD_OPTIONS[2], *GOOD_FIELDS),
        "8:1: acme.bad.v1.Follows: a graph_edge message needs (prism.edge_source_type): the full name of "
        "the graph_node message the edge starts at; allowed: acme.bad.v1.Person",
    ),
    (
        "unknown_source_type",
        edge(
            GOOD_OPTIONS[0],
            'option (prism.edge_source_type) = "acme.bad.v1.Persn";',
            GOOD_OPTIONS[2],
            *GOOD_FIELDS,
        ),
        "10:3: acme.bad.v1.Follows: edge_source_type 'acme.bad.v1.Persn' is not a message of "
        "acme/bad/v1/unknown_source_type.proto; allowed: acme.bad.v1.Person; did you mean 'acme.bad.v1.Person'?",
    ),
    (
        "target_type_not_a_node",
        edge(
            GOOD_OPTIONS[0],
            GOOD_OPTIONS[1],
            'option (prism.edge_target_type) = "acme.bad.v1.Post";',
            *GOOD_FIELDS,
        )
        + 'message Post {\n  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n}\n',
        "11:3: acme.bad.v1.Follows: edge_target_type 'acme.bad.v1.Post' is a key_value message, not a "
        "graph_node; allowed: acme.bad.v1.Person",
    ),
    (
        "target_type_plain_message",
        edge(
            GOOD_OPTIONS[0],
            GOOD_OPTIONS[1],
            'option (prism.edge_target_type) = "acme.bad.v1.Note";',
            *GOOD_FIELDS,
        )
        + "message Note {\n  string id = 1;\n}\n",
        "11:3: acme.bad.v1.Follows: edge_target_type 'acme.bad.v1.Note' is not a graph_node message: it has "
        "no (prism.access_pattern); allowed: acme.bad.v1.Person",
    ),
    (
        "source_type_mismatch",
        edge(*GOOD_OPTIONS, "int64 src = 1 [(prism.edge_source) = true];", GOOD_FIELDS[1]),
        "12:3: acme.bad.v1.Follows.src: the edge_source is an int64 field but holds keys of acme.bad.v1.Person, "
        "whose key 'id' is a string field; allowed: string",
    ),
    (
        "target_repeated",
        edge(*GOOD_OPTIONS, GOOD_FIELDS[0], "repeated string dst = 2 [(prism.edge_target) = true];"),
        "13:3: acme.bad.v1.Follows.dst: the edge_target is a repeated string field but holds keys of "
        "acme.bad.v1.Person, whose key 'id' is a string field; allowed: string",
    ),
    (
        "edge_option_on_node",
        'message Place {\n  option (prism.access_pattern) = "graph_node";\n'
        '  option (prism.edge_direction) = "bidirectional";\n  string id = 1 [(prism.key) = true];\n}\n',
        "10:3: acme.bad.v1.Place: (prism.edge_direction) applies to graph_edge messages, not graph_node; "
        "allowed: graph_edge",
    ),
    (
        "edge_source_on_key_value",
        'message Like {\n  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n'
        "  string who = 2 [(prism.edge_source) = true];\n}\n",
        "11:19: acme.bad.v1.Like.who: (prism.edge_source) applies to graph_edge messages, not key_value; "
        "allowed: graph_edge",
    ),
    (
        "key_on_edge",
        edge(*GOOD_OPTIONS, *GOOD_FIELDS, "string id = 3 [(prism.key) = true];"),
        "14:18: acme.bad.v1.Follows.id: (prism.key) does not apply to graph_edge messages: an edge is "
        "identified by its (prism.edge_source) and (prism.edge_target) fields",
    ),
    (
        "sort_key_on_node",
        'message Place {\n  option (prism.access_pattern) = "graph_node";\n  string id = 1 [(prism.key) = true];\n'
        "  int64 seq = 2 [(prism.sort_key) = true];\n}\n",
        "11:18: acme.bad.v1.Place.seq: (prism.sort_key) does not apply to graph_node messages: a node is "
        "identified by its key alone",
    ),
    (
        "bidirectional_between_types",
        edge(
            GOOD_OPTIONS[0],
            GOOD_OPTIONS[1],
            'option (prism.edge_target_type) = "acme.bad.v1.Place";',
            'option (prism.edge_direction) = "bidirectional";',
            *GOOD_FIELDS,
        )
        + 'message Place {\n  option (prism.access_pattern) = "graph_node";\n  string id = 1 [(prism.key) = true];\n}\n',
        "12:3: acme.bad.v1.Follows: a bidirectional edge connects one node type to itself, but it goes from "
        "acme.bad.v1.Person to acme.bad.v1.Place; allowed: unidirectional, or the same edge_source_type and "
        "edge_target_type",
    ),
    (
        "unknown_direction",
        edge(*GOOD_OPTIONS, 'option (prism.edge_direction) = "both";', *GOOD_FIELDS),
        "12:3: acme.bad.v1.Follows: unknown edge_direction 'both'; allowed: unidirectional, bidirectional",
    ),
    (
        "source_and_target_one_field",
        edge(*GOOD_OPTIONS, "string src = 1 [(prism.edge_source) = true, (prism.edge_target) = true];"),
        "12:47: acme.bad.v1.Follows.src: a field cannot be both the edge_source and the edge_target; "
        "allowed: one role per field",
    ),
    (
        "edge_end_in_oneof",
        edge(
            *GOOD_OPTIONS,
            GOOD_FIELDS[0],
            "oneof end {",
            "  string dst = 2 [(prism.edge_target) = true];",
            "}",
        ),
        "14:21: acme.bad.v1.Follows.dst: an edge_target cannot be a member of oneof 'end'; move it out",
    ),
    (
        "node_without_key",
        'message Place {\n  option (prism.access_pattern) = "graph_node";\n  string id = 1;\n}\n',
        "8:1: acme.bad.v1.Place: a graph_node message needs a key: mark one field with (prism.key) = true; "
        "allowed key types: bytes, fixed32, int32, int64, sfixed32, sfixed64, sint32, sint64, string, uint32",
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_broken_graph_rule_is_one_located_error_and_no_files(
    tmp_path: Path, name: str, body: str, expected: str
) -> None:
    proto = write_proto(tmp_path / "src", f"acme/bad/v1/{name}.proto", HEADER + PERSON + body)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode != 0
    assert run.errors == f"--prism_out: {proto}:{expected}"
    assert run.files() == {}


def test_node_type_from_another_file_is_refused(tmp_path: Path) -> None:
    people = write_proto(tmp_path / "src", "acme/bad/v1/people.proto", HEADER + PERSON)
    body = HEADER + 'import "acme/bad/v1/people.proto";\n' + edge(*GOOD_OPTIONS, *GOOD_FIELDS)
    follows = write_proto(tmp_path / "src", "acme/bad/v1/follows.proto", body)
    run = run_protoc(tmp_path / "src", [people, follows], tmp_path / "out")
    assert run.errors.splitlines() == [
        f"--prism_out: {follows}:7:3: acme.bad.v1.Follows: edge_source_type 'acme.bad.v1.Person' is declared "
        f"in {people}; an edge and its nodes must be in the same file; allowed: none: declare a graph_node "
        f"message in {follows}",
        f"{follows}:8:3: acme.bad.v1.Follows: edge_target_type 'acme.bad.v1.Person' is declared "
        f"in {people}; an edge and its nodes must be in the same file; allowed: none: declare a graph_node "
        f"message in {follows}",
    ]


def test_a_valid_graph_generates(tmp_path: Path) -> None:
    proto = write_proto(
        tmp_path / "src", "acme/good/v1/g.proto", HEADER + PERSON + edge(*GOOD_OPTIONS, *GOOD_FIELDS)
    )
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode == 0, run.stderr
