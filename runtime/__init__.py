"""prism_runtime: the thin shared runtime that Prism's generated clients run on."""

from prism_runtime.database import Database, connect
from prism_runtime.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    NotOpen,
    PrismError,
    SchemaMismatch,
)
from prism_runtime.graph import DEFAULT_FANOUT, Direction, EdgeStore, Graph, NodeStore, Visit
from prism_runtime.keyvalue import KeyValueStore, SortedKeyValueStore
from prism_runtime.schema import register
from prism_runtime.timeseries import Tail, TimeSeries

__all__ = [
    "DEFAULT_FANOUT",
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "Database",
    "Direction",
    "EdgeStore",
    "Graph",
    "KeyValueStore",
    "NodeStore",
    "NotOpen",
    "PrismError",
    "SchemaMismatch",
    "SortedKeyValueStore",
    "Tail",
    "TimeSeries",
    "Visit",
    "connect",
    "register",
]
__version__ = "0.1.0"
