"""Regenerate the compiled templates the plugin ships (protoc_gen_prism.templating.COMPILED).

Usage: python scripts/gen_templates.py [--check]
(--check exits 1, naming the stale modules, instead of writing them.)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from protoc_gen_prism.templating import COMPILED, compiled_module


def main(argv: list[str]) -> int:
    """Write (or with --check, compare) every compiled template module."""
    stale = []
    for name, module in COMPILED.items():
        spec = importlib.util.find_spec(module.rpartition(".")[0])
        assert spec is not None and spec.submodule_search_locations
        path = Path(next(iter(spec.submodule_search_locations))) / f"{module.rpartition('.')[2]}.py"
        text = compiled_module(name)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(str(path))
        if "--check" not in argv:
            path.write_text(text, encoding="utf-8")
    if stale and "--check" in argv:
        print("stale (run python scripts/gen_templates.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
