"""The closed sets of values Prism options may take; one StrEnum per option."""

from __future__ import annotations

from enum import StrEnum

# BackendKind, `(prism.backend)`'s values, is the runtime registry's: the kinds there are and what each
# serves are stated once, in prism_runtime.backends.registry.
from prism_runtime.backends.registry import BackendKind
from prism_runtime.schema import Abstraction

__all__ = ["AccessPattern", "BackendKind", "EdgeDirection", "PiiKind"]


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
