"""`prism breaking`: schema pairs (baseline -> current) with the exact findings, through the real CLI.

Bodies start at line 5 of acme/app/v1/app.proto (after syntax, package, import and a blank line); bodies that
declare their own package start at line 3.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from checks_support import prism, write_schema

from protoc_gen_prism.checks.config import CheckConfig
from protoc_gen_prism.checks.rules import RULES, Category
from protoc_gen_prism.checks.runner import breaking_changes
from protoc_gen_prism.images import compile_image

FILE = "acme/app/v1/app.proto"
KV = 'option (prism.access_pattern) = "key_value";'
ID = "string id = 1 [(prism.key) = true];"


TTL = 'option (prism.ttl_seconds) = "60";'


def kv(*fields: str, options: str = "") -> str:
    """Return a key_value message M keyed by `id` with more fields (and message options)."""
    lines = ["message M {", f"  {KV}", *(f"  {o}" for o in options.splitlines() if o), f"  {ID}"]
    return "\n".join([*lines, *(f"  {f}" for f in fields), "}"])


def series(retention: str = "30", options: str = "") -> str:
    """Return an append_heavy message S with a retention and more options."""
    lines = [
        "message S {",
        '  option (prism.access_pattern) = "append_heavy";',
        f'  option (prism.retention_days) = "{retention}";',
        *(f"  {o}" for o in options.splitlines() if o),
        "  string user_id = 1 [(prism.key) = true];",
        "  int64 at_ms = 2 [(prism.event_time) = true];",
        "}",
    ]
    return "\n".join(lines)


# Partition counts exist on Kafka topics: pin the backend so the planner's choice cannot move the stream.
KAFKA = 'option (prism.backend) = "kafka";\n'
ENUM = "enum Color {\n  COLOR_UNSPECIFIED = 0;\n  COLOR_RED = 1;\n}"
EMAIL = 'string email = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true];'
SSN = 'string ssn = 2 [(prism.pii) = "ssn", (prism.encrypt_at_rest) = true, (prism.access_audit) = true];'
ADDRESS = 'message Address {\n  string street = 1 [(prism.pii) = "address"];\n}'

EDGE = """message Node {
  option (prism.access_pattern) = "graph_node";
  string id = 1 [(prism.key) = true];
}
message Link {
  option (prism.access_pattern) = "graph_edge";
  option (prism.edge_source_type) = "acme.app.v1.Node";
  option (prism.edge_target_type) = "acme.app.v1.Node";
  string a_id = 1 [(prism.edge_source) = true];
  string b_id = 2 [(prism.edge_target) = true];
  string via = 3;
}"""

# (name, baseline, current, expected [(rule, "line:col")] in output order); safe changes expect nothing.
PAIRS: list[tuple[str, str | dict[str, str], str | dict[str, str], list[tuple[str, str]]]] = [
    # -- safe changes: no findings ------------------------------------------------------------------
    ("add_optional_field", kv(), kv("optional string nick = 2;"), []),
    ("add_field", kv(), kv("string nick = 2;", "repeated int64 scores = 3;"), []),
    ("add_enum_value", ENUM, ENUM.replace("}", "  COLOR_BLUE = 2;\n}"), []),
    ("increase_retention", series("30"), series("90"), []),
    ("delete_with_reserved", kv("string nick = 2;"), kv("reserved 2;", 'reserved "nick";'), []),
    ("enum_value_reserved", ENUM, "enum Color {\n  COLOR_UNSPECIFIED = 0;\n  reserved 1;\n}", []),
    ("add_message", kv(), kv() + "\n" + ENUM, []),
    (
        "mark_pii_in_clear",
        kv("string email = 2;"),
        kv('string email = 2 [(prism.pii) = "email", (prism.plaintext_reason) = "support looks it up"];'),
        [],
    ),
    ("same_rank_pii_kind", kv(EMAIL), kv(EMAIL.replace('"email"', '"phone"')), []),
    ("add_index", kv("string nick = 2;"), kv("string nick = 2 [(prism.index) = true];"), []),
    ("change_ttl", kv(options=TTL), kv(options=TTL.replace("60", "120")), []),
    ("add_ttl", kv(), kv(options=TTL), [("STORAGE_TTL_ADDED", "7:3")]),
    ("remove_ttl", kv(options=TTL), kv(), [("STORAGE_TTL_REMOVED", "5:1")]),
    ("same_abstraction", kv(), kv().replace("key_value", "read_heavy"), []),
    ("add_audit", kv(EMAIL), kv(EMAIL.replace("true]", "true, (prism.access_audit) = true]")), []),
    # -- renames are recognised by number ----------------------------------------------------------
    ("rename_field", kv("string nick = 2;"), kv("string nickname = 2;"), [("WIRE_FIELD_RENAMED", "8:3")]),
    ("rename_pii_field", kv(EMAIL), kv(EMAIL.replace("email =", "mail =")), [("WIRE_FIELD_RENAMED", "8:3")]),
    # -- wire ---------------------------------------------------------------------------------------
    ("delete_field", kv("string nick = 2;"), kv(), [("WIRE_FIELD_DELETED", "5:1")]),
    (
        "number_changed",
        kv("string nick = 2;"),
        kv("string nick = 3;"),
        [("WIRE_FIELD_NUMBER_CHANGED", "8:3")],
    ),
    (
        "type_changed",
        kv("string count = 2;"),
        kv("int64 count = 2;"),
        [("STORAGE_COLUMN_TYPE_CHANGED", "8:3"), ("WIRE_FIELD_TYPE_CHANGED", "8:3")],
    ),
    (
        "made_repeated",
        kv("string tag = 2;"),
        kv("repeated string tag = 2;"),
        [("STORAGE_COLUMN_TYPE_CHANGED", "8:3"), ("WIRE_FIELD_TYPE_CHANGED", "8:3")],
    ),
    (
        "int32_to_enum_same_column",
        kv("int32 c = 2;") + "\n" + ENUM,
        kv("Color c = 2;") + "\n" + ENUM,
        [("WIRE_FIELD_TYPE_CHANGED", "8:3")],
    ),
    (
        "int64_to_sint64_same_column",
        kv("int64 n = 2;"),
        kv("sint64 n = 2;"),
        [("WIRE_FIELD_TYPE_CHANGED", "8:3")],
    ),
    (
        "enum_value_deleted",
        ENUM,
        "enum Color {\n  COLOR_UNSPECIFIED = 0;\n}",
        [("WIRE_ENUM_VALUE_DELETED", "5:1")],
    ),
    ("enum_deleted", kv() + "\n" + ENUM, kv(), [("WIRE_ENUM_DELETED", FILE.rsplit(":", 1)[0])]),
    (
        "message_deleted",
        kv() + "\nmessage Old {\n  string id = 1;\n}",
        kv(),
        [("WIRE_MESSAGE_DELETED", FILE)],
    ),
    (
        "message_moved",
        "package acme.app.v1;\n" + kv(),
        "package acme.other.v1;\n" + kv(),
        [("STORAGE_TABLE_RENAMED", "4:1"), ("WIRE_MESSAGE_MOVED", "4:1")],
    ),
    ("file_moved", {FILE: kv()}, {"acme/app/v1/renamed.proto": kv()}, [("WIRE_FILE_MOVED", FILE)]),
    # -- storage ------------------------------------------------------------------------------------
    (
        "key_changed",
        kv("string email = 2;"),
        kv("string email = 2 [(prism.key) = true];").replace(ID, "string id = 1;"),
        [("STORAGE_KEY_CHANGED", "8:3")],
    ),
    (
        "sort_key_removed",
        kv("int64 seq = 2 [(prism.sort_key) = true];"),
        kv("int64 seq = 2;"),
        [("STORAGE_SORT_KEY_CHANGED", "5:1")],
    ),
    (
        "namespace_changed",
        kv(options='option (prism.namespace) = "users";'),
        kv(options='option (prism.namespace) = "accounts";'),
        [("STORAGE_TABLE_RENAMED", "5:1")],
    ),
    (
        "int32_to_double",
        kv("int32 c = 2;"),
        kv("double c = 2;"),
        [("STORAGE_COLUMN_TYPE_CHANGED", "8:3"), ("WIRE_FIELD_TYPE_CHANGED", "8:3")],
    ),
    (
        "kv_to_time_series",
        kv("int64 at = 2;"),
        series().replace("message S", "message M"),
        [
            ("STORAGE_ABSTRACTION_CHANGED", "5:1"),
            ("STREAM_BACKEND_CHANGED", "5:1"),
            ("STREAM_RETENTION_SHORTENED", "5:1"),
            ("WIRE_FIELD_RENAMED", "8:3"),
            ("WIRE_FIELD_RENAMED", "9:3"),
        ],
    ),
    (
        "edge_target_changed",
        EDGE,
        EDGE.replace("string b_id = 2 [(prism.edge_target) = true];", "string b_id = 2;").replace(
            "string via = 3;", "string via = 3 [(prism.edge_target) = true];"
        ),
        [("STORAGE_SORT_KEY_CHANGED", "15:3")],
    ),
    (
        "edge_gains_an_index",
        EDGE,
        EDGE.replace("string via = 3;", "string via = 3 [(prism.index) = true];"),
        [],
    ),
    (
        "encrypt_existing_field",
        kv("string email = 2;"),
        kv(EMAIL),
        [("STORAGE_COLUMN_TYPE_CHANGED", "8:3")],
    ),
    # -- data protection ----------------------------------------------------------------------------
    (
        "encryption_removed",
        kv(EMAIL),
        kv('string email = 2 [(prism.pii) = "email", (prism.plaintext_reason) = "search"];'),
        [("PROTECT_ENCRYPTION_REMOVED", "8:3"), ("STORAGE_COLUMN_TYPE_CHANGED", "8:3")],
    ),
    (
        "pii_removed",
        kv(EMAIL),
        kv("string email = 2;"),
        [
            ("PROTECT_ENCRYPTION_REMOVED", "8:3"),
            ("PROTECT_PII_REMOVED", "8:3"),
            ("STORAGE_COLUMN_TYPE_CHANGED", "8:3"),
        ],
    ),
    ("pii_weakened", kv(SSN), kv(SSN.replace('"ssn"', '"generic"')), [("PROTECT_PII_WEAKENED", "8:3")]),
    (
        "audit_removed",
        kv(SSN),
        kv(SSN.replace(", (prism.access_audit) = true", "")),
        [("PROTECT_AUDIT_REMOVED", "8:3")],
    ),
    (
        "mask_turned_off",
        kv(EMAIL),
        kv(EMAIL.replace("true]", "true, (prism.mask_in_logs) = false]")),
        [("PROTECT_MASK_OFF", "8:3")],
    ),
    (
        "value_type_pii_removed",
        kv("Address home = 2;") + "\n" + ADDRESS,
        kv("Address home = 2;") + "\n" + "message Address {\n  string street = 1;\n}",
        [("PROTECT_PII_REMOVED", "10:1")],
    ),
    # -- streams ------------------------------------------------------------------------------------
    ("retention_shortened", series("90"), series("30"), [("STREAM_RETENTION_SHORTENED", "5:1")]),
    (
        "forever_to_limited",
        series("0", KAFKA),
        series("365", KAFKA),
        [("STREAM_RETENTION_SHORTENED", "5:1")],
    ),
    # The capacity planner decides the rest: a change of load or retention can move a stream or resize it.
    ("retention_to_forever_moves_to_nats", series("30"), series("0"), [("STREAM_BACKEND_CHANGED", "5:1")]),
    (
        "more_writes_move_to_kafka",
        series("7"),
        series("7", 'option (prism.estimated_write_rps) = "5000";'),
        [("STREAM_BACKEND_CHANGED", "5:1")],
    ),
    (
        "more_writes_add_partitions",
        series("7", KAFKA + 'option (prism.estimated_write_rps) = "1000";'),
        series("7", KAFKA + 'option (prism.estimated_write_rps) = "5000";'),
        [("STREAM_PARTITIONS_INCREASED_KEYED", "5:1")],
    ),
    ("pinned_backend_keeps_the_stream", series("30", KAFKA), series("0", KAFKA), []),
    (
        "partitions_decreased",
        series(options=KAFKA + 'option (prism.consumer_parallelism) = "8";'),
        series(options=KAFKA + 'option (prism.consumer_parallelism) = "4";'),
        [("STREAM_PARTITIONS_DECREASED", "5:1")],
    ),
    (
        "partitions_increased_keyed",
        series(options=KAFKA + 'option (prism.consumer_parallelism) = "4";'),
        series(options=KAFKA + 'option (prism.consumer_parallelism) = "8";'),
        [("STREAM_PARTITIONS_INCREASED_KEYED", "5:1")],
    ),
    (
        "backend_changed",
        series(options='option (prism.backend) = "nats";'),
        series(options='option (prism.backend) = "kafka";'),
        [("STREAM_BACKEND_CHANGED", "5:1")],
    ),
]


def _write(root: Path, side: str | dict[str, str]) -> Path:
    files = side if isinstance(side, dict) else {FILE: side}
    for name, body in files.items():
        write_schema(root, body, name=name)
    return root


@pytest.mark.parametrize(("name", "before", "after", "expected"), PAIRS, ids=[p[0] for p in PAIRS])
def test_breaking_pair(
    tmp_path: Path,
    name: str,
    before: str | dict[str, str],
    after: str | dict[str, str],
    expected: list[tuple[str, str]],
) -> None:
    base = _write(tmp_path / "base", before)
    current = _write(tmp_path / "current", after)
    run = prism("breaking", current, "--against", base, "--format", "json")
    located = [(rule, at if at.startswith("acme/") else f"{FILE}:{at}") for rule, at in expected]
    assert [(r, a.removesuffix(":0:0")) for r, a in run.findings()] == located, run.stderr
    errors = [f for f in json.loads(run.stdout or "[]") if f["severity"] == "error"]
    assert run.returncode == (1 if errors else 0)


def test_there_are_at_least_thirty_pairs_and_ten_safe_ones() -> None:
    assert len(PAIRS) >= 30
    assert sum(not expected for *_, expected in PAIRS) >= 10


BREAKING = sorted(r.id for r in RULES.values() if r.category is not Category.LINT)
# The planner gives every NATS stream file storage today, so no pair of schemas can fire this rule yet.
NEEDS_A_PLAN = {"STREAM_NATS_STORAGE_CHANGED"}


@pytest.mark.parametrize("rule_id", BREAKING)
def test_every_breaking_example_fires_its_rule(tmp_path: Path, rule_id: str) -> None:
    rule = RULES[rule_id]
    before, after = {}, {}
    for side, text in ((before, rule.example), (after, rule.example_after)):
        name = FILE
        if text.startswith("// file "):
            first, _, text = text.partition("\n")
            name = first.removeprefix("// file ")
        side[name] = text
    fired = {
        f.rule
        for f in breaking_changes(
            compile_image(_write(tmp_path / "a", before)),
            compile_image(_write(tmp_path / "b", after)),
            CheckConfig(),
        )
    }
    assert (rule_id in fired) is (rule_id not in NEEDS_A_PLAN)


def test_a_baseline_that_does_not_build_fails(tmp_path: Path) -> None:
    base = _write(
        tmp_path / "base", 'message M {\n  option (prism.access_pattern) = "key_value";\n  string id = 1;\n}'
    )
    current = _write(tmp_path / "current", kv())
    run = prism("breaking", current, "--against", base)
    assert run.returncode == 1
    assert run.stdout.startswith(
        f"{FILE}:5:1: SCHEMA_INVALID: baseline: acme.app.v1.M: a key_value message needs a key"
    )


def test_against_a_snapshot_image(tmp_path: Path) -> None:
    base = _write(tmp_path / "base", kv("string nick = 2;"))
    image = tmp_path / "prism.image.binpb"
    snap = prism("snapshot", base, "-o", image)
    assert snap.returncode == 0, snap.stderr
    assert "1 file(s)" in snap.stdout
    current = _write(tmp_path / "current", kv())
    run = prism("breaking", current, "--against", image, "--format", "json")
    assert run.rules() == ["WIRE_FIELD_DELETED"]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_against_a_git_ref_without_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(repo / "proto", kv(EMAIL))
    _git(repo.parent, "init", "-q", "-b", "main", str(repo))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "v1")
    _write(repo / "proto", kv("string email = 2;"))
    run = prism("breaking", "proto", "--against", ".git#ref=main", "--format", "github", cwd=repo)
    assert run.returncode == 1, run.stderr
    assert run.stdout.splitlines() == [
        f"::error file=proto/{FILE},line=8,col=3,title=PROTECT_ENCRYPTION_REMOVED::acme.app.v1.M.email: "
        "(prism.encrypt_at_rest) removed; keep it",
        f"::error file=proto/{FILE},line=8,col=3,title=PROTECT_PII_REMOVED::acme.app.v1.M.email: "
        "(prism.pii) = 'email' removed; keep it",
        f"::error file=proto/{FILE},line=8,col=3,title=STORAGE_COLUMN_TYPE_CHANGED::acme.app.v1.M.email: column "
        "type changes from BYTEA to TEXT (postgres) (encrypted values are stored as bytes: existing rows must be "
        "rewritten); the table 'acme_app_v1_m' needs a rewrite: add a new field and backfill it instead",
    ]
    # The working tree is untouched: git archive reads the ref, nothing is checked out.
    assert "string email = 2;" in (repo / "proto" / FILE).read_text()
    bad = prism("breaking", "proto", "--against", ".git#ref=nope", cwd=repo)
    assert bad.returncode == 2 and "git archive failed: fatal: not a valid object name: nope" in bad.stderr
