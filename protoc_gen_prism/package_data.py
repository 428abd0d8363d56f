"""Find the data the compiler ships: jinja2 templates and the include directory of prism/options.proto.

The wheel carries them inside the package (`protoc_gen_prism/templates`, `protoc_gen_prism/include`); a
source checkout keeps them once, at the repository's top level (`templates/`, `proto/`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# Name inside the wheel -> the top-level folder it is built from.
_SOURCES = {"templates": "templates", "include": "proto"}


@cache
def data_dir(name: str) -> Path:
    """Return the directory of shipped data `name` ("templates" or "include")."""
    packaged = _PACKAGE / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / _SOURCES[name]
