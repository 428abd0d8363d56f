"""Emit a NACK Stream (jetstream.nats.io/v1beta2) and a `nats stream add --config` JSON per NATS entity."""

from __future__ import annotations

import json

from protoc_gen_prism.emitters import GeneratedFile
from protoc_gen_prism.emitters.manifest_text import dump_yaml, go_duration, header
from protoc_gen_prism.model import Schema
from protoc_gen_prism.naming import k8s_name
from protoc_gen_prism.planner import Plan, Plans
from protoc_gen_prism.settings import Settings


def emit(schema: Schema, plans: Plans, settings: Settings) -> list[GeneratedFile]:
    """Return manifests/nats/<namespace>.yaml and .json for every JetStream stream in the plan."""
    sources = {e.namespace: e.proto_file for e in schema.entities}
    out = []
    for plan in plans:
        if plan.nats is None:
            continue
        stem = f"manifests/nats/{plan.namespace}"
        out.append(GeneratedFile(f"{stem}.yaml", render_nack(plan, sources[plan.namespace])))
        out.append(GeneratedFile(f"{stem}.json", render_cli(plan)))
    return out


def render_nack(plan: Plan, source: str) -> str:
    """Return the NACK Stream YAML of one plan: durations as Go strings, storage always explicit."""
    stream = plan.nats
    assert stream is not None
    document = {
        "apiVersion": "jetstream.nats.io/v1beta2",
        "kind": "Stream",
        "metadata": {"name": k8s_name(stream.name), "labels": {"prism.dev/namespace": plan.namespace}},
        "spec": {
            "name": stream.name,
            "subjects": list(stream.subjects),
            "storage": stream.storage,
            "retention": stream.retention,
            "replicas": stream.replicas,
            "maxAge": go_duration(stream.max_age_ns),
            "maxBytes": stream.max_bytes,
            "discard": stream.discard,
            "duplicateWindow": go_duration(stream.duplicate_window_ns),
        },
    }
    return header(plan, source) + dump_yaml(document)


def render_cli(plan: Plan) -> str:
    """Return the `nats stream add --config FILE` JSON: snake_case, durations in nanoseconds."""
    stream = plan.nats
    assert stream is not None
    document = {
        "name": stream.name,
        "subjects": list(stream.subjects),
        "retention": stream.retention,
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": stream.max_bytes,
        "max_age": stream.max_age_ns,
        "max_msg_size": -1,
        "storage": stream.storage,
        "discard": stream.discard,
        "num_replicas": stream.replicas,
        "duplicate_window": stream.duplicate_window_ns,
    }
    return json.dumps(document, indent=2) + "\n"
