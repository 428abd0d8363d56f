"""Generated files, byte for byte: a change to the emitters shows up here as a reviewable diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES, PROTOS, run_protoc
from syrupy.assertion import SnapshotAssertion

SCHEMAS = [
    (EXAMPLES, "acme/events/v1/events.proto"),
    (EXAMPLES, "acme/users/v1/users.proto"),
    (EXAMPLES, "acme/orders/v1/orders.proto"),
    (PROTOS, "prismtest/types/v1/types.proto"),
    (PROTOS, "prismtest/pii/v1/pii.proto"),
    (EXAMPLES, "acme/social/v1/social.proto"),
    (PROTOS, "prismtest/graph/v1/graph.proto"),
    (PROTOS, "prismtest/expiry/v1/expiry.proto"),
]


@pytest.mark.parametrize(("root", "proto"), SCHEMAS, ids=[s[1] for s in SCHEMAS])
def test_generated_output(tmp_path: Path, root: Path, proto: str, snapshot: SnapshotAssertion) -> None:
    run = run_protoc(root, [proto], tmp_path)
    assert run.returncode == 0, run.stderr
    for name, content in run.files().items():
        assert content == snapshot(name=name)


@pytest.mark.parametrize("api", ["v1beta2", "v1"])
def test_kafka_topic_per_strimzi_api(tmp_path: Path, api: str, snapshot: SnapshotAssertion) -> None:
    run = run_protoc(EXAMPLES, ["acme/events/v1/events.proto"], tmp_path, parameter=f"strimzi_api={api}")
    assert run.returncode == 0, run.stderr
    for name, content in run.files().items():
        if name.startswith("manifests/kafka/"):
            assert content == snapshot(name=name)
