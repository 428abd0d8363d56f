"""Prism's option vocabulary: the option names, read from options.proto's own descriptor, and the closed sets
of values the options may take (one StrEnum per option)."""

from __future__ import annotations

from enum import StrEnum

from google.protobuf import descriptor_pb2

from prism import options_pb2

# BackendKind, `(prism.backend)`'s values, is the runtime registry's: the kinds there are and what each
# serves are stated once, in prism_runtime.backends.registry.
from prism_runtime.backends.registry import BackendKind
from prism_runtime.schema import Abstraction

__all__ = [
    "FIELD_OPTION_NAMES",
    "MESSAGE_OPTION_NAMES",
    "AccessPattern",
    "BackendKind",
    "EdgeDirection",
    "PiiKind",
]


def _option_names(extendee: str) -> tuple[str, ...]:
    # The compiled options.proto the runtime ships, in declaration order: adding an option there is enough.
    file = descriptor_pb2.FileDescriptorProto.FromString(options_pb2.DESCRIPTOR.serialized_pb)
    return tuple(e.name for e in file.extension if e.extendee == f".google.protobuf.{extendee}")


MESSAGE_OPTION_NAMES = _option_names("MessageOptions")
"""The message options of options.proto: `(prism.access_pattern)` and the rest."""
FIELD_OPTION_NAMES = _option_names("FieldOptions")
"""The field options of options.proto: `(prism.pii)` and the rest."""


class AccessPattern(StrEnum):
    """How an application uses a message's data: `(prism.access_pattern)`."""

    KEY_VALUE = "key_value"
    READ_HEAVY = "read_heavy"
    WRITE_HEAVY = "write_heavy"
    APPEND_HEAVY = "append_heavy"
    GRAPH_NODE = "graph_node"
    GRAPH_EDGE = "graph_edge"

    @property
    def abstraction(self) -> Abstraction:
        """Return the data abstraction that serves this pattern."""
        if self is AccessPattern.APPEND_HEAVY:
            return Abstraction.TIME_SERIES
        if self in (AccessPattern.GRAPH_NODE, AccessPattern.GRAPH_EDGE):
            return Abstraction.GRAPH
        return Abstraction.KEY_VALUE


class PiiKind(StrEnum):
    """The kind of personal data a field holds: `(prism.pii)`."""

    EMAIL = "email"
    SSN = "ssn"
    PHONE = "phone"
    NAME = "name"
    ADDRESS = "address"
    DOB = "dob"
    IP = "ip"
    CREDIT_CARD = "credit_card"
    GENERIC = "generic"


class EdgeDirection(StrEnum):
    """Whether a graph edge may be followed against its direction: `(prism.edge_direction)`."""

    UNIDIRECTIONAL = "unidirectional"
    BIDIRECTIONAL = "bidirectional"
