"""Emit a Strimzi KafkaTopic per entity planned on Kafka.

`--prism_opt=strimzi_api=v1|v1beta2` picks the apiVersion (default v1beta2). The KafkaTopic spec Prism writes
(topicName, partitions, replicas, config) is the same in both CRD versions, so only apiVersion differs.
"""

from __future__ import annotations

from protoc_gen_prism.emitters import GeneratedFile
from protoc_gen_prism.emitters.manifest_text import dump_yaml, header
from protoc_gen_prism.model import Schema
from protoc_gen_prism.naming import k8s_name
from protoc_gen_prism.planner import Plan, Plans
from protoc_gen_prism.settings import Settings, StrimziApi

STRIMZI_CLUSTER = "prism"
"""The `strimzi.io/cluster` label: the Kafka cluster resource the Topic Operator manages topics for."""


def emit(schema: Schema, plans: Plans, settings: Settings) -> list[GeneratedFile]:
    """Return manifests/kafka/<namespace>.yaml for every Kafka topic in the plan."""
    sources = {e.namespace: e.proto_file for e in schema.entities}
    return [
        GeneratedFile(
            f"manifests/kafka/{p.namespace}.yaml", render(p, sources[p.namespace], settings.strimzi_api)
        )
        for p in plans
        if p.kafka is not None
    ]


def render(plan: Plan, source: str, api: StrimziApi = StrimziApi.V1BETA2) -> str:
    """Return the KafkaTopic YAML of one plan."""
    topic = plan.kafka
    assert topic is not None
    document = {
        "apiVersion": f"kafka.strimzi.io/{api}",
        "kind": "KafkaTopic",
        "metadata": {
            "name": k8s_name(topic.name),
            "labels": {"strimzi.io/cluster": STRIMZI_CLUSTER, "prism.dev/namespace": plan.namespace},
        },
        "spec": {
            # metadata.name cannot hold '_', so the real topic name is spelled out.
            "topicName": topic.name,
            "partitions": topic.partitions,
            "replicas": topic.replicas,
            "config": dict(sorted(topic.config.items())),
        },
    }
    return header(plan, source) + dump_yaml(document)
