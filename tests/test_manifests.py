"""Kafka and NATS manifests: valid against the CRDs' field names and types, deterministic, from the plan."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, run_protoc
from hypothesis import given, settings
from hypothesis import strategies as st

from protoc_gen_prism.emitters import manifest_text
from protoc_gen_prism.emitters.manifest_text import dump_yaml, pyyaml_dump

# The subset of each CRD's openAPIV3Schema that Prism writes, transcribed from the Strimzi
# (KafkaTopic v1beta2) and NACK (Stream v1beta2) CRDs: every key Prism emits must be listed with its type.
STRIMZI_KAFKA_TOPIC: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"type": "string", "enum": ["kafka.strimzi.io/v1beta2"]},
        "kind": {"type": "string", "enum": ["KafkaTopic"]},
        "metadata": {
            "type": "object",
            "required": ["name", "labels"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                "labels": {
                    "type": "object",
                    "required": ["strimzi.io/cluster"],
                    "additional": {"type": "string"},
                },
            },
        },
        "spec": {
            "type": "object",
            "properties": {
                "topicName": {"type": "string"},
                "partitions": {"type": "integer", "minimum": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                # Strimzi passes configs to Kafka as written; Prism writes every value as a string.
                "config": {"type": "object", "additional": {"type": "string"}},
            },
        },
    },
}
# Strimzi 0.49's kafka.strimzi.io/v1 KafkaTopic (the only version from Strimzi 1.0): the same spec fields,
# types and bounds as v1beta2 (transcribed from packaging/install/cluster-operator/043-Crd-kafkatopic.yaml,
# version v1), with `spec` required at the top level.
STRIMZI_KAFKA_TOPIC_V1: dict[str, Any] = {
    **STRIMZI_KAFKA_TOPIC,
    "properties": {
        **STRIMZI_KAFKA_TOPIC["properties"],
        "apiVersion": {"type": "string", "enum": ["kafka.strimzi.io/v1"]},
    },
}
_DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
NACK_STREAM: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"type": "string", "enum": ["jetstream.nats.io/v1beta2"]},
        "kind": {"type": "string", "enum": ["Stream"]},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                "labels": {"type": "object", "additional": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["name", "subjects", "storage"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[^.*> \t]+$"},
                "subjects": {"type": "array", "items": {"type": "string"}},
                "storage": {"type": "string", "enum": ["file", "memory"]},
                "retention": {"type": "string", "enum": ["limits", "interest", "workqueue"]},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 5},
                "maxAge": {"type": "string", "pattern": _DURATION},
                "maxBytes": {"type": "integer", "minimum": -1},
                "discard": {"type": "string", "enum": ["old", "new"]},
                "duplicateWindow": {"type": "string", "pattern": _DURATION},
            },
        },
    },
}
# `nats stream add --config`: the JetStream API's StreamConfig JSON (snake_case, durations in ns).
NATS_STREAM_CONFIG: dict[str, Any] = {
    "type": "object",
    "required": ["name", "subjects", "retention", "storage", "num_replicas"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[^.*> \t]+$"},
        "subjects": {"type": "array", "items": {"type": "string"}},
        "retention": {"type": "string", "enum": ["limits", "interest", "workqueue"]},
        "max_consumers": {"type": "integer"},
        "max_msgs": {"type": "integer"},
        "max_bytes": {"type": "integer"},
        "max_age": {"type": "integer", "minimum": 0},
        "max_msg_size": {"type": "integer"},
        "storage": {"type": "string", "enum": ["file", "memory"]},
        "discard": {"type": "string", "enum": ["old", "new"]},
        "num_replicas": {"type": "integer", "minimum": 1, "maximum": 5},
        "duplicate_window": {"type": "integer", "minimum": 0},
    },
}

_TYPES = {"object": dict, "string": str, "integer": int, "array": list}


def check(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Return every way `value` breaks `schema` (names, types, enums, patterns, bounds)."""
    problems: list[str] = []
    kind = _TYPES[schema["type"]]
    if not isinstance(value, kind) or isinstance(value, bool):
        return [f"{path or '/'}: expected {schema['type']}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and not re.match(schema["pattern"], value):
        problems.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{path}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        problems.append(f"{path}: {value} > {schema['maximum']}")
    if kind is list:
        for i, item in enumerate(value):
            problems += check(item, schema["items"], f"{path}/{i}")
    if kind is dict:
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{path}/{name}: required")
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                problems += check(item, properties[name], f"{path}/{name}")
            elif "additional" in schema:
                problems += check(item, schema["additional"], f"{path}/{name}")
            else:
                problems.append(f"{path}/{name}: not a field of the CRD")
    return problems


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("manifests")
    run = run_protoc(EXAMPLES, ["acme/events/v1/events.proto"], target)
    assert run.returncode == 0, run.stderr
    return target


def test_kafka_topic_matches_the_strimzi_crd(out: Path) -> None:
    doc = yaml.safe_load((out / "manifests/kafka/acme_events_v1_click_event.yaml").read_text())
    assert check(doc, STRIMZI_KAFKA_TOPIC) == []
    assert doc["spec"] == {
        "topicName": "acme_events_v1_click_event",
        "partitions": 20,
        "replicas": 3,
        "config": {
            "cleanup.policy": "delete",
            "compression.type": "producer",
            "max.message.bytes": "1048588",
            "min.insync.replicas": "2",
            "retention.ms": "7776000000",
        },
    }
    assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "prism"


def test_strimzi_v1_topic_matches_the_v1_crd(out: Path, tmp_path: Path) -> None:
    run = run_protoc(EXAMPLES, ["acme/events/v1/events.proto"], tmp_path, parameter="strimzi_api=v1")
    assert run.returncode == 0, run.stderr
    name = "manifests/kafka/acme_events_v1_click_event.yaml"
    v1 = yaml.safe_load((tmp_path / name).read_text())
    assert check(v1, STRIMZI_KAFKA_TOPIC_V1) == []
    assert check(v1, STRIMZI_KAFKA_TOPIC) == [
        "/apiVersion: 'kafka.strimzi.io/v1' not in ['kafka.strimzi.io/v1beta2']"
    ]
    # Only the apiVersion differs from the default (v1beta2) manifest.
    default = yaml.safe_load((out / name).read_text())
    assert {**v1, "apiVersion": default["apiVersion"]} == default


def test_an_unknown_strimzi_api_lists_the_supported_ones(tmp_path: Path) -> None:
    run = run_protoc(EXAMPLES, ["acme/events/v1/events.proto"], tmp_path, parameter="strimzi_api=v2")
    assert run.returncode != 0
    assert "strimzi_api='v2' is not supported; allowed: v1beta2, v1" in run.errors
    assert not list(tmp_path.rglob("*.yaml"))


def test_nack_stream_matches_the_nack_crd(out: Path) -> None:
    doc = yaml.safe_load((out / "manifests/nats/acme_events_v1_stock_level.yaml").read_text())
    assert check(doc, NACK_STREAM) == []
    spec = doc["spec"]
    assert (spec["maxAge"], spec["duplicateWindow"], spec["storage"]) == ("168h", "2m", "file")
    assert spec["subjects"] == ["prism.acme_events_v1_stock_level.>"]


def test_nats_cli_config_matches_stream_config(out: Path) -> None:
    doc = json.loads((out / "manifests/nats/acme_events_v1_stock_level.json").read_text())
    assert check(doc, NATS_STREAM_CONFIG) == []
    assert doc["max_age"] == 7 * 86_400 * 10**9
    assert doc["duplicate_window"] == 120 * 10**9


def test_the_checker_catches_a_wrong_type_and_an_unknown_field() -> None:
    doc = {"apiVersion": "jetstream.nats.io/v1beta2", "kind": "Stream", "metadata": {"name": "x"}}
    doc["spec"] = {"name": "x", "subjects": ["a"], "storage": "file", "maxAge": 5, "max_age": "1h"}
    assert check(doc, NACK_STREAM) == [
        "/spec/maxAge: expected string, got int",
        "/spec/max_age: not a field of the CRD",
    ]


def test_only_planned_backends_get_manifests(out: Path) -> None:
    names = sorted(str(p.relative_to(out)) for p in (out / "manifests").rglob("*"))
    assert names == [
        "manifests/kafka",
        "manifests/kafka/acme_events_v1_click_event.yaml",
        "manifests/nats",
        "manifests/nats/acme_events_v1_stock_level.json",
        "manifests/nats/acme_events_v1_stock_level.yaml",
    ]


def test_manifests_are_byte_for_byte_deterministic(out: Path, tmp_path: Path) -> None:
    again = run_protoc(EXAMPLES, ["acme/events/v1/events.proto"], tmp_path)
    assert again.returncode == 0
    for path in (out / "manifests").rglob("*.*"):
        assert (tmp_path / path.relative_to(out)).read_bytes() == path.read_bytes()


# -- the manifests' YAML written directly (manifest_text.dump_yaml) against PyYAML's ---------------------

_WORDS = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_./>-]{0,30}", fullmatch=True),
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.from_regex(r"([0-9]{1,4}[hms]){1,3}", fullmatch=True),
    st.sampled_from(
        ["yes", "No", "TRUE", "off", "null", "y", "~", "", "1.5", ".inf", "09", "0o7", "a: b", "a #b"]
    ),
    st.sampled_from(["-x", "x:", "été", "two words", "'q'", '"q"', "12:30", "2024-01-01", "1e3", "<<", "="]),
)
_SCALARS = st.one_of(_WORDS, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none())
_DOCUMENTS = st.recursive(
    st.dictionaries(_WORDS, _SCALARS | st.lists(_SCALARS, max_size=3), max_size=4),
    lambda inner: st.dictionaries(_WORDS, inner | _SCALARS, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(document=_DOCUMENTS)
def test_manifest_yaml_is_pyyamls(document: dict[str, Any]) -> None:
    assert dump_yaml(document) == pyyaml_dump(document)


def test_the_manifests_yaml_is_written_without_pyyaml(out: Path) -> None:
    # Each manifest's document is within what dump_yaml writes itself: none falls back on PyYAML.
    manifests = sorted(out.rglob("manifests/**/*.yaml"))
    assert manifests
    for path in manifests:
        document = yaml.safe_load(path.read_text())
        lines: list[str] = []
        assert manifest_text._block(document, "", lines), path
        assert path.read_text().endswith("\n".join(lines) + "\n")
