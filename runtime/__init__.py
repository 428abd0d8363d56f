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
from prism_runtime.keyvalue import KeyValueStore, SortedKeyValueStore
from prism_runtime.schema import register
from prism_runtime.timeseries import Tail, TimeSeries

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "Database",
    "KeyValueStore",
    "NotOpen",
    "PrismError",
    "SchemaMismatch",
    "SortedKeyValueStore",
    "Tail",
    "TimeSeries",
    "connect",
    "register",
]
__version__ = "0.1.0"
