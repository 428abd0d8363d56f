"""The DDL render cache: sqlglot renderings of statements with sentinel names, kept for reuse per shape.

Rendering a CREATE TABLE costs about 0.5 ms, nearly all of it in sqlglot, and a schema of a thousand tables
has only a few dozen shapes; `protoc_gen_prism.sql.ddl.ddl_statements` renders each shape once with
sentinel names and splices the real names in. Measured on bench/synthetic.py's 1000 entities: about 0.1 s
per dialect with the cache against 1.4 to 2.5 s without, three renders per plugin run (postgres and sqlite
DDL files, the SQLite DDL in the generated clients); so the cache stays, and lives here, apart from the DDL.

This module holds the cache and the sentinel text handling; what is cached (which stand-in is rendered for
a shape) is the DDL module's business.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""Names spliced into a rendering: no dialect quotes or escapes them differently by context."""
_SENTINEL = re.compile(r"prism_([tnl])(\d+)_x+")

Frame = list[str | tuple[str, int]]
"""A rendering split at its sentinels: literal text alternating with (role, index) holes."""
Line = tuple[str, str]
"""A column definition split around the column's name."""

_V = TypeVar("_V")


def sentinel(role: str, index: int = 0, length: int = 0) -> str:
    """Return the stand-in name for a hole: t (the table), n (a name), l (a whole column line).

    Padded to `length`: pretty layout may wrap a list (as RANGE(...)) by the length of the names in it.
    """
    stem = f"prism_{role}{index}_"
    return stem + "x" * max(1, length - len(stem))


def frame_length(name: str) -> int:
    """Return the sentinel length for a name: its own, or 16 when shorter, so that one frame serves short
    names of any length (far below the 80 characters at which a pretty list wraps)."""
    return max(len(name), 16)


def split_frame(text: str) -> Frame:
    """Split a rendering at its sentinels."""
    pieces = _SENTINEL.split(text)
    frame: Frame = []
    for i in range(0, len(pieces) - 1, 3):
        frame += (pieces[i], (pieces[i + 1], int(pieces[i + 2])))
    frame.append(pieces[-1])
    return frame


def fill(frame: Frame, names: Sequence[str]) -> str:
    """Return a frame of name holes only, with the names put in."""
    return "".join(part if isinstance(part, str) else names[part[1]] for part in frame)


class RenderCache:
    """Renderings by shape: CREATE TABLE frames, other statements' frames and column lines."""

    def __init__(self) -> None:
        self.frames: dict[tuple[object, ...], Frame | None] = {}
        self.splices: dict[tuple[object, ...], Frame] = {}
        self.lines: dict[tuple[object, ...], Line | None] = {}

    def frame(self, key: tuple[object, ...], render: Callable[[], Frame | None]) -> Frame | None:
        """Return the CREATE TABLE frame of a shape (None: such tables are rendered whole)."""
        return _memo(self.frames, key, render)

    def splice(self, key: tuple[object, ...], render: Callable[[], Frame]) -> Frame:
        """Return the frame of another statement (an index, a partition) of a shape."""
        return _memo(self.splices, key, render)

    def line(self, key: tuple[object, ...], render: Callable[[], Line | None]) -> Line | None:
        """Return a column line of a shape (None: a column rendered on several lines)."""
        return _memo(self.lines, key, render)


def _memo(store: dict[tuple[object, ...], _V], key: tuple[object, ...], render: Callable[[], _V]) -> _V:
    if key not in store:
        store[key] = render()
    return store[key]


CACHE = RenderCache()
"""The plugin's cache: one process compiles one request, and shapes repeat across its files and dialects."""
