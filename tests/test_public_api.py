"""prism_runtime names its public API once, in its TYPE_CHECKING imports; the rest is read from those lines."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import prism_runtime


def imported_names() -> dict[str, str]:
    """The TYPE_CHECKING imports of prism_runtime/__init__.py as Python itself reads them."""
    tree = ast.parse(inspect.getsource(prism_runtime))
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    found: dict[str, str] = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom) and statement.module is not None
        for alias in statement.names:
            assert alias.asname == alias.name, f"{alias.name} is re-exported under its own name"
            found[alias.name] = statement.module
    return found


def test_all_and_the_lazy_imports_are_read_from_the_type_checking_imports() -> None:
    names = imported_names()
    assert len(names) == 41  # 32, and connect_sync, SyncDatabase and the seven Sync clients
    assert prism_runtime._public() == names
    assert prism_runtime.__all__ == sorted(names)
    assert set(names) <= set(dir(prism_runtime))
    for name, module in names.items():
        value = getattr(prism_runtime, name)
        home = sys.modules[f"{module}.{name}" if module == "prism_runtime" else module]
        assert value is (home if module == "prism_runtime" else getattr(home, name))


def test_a_star_import_gets_the_public_api_and_importing_loads_none_of_it() -> None:
    code = (
        "import sys, prism_runtime; lazy = 'prism_runtime.database' not in sys.modules; "
        "ns = {}; exec('from prism_runtime import *', ns); "
        "print(lazy, sorted(k for k in ns if not k.startswith('__')) == prism_runtime.__all__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
