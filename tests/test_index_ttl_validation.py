"""Indexes that cannot serve an equality finder and TTLs that cannot apply: one located protoc error each."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_protoc, write_proto
from test_validation import HEADER

KV = 'message M {\n  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n'
ALLOWED = "allowed: singular scalar, enum and google.protobuf.*Value wrapper fields"

# (name, body after the header, expected error: "LINE:COL: element: message")
CASES = [
    (
        "index_on_message",
        KV + "  google.protobuf.Timestamp at = 2 [(prism.index) = true];\n}\n",
        "8:37: acme.bad.v1.M.at: (prism.index) gives find_by_at an equality lookup, which a message field "
        f"cannot have (it is stored as timestamp); {ALLOWED}",
    ),
    (
        "index_on_repeated",
        KV + "  repeated string tags = 2 [(prism.index) = true];\n}\n",
        "8:29: acme.bad.v1.M.tags: (prism.index) gives find_by_tags an equality lookup, which a repeated string "
        f"field cannot have (it is stored as string); {ALLOWED}",
    ),
    (
        "index_on_map",
        KV + "  map<string, string> attrs = 2 [(prism.index) = true];\n}\n",
        "8:34: acme.bad.v1.M.attrs: (prism.index) gives find_by_attrs an equality lookup, which a map field "
        f"cannot have (it is stored as JSON); {ALLOWED}",
    ),
    (
        "index_on_encrypted",
        KV
        + '  string mail = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true, (prism.index) = true];\n}\n',
        "8:75: acme.bad.v1.M.mail: (prism.index) on an encrypt_at_rest field would index ciphertext, which no "
        "value equals; allowed: (prism.searchable) = true for a lookup through a blind index, or no (prism.index)",
    ),
    (
        "ttl_on_time_series",
        'message M {\n  option (prism.access_pattern) = "append_heavy";\n  option (prism.ttl_seconds) = "60";\n'
        "  string id = 1 [(prism.key) = true];\n  int64 at = 2 [(prism.event_time) = true];\n}\n",
        "7:3: acme.bad.v1.M: (prism.ttl_seconds) expires items of KeyValue stores; acme.bad.v1.M is append_heavy; "
        "allowed: key_value, read_heavy, write_heavy (a TimeSeries keeps events for (prism.retention_days))",
    ),
    (
        "ttl_zero",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.ttl_seconds) = "0";\n'
        "  string id = 1 [(prism.key) = true];\n}\n",
        "7:3: acme.bad.v1.M: ttl_seconds 0 is out of range; allowed: 1 to 9223367934409975",
    ),
    (
        "ttl_not_a_number",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.ttl_seconds) = "1d";\n'
        "  string id = 1 [(prism.key) = true];\n}\n",
        "7:3: acme.bad.v1.M: ttl_seconds must be a non-negative whole number, got '1d'; allowed: digits, "
        'e.g. "10000"',
    ),
    (
        "field_named_like_the_expiry_column",
        'message M {\n  option (prism.access_pattern) = "key_value";\n  option (prism.ttl_seconds) = "60";\n'
        "  string id = 1 [(prism.key) = true];\n  int64 prism_expires_at = 2;\n}\n",
        "9:3: acme.bad.v1.M.prism_expires_at: its column 'prism_expires_at' clashes with Prism's expiry column "
        "of an entity with a TTL; allowed: a name no other column of the table has",
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_wrong_index_or_ttl_is_one_located_error_and_no_files(
    tmp_path: Path, name: str, body: str, expected: str
) -> None:
    proto = write_proto(tmp_path / "src", f"acme/bad/v1/{name}.proto", HEADER + body)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode != 0
    assert run.errors == f"--prism_out: {proto}:{expected}"
    assert run.files() == {}


def test_index_on_a_searchable_field_keeps_the_blind_index_finder(tmp_path: Path) -> None:
    body = (
        KV
        + '  string mail = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true, (prism.searchable) = true,'
        " (prism.index) = true];\n  optional string nick = 3 [(prism.index) = true];\n}\n"
    )
    proto = write_proto(tmp_path / "src", "acme/bad/v1/ok.proto", HEADER + body)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode == 0, run.stderr
    client = run.files()["acme/bad/v1/ok_prism.py"]
    assert "async def find_by_mail(self, mail: str) -> list[ok_pb2.M]:" in client
    signature = "async def find_by_nick(self, value: str, *, limit: int = 100, after: str | None = None) -> list[ok_pb2.M]:"
    assert signature in client
