"""The planned settings of Kafka topics and JetStream streams, typed, and their form in prism.plan.json.

The compiler's planner builds these (its `Plan.kafka` / `Plan.nats` are these classes) and writes them with
`to_json`; provisioning takes them typed, built in-process by the CLI or read back from a plan file with
`planned_streams`. One definition of each field and of its JSON name, on the runtime side, because the
runtime never imports the compiler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TopicSettings:
    """A Kafka topic as planned; configs are strings, as Kafka and Strimzi take them."""

    name: str
    partitions: int
    replicas: int
    config: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """Return the `settings` object prism.plan.json holds for the topic."""
        return {
            "topic": self.name,
            "partitions": self.partitions,
            "replicas": self.replicas,
            "config": self.config,
        }

    @classmethod
    def from_json(cls, s: Mapping[str, Any]) -> TopicSettings:
        """Read the `settings` object of a kafka entity of prism.plan.json."""
        return cls(s["topic"], int(s["partitions"]), int(s["replicas"]), dict(s["config"]))


@dataclass(frozen=True)
class StreamSettings:
    """A JetStream stream as planned; durations in nanoseconds, sizes in bytes (-1: unlimited)."""

    name: str
    subjects: tuple[str, ...]
    replicas: int
    max_age_ns: int
    max_bytes: int
    duplicate_window_ns: int
    storage: str = "file"
    discard: str = "old"
    retention: str = "limits"

    def to_json(self) -> dict[str, object]:
        """Return the `settings` object prism.plan.json holds for the stream."""
        return {
            "stream": self.name,
            "subjects": list(self.subjects),
            "replicas": self.replicas,
            "max_age_ns": self.max_age_ns,
            "max_bytes": self.max_bytes,
            "duplicate_window_ns": self.duplicate_window_ns,
            "storage": self.storage,
            "discard": self.discard,
            "retention": self.retention,
        }

    @classmethod
    def from_json(cls, s: Mapping[str, Any]) -> StreamSettings:
        """Read the `settings` object of a nats entity of prism.plan.json."""
        return cls(
            name=s["stream"],
            subjects=tuple(s["subjects"]),
            replicas=int(s["replicas"]),
            max_age_ns=int(s["max_age_ns"]),
            max_bytes=int(s["max_bytes"]),
            duplicate_window_ns=int(s["duplicate_window_ns"]),
            storage=s["storage"],
            discard=s["discard"],
            retention=s["retention"],
        )


@dataclass(frozen=True)
class PlannedStream:
    """One namespace planned on a stream backend, with the settings provisioning brings the server to."""

    namespace: str
    settings: TopicSettings | StreamSettings

    @property
    def backend(self) -> str:
        """Return the backend kind: "kafka" or "nats"."""
        return "kafka" if isinstance(self.settings, TopicSettings) else "nats"


def planned_streams(plan: Mapping[str, Any]) -> list[PlannedStream]:
    """Return the topics and streams of a prism.plan.json document, typed (SQL entities are left out)."""
    out = []
    for entity in plan.get("entities", []):
        if entity.get("backend") == "kafka":
            out.append(PlannedStream(entity["namespace"], TopicSettings.from_json(entity["settings"])))
        elif entity.get("backend") == "nats":
            out.append(PlannedStream(entity["namespace"], StreamSettings.from_json(entity["settings"])))
    return out
