"""prism_runtime: the thin shared runtime that Prism's generated clients run on.

Names are imported on first use (PEP 562), so a tool that only needs the storage contract
(`prism_runtime.schema`, as the compiler does) does not load the drivers, the PII layer and the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prism_runtime import pii
    from prism_runtime.database import Database, connect
    from prism_runtime.errors import (
        BackendError,
        BackendUnavailable,
        ConfigError,
        CorruptRow,
        InvalidInput,
        InvalidKey,
        MessageTooDeep,
        NotOpen,
        PrismError,
        SchemaMismatch,
        WrongType,
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


_HOMES = {
    "pii": "prism_runtime.pii",
    "Database": "prism_runtime.database",
    "connect": "prism_runtime.database",
    "BackendError": "prism_runtime.errors",
    "BackendUnavailable": "prism_runtime.errors",
    "ConfigError": "prism_runtime.errors",
    "CorruptRow": "prism_runtime.errors",
    "InvalidInput": "prism_runtime.errors",
    "InvalidKey": "prism_runtime.errors",
    "MessageTooDeep": "prism_runtime.errors",
    "NotOpen": "prism_runtime.errors",
    "PrismError": "prism_runtime.errors",
    "SchemaMismatch": "prism_runtime.errors",
    "WrongType": "prism_runtime.errors",
    "DEFAULT_FANOUT": "prism_runtime.graph",
    "Direction": "prism_runtime.graph",
    "EdgeStore": "prism_runtime.graph",
    "Graph": "prism_runtime.graph",
    "NodeStore": "prism_runtime.graph",
    "Visit": "prism_runtime.graph",
    "KeyValueStore": "prism_runtime.keyvalue",
    "SortedKeyValueStore": "prism_runtime.keyvalue",
    "DecryptionError": "prism_runtime.pii",
    "ForgetReceipt": "prism_runtime.pii",
    "KeyRetired": "prism_runtime.pii",
    "SubjectForgotten": "prism_runtime.pii",
    "actor": "prism_runtime.pii",
    "forget": "prism_runtime.pii",
    "install_log_masking": "prism_runtime.pii",
    "register": "prism_runtime.schema",
    "Tail": "prism_runtime.timeseries",
    "TimeSeries": "prism_runtime.timeseries",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'prism_runtime' has no attribute {name!r}")
    value = (
        importlib.import_module(f"prism_runtime.{name}")
        if name == "pii"
        else getattr(importlib.import_module(home), name)
    )
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_FANOUT",
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "CorruptRow",
    "Database",
    "DecryptionError",
    "Direction",
    "EdgeStore",
    "ForgetReceipt",
    "Graph",
    "InvalidInput",
    "InvalidKey",
    "KeyRetired",
    "KeyValueStore",
    "MessageTooDeep",
    "NodeStore",
    "NotOpen",
    "PrismError",
    "SchemaMismatch",
    "SortedKeyValueStore",
    "SubjectForgotten",
    "Tail",
    "TimeSeries",
    "Visit",
    "WrongType",
    "actor",
    "connect",
    "forget",
    "install_log_masking",
    "pii",
    "register",
]
__version__ = "0.1.0"
