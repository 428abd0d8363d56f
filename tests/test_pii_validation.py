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


def series(options: str = "") -> str:
    """Return the start of an append_heavy message M, with extra message options."""
    return (
        f'message M {{\n  option (prism.access_pattern) = "append_heavy";\n{options}'
        "  string id = 1 [(prism.key) = true];\n  int64 at = 2 [(prism.event_time) = true];\n"
    )


def _on_stream(backend: str, where: str) -> str:
    return (
        f"pii in clear on {backend}, where acme.bad.v1.M is planned: a stream's log cannot be edited, so forget "
        f'could not erase it; allowed: {where}, (prism.plaintext_reason) = "why" to keep it in clear on '
        'purpose (forget then reports it as not erasable), or (prism.backend) = "postgres"'
    )


CASES += [
    (
        "plaintext_on_nats",  # append_heavy at 0 writes/s, kept 0 days: planned onto nats
        series() + '  string mail = 3 [(prism.pii) = "email"];\n}\n',
        "9:3: acme.bad.v1.M.mail: "
        + _on_stream("nats", "(prism.encrypt_at_rest) = true (forget destroys its keys)"),
    ),
    (
        "plaintext_on_kafka",
        series('  option (prism.backend) = "kafka";\n')
        + '  string mail = 3 [(prism.pii) = "email", (prism.plaintext_reason) = "  "];\n}\n',
        "10:3: acme.bad.v1.M.mail: "
        + _on_stream("kafka", "(prism.encrypt_at_rest) = true (forget destroys its keys)"),
    ),
    (
        "plaintext_in_value_on_stream",  # reported once, though two stream entities store it
        'message Contact {\n  string phone = 1 [(prism.pii) = "phone"];\n}\n'
        + series()
        + "  Contact contact = 3;\n}\n"
        + series().replace("message M", "message N")
        + "  Contact contact = 3;\n}\n",
        "6:3: acme.bad.v1.Contact.phone: "
        + _on_stream("nats", "move it to the entity with (prism.encrypt_at_rest) = true"),
    ),
]


@pytest.mark.parametrize(
    "field",
    [
        '  string mail = 3 [(prism.pii) = "email", (prism.encrypt_at_rest) = true];\n',
        '  string mail = 3 [(prism.pii) = "email", (prism.plaintext_reason) = "support \\"looks\\" it up"];\n',
    ],
    ids=["encrypted", "with_reason"],
)
def test_pii_on_a_stream_is_accepted_encrypted_or_with_a_reason(tmp_path: Path, field: str) -> None:
    proto = write_proto(tmp_path / "src", "acme/ok/v1/m.proto", HEADER + series() + field + "}\n")
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert "manifests/nats/acme_bad_v1_m.json" in run.files()
    client = run.files()["acme/ok/v1/m_prism.py"]
    if "reason" in field:
        assert """plaintext_reason='support "looks" it up'""" in client


@pytest.mark.parametrize(("name", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pii_option_misuse_is_one_located_error(tmp_path: Path, name: str, body: str, expected: str) -> None:
    proto = write_proto(tmp_path / "src", f"acme/bad/v1/{name}.proto", HEADER + body)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out")
    assert run.returncode != 0
    assert run.errors == f"--prism_out: {proto}:{expected}"
    assert run.files() == {}
