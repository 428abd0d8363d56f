"""prism_runtime: the thin shared runtime that Prism's generated clients run on."""

from prism_runtime import pii
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
from prism_runtime.pii import (
    DecryptionError,
    ForgetReceipt,
    KeyRetired,
    SubjectForgotten,
    actor,
    forget,
    install_log_masking,
)
from prism_runtime.schema import register
from prism_runtime.timeseries import Tail, TimeSeries

__all__ = [
    "DEFAULT_FANOUT",
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "Database",
    "DecryptionError",
    "Direction",
    "EdgeStore",
    "ForgetReceipt",
    "Graph",
    "KeyRetired",
    "KeyValueStore",
    "NodeStore",
    "NotOpen",
    "PrismError",
    "SchemaMismatch",
    "SortedKeyValueStore",
    "SubjectForgotten",
    "Tail",
    "TimeSeries",
    "Visit",
    "actor",
    "connect",
    "forget",
    "install_log_masking",
    "pii",
    "register",
]
__version__ = "0.1.0"
