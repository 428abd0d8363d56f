"""Import a backend's class (and its driver) on first use, and check it against its registry entry's contract.

The registry only states facts; this module acts on them, so it sits above both the registry and the contract,
which reads the registry's entries to check a class.
"""

from __future__ import annotations

import importlib

from prism_runtime.backends.contract import Backend, check_class
from prism_runtime.backends.registry import BackendEntry, entry
from prism_runtime.config import BackendUrl
from prism_runtime.extras import missing_extra

_loaded: dict[tuple[BackendEntry, bool], type[Backend]] = {}


def backend_class(kind: str, needed_for: str = "") -> type[Backend]:
    """Return the class of a backend kind, importing it (and its driver) on first use and checking it.

    A missing driver raises MissingExtra naming the extra that installs it (`needed_for` says what needed
    it; by default the kind's backend); a class that breaks its entry's contract raises BackendContractError.
    """
    return load_class(entry(kind), needed_for or f"the {kind} backend")


def load_class(wanted: BackendEntry, needed_for: str, *, blocking: bool = False) -> type[Backend]:
    """Import the class `wanted` names (its blocking driver, with `blocking`) and check it against the contract
    the entry declares (once)."""
    known = _loaded.get((wanted, blocking))
    if known is not None:
        return known
    module_name, class_name = wanted.module, wanted.class_name
    if blocking:
        assert wanted.blocking is not None, "callers ask for a blocking class only where the entry has one"
        module_name, class_name = wanted.blocking
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = missing_extra(error, needed_for)
        if missing is None:
            raise
        raise missing from None
    cls = check_class(getattr(module, class_name, None), wanted, f"{module_name}.{class_name}")
    _loaded[(wanted, blocking)] = cls
    return cls


def open_backend(url: BackendUrl, *, blocking: bool = False) -> Backend:
    """Return the backend of `url`, not yet opened (its class loaded and checked first).

    With `blocking`, the kind's blocking driver where it has one (see BackendEntry.blocking).
    """
    wanted = entry(url.kind)
    needed_for = f"the {url.kind} backend ({url.redacted})"
    return load_class(wanted, needed_for, blocking=blocking and wanted.blocking is not None)(url)
