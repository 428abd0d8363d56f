"""PII options that cannot work: one located protoc error each, through real protoc, and no files."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_protoc, write_proto
from test_validation import HEADER

ENTITY = 'message M {\n  option (prism.access_pattern) = "key_value";\n'

CASES = [
    (
        "encrypted_key",
        ENTITY
        + '  string id = 1 [(prism.key) = true, (prism.encrypt_at_rest) = true, (prism.pii) = "email"];\n}\n',
        "7:3: acme.bad.v1.M.id: a key cannot be encrypt_at_rest: rows are found and keys chosen by its clear "
        "value; allowed: encrypt_at_rest on other fields, or (prism.searchable) for lookups",
    ),
    (
        "encrypted_subject",
        ENTITY + "  string id = 1 [(prism.key) = true];\n"
        "  string owner = 2 [(prism.subject) = true, (prism.encrypt_at_rest) = true];\n}\n",
        "8:3: acme.bad.v1.M.owner: a subject cannot be encrypt_at_rest: rows are found and keys chosen by its "
        "clear value; allowed: encrypt_at_rest on other fields, or (prism.searchable) for lookups",
    ),
    (
        "searchable_plaintext",
        ENTITY + "  string id = 1 [(prism.key) = true];\n"
        '  string mail = 2 [(prism.pii) = "email", (prism.searchable) = true];\n}\n',
        "8:3: acme.bad.v1.M.mail: (prism.searchable) applies to encrypt_at_rest fields; allowed: add "
        "(prism.encrypt_at_rest) = true, or use (prism.index) on a plaintext field",
    ),
    (
        "searchable_time_series",
        'message M {\n  option (prism.access_pattern) = "append_heavy";\n'
        "  string id = 1 [(prism.key) = true];\n  int64 at = 2 [(prism.event_time) = true];\n"
        '  string mail = 3 [(prism.pii) = "email", (prism.encrypt_at_rest) = true, (prism.searchable) = true];\n}\n',
        "9:3: acme.bad.v1.M.mail: (prism.searchable) gives KeyValue stores a find_by_mail; acme.bad.v1.M is "
        "append_heavy; allowed: key_value, read_heavy, write_heavy",
    ),
    (
        "subject_on_message",
        ENTITY + "  string id = 1 [(prism.key) = true];\n"
        "  google.protobuf.Timestamp at = 2 [(prism.subject) = true];\n}\n",
        "8:3: acme.bad.v1.M.at: a subject must be a singular string, bytes or integer field, not a message "
        "field; allowed: bytes, fixed32, int32, int64, sfixed32, sfixed64, sint32, sint64, string, uint32",
    ),
    (
        "encrypted_in_value_message",
        'message Address {\n  string street = 1 [(prism.pii) = "address", (prism.encrypt_at_rest) = true];\n}\n',
        "6:47: acme.bad.v1.Address.street: (prism.encrypt_at_rest) applies to fields of entities; "
        "acme.bad.v1.Address has no (prism.access_pattern), so its fields are stored inside a parent's JSON "
        "column; allowed: move the field to the entity, or keep only (prism.pii) for masking",
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pii_option_misuse_is_one_located_error(tmp_path: Path, name: str, body: str, expected: str) -> None:
    proto = write_proto(tmp_path / "src", f"acme/bad/v1/{name}.proto", HEADER + body)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode != 0
    assert run.errors == f"--prism_out: {proto}:{expected}"
    assert run.files() == {}
