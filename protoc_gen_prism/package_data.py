"""Find the data the compiler ships: jinja2 templates and the include directory of prism/options.proto.

The wheel carries them inside the package (`protoc_gen_prism/templates`, `protoc_gen_prism/include`); a
source checkout keeps them once, at the repository's top level (`templates/`, `proto/`). Paths are found
with os.path: the plugin process reads a template here, and importing pathlib would cost it about 3 ms.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_PACKAGE = os.path.dirname(os.path.realpath(__file__))
# Name inside the wheel -> the top-level folder it is built from.
_SOURCES = {"templates": "templates", "include": "proto"}


@cache
def data_path(name: str) -> str:
    """Return the directory of shipped data `name` ("templates" or "include")."""
    packaged = os.path.join(_PACKAGE, name)
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(_PACKAGE), _SOURCES[name])


def data_dir(name: str) -> Path:
    """Return data_path(name) as a Path."""
    from pathlib import Path

    return Path(data_path(name))
