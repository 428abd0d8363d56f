"""prism_runtime: the thin shared runtime that Prism's generated clients run on.

Names are imported on first use (PEP 562), so a tool that only needs the storage contract
(`prism_runtime.schema`, as the compiler does) does not load the drivers, the PII layer and the rest.

The public API is named once, by the `TYPE_CHECKING` imports below: type checkers read them as they are, and
`__all__` and where each name is imported from at run time are read from the same lines, on first use.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prism_runtime import pii as pii
    from prism_runtime.database import Database as Database
    from prism_runtime.database import connect as connect
    from prism_runtime.errors import (
        BackendError as BackendError,
    )
    from prism_runtime.errors import (
        BackendUnavailable as BackendUnavailable,
    )
    from prism_runtime.errors import (
        ConfigError as ConfigError,
    )
    from prism_runtime.errors import (
        CorruptRow as CorruptRow,
    )
    from prism_runtime.errors import (
        InvalidInput as InvalidInput,
    )
    from prism_runtime.errors import (
        InvalidKey as InvalidKey,
    )
    from prism_runtime.errors import (
        MessageTooDeep as MessageTooDeep,
    )
    from prism_runtime.errors import (
        NotOpen as NotOpen,
    )
    from prism_runtime.errors import (
        PrismError as PrismError,
    )
    from prism_runtime.errors import (
        SchemaMismatch as SchemaMismatch,
    )
    from prism_runtime.errors import (
        WrongType as WrongType,
    )
    from prism_runtime.graph import (
        DEFAULT_FANOUT as DEFAULT_FANOUT,
    )
    from prism_runtime.graph import (
        Direction as Direction,
    )
    from prism_runtime.graph import (
        EdgeStore as EdgeStore,
    )
    from prism_runtime.graph import (
        Graph as Graph,
    )
    from prism_runtime.graph import (
        NodeStore as NodeStore,
    )
    from prism_runtime.graph import (
        Visit as Visit,
    )
    from prism_runtime.keyvalue import (
        KeyValueStore as KeyValueStore,
    )
    from prism_runtime.keyvalue import (
        SortedKeyValueStore as SortedKeyValueStore,
    )
    from prism_runtime.pii import (
        DecryptionError as DecryptionError,
    )
    from prism_runtime.pii import (
        ForgetReceipt as ForgetReceipt,
    )
    from prism_runtime.pii import (
        KeyRetired as KeyRetired,
    )
    from prism_runtime.pii import (
        SubjectForgotten as SubjectForgotten,
    )
    from prism_runtime.pii import (
        actor as actor,
    )
    from prism_runtime.pii import (
        install_log_masking as install_log_masking,
    )
    from prism_runtime.pii.forget import forget as forget  # not via pii: mypy may see the submodule there
    from prism_runtime.schema import register as register
    from prism_runtime.sync_clients import SyncEdgeStore as SyncEdgeStore
    from prism_runtime.sync_clients import SyncGraph as SyncGraph
    from prism_runtime.sync_clients import SyncKeyValueStore as SyncKeyValueStore
    from prism_runtime.sync_clients import SyncNodeStore as SyncNodeStore
    from prism_runtime.sync_clients import SyncSortedKeyValueStore as SyncSortedKeyValueStore
    from prism_runtime.sync_clients import SyncTail as SyncTail
    from prism_runtime.sync_clients import SyncTimeSeries as SyncTimeSeries
    from prism_runtime.sync_database import SyncDatabase as SyncDatabase
    from prism_runtime.sync_database import connect_sync as connect_sync
    from prism_runtime.timeseries import Tail as Tail
    from prism_runtime.timeseries import TimeSeries as TimeSeries


_homes: dict[str, str] = {}


def _public() -> dict[str, str]:
    """Return each public name's module, read from this file's `if TYPE_CHECKING:` imports (once).

    Read as text, not with `ast`: importing and running ast costs a service's start-up about 5 ms, and
    these lines are plain `from MODULE import NAME as NAME` statements (tests/test_public_api.py checks).
    """
    if not _homes:
        loader = __spec__.loader if __spec__ is not None else None
        source = loader.get_source(__name__) if loader is not None else None  # type: ignore[attr-defined]
        if source is None:
            raise ImportError(f"{__name__}: its source, which names the public API, cannot be read")
        block = source.split("\nif TYPE_CHECKING:\n", 1)[1].split("\n\n", 1)[0]
        for module, names in re.findall(r"from ([\w.]+) import (\([^)]*\)|.*)", block):
            _homes.update((name.split()[0], module) for name in names.strip("()").split(",") if name.strip())
    return _homes


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_public())
    home = _public().get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # `from prism_runtime import pii` names a subpackage; every other name is an attribute of its module.
    value = (
        importlib.import_module(f"{home}.{name}")
        if home == __name__
        else getattr(importlib.import_module(home), name)
    )
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_public()})


__version__ = "0.1.0"
