"""Located, user-facing diagnostics: what is wrong, where, what is allowed, what was probably meant."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@functools.total_ordering
class Location:
    """A 1-based position in a .proto file (line 0: the file as a whole), immutable, ordered by file, line, col.

    The model builder gives every element and option a location, yet a compile that succeeds reads none of
    them, and finding positions means indexing all of a file's SourceCodeInfo. So a location may be
    `deferred`: its line and column are found the first time either is read.
    """

    __slots__ = ("_file", "_find", "_position")

    def __init__(self, file: str, line: int = 0, col: int = 0) -> None:
        self._file = file
        self._position: tuple[int, int] | None = (line, col)
        self._find: Callable[[], tuple[int, int]] | None = None

    @classmethod
    def deferred(cls, file: str, find: Callable[[], tuple[int, int]]) -> Location:
        """Return the location in `file` whose (line, col) `find` returns when first needed."""
        location = cls.__new__(cls)
        location._file = file
        location._position = None
        location._find = find
        return location

    @property
    def file(self) -> str:
        """The .proto file's name."""
        return self._file

    @property
    def line(self) -> int:
        """The 1-based line, 0 when only the file is known."""
        return self._where()[0]

    @property
    def col(self) -> int:
        """The 1-based column, 0 when only the file is known."""
        return self._where()[1]

    def _where(self) -> tuple[int, int]:
        if self._position is None:
            assert self._find is not None
            self._position, self._find = self._find(), None
        return self._position

    def _key(self) -> tuple[str, int, int]:
        return (self._file, *self._where())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        line, col = self._where()
        return f"Location(file={self._file!r}, line={line!r}, col={col!r})"

    def __str__(self) -> str:
        line, col = self._where()
        if line <= 0:
            return self._file
        return f"{self._file}:{line}:{col}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a schema, rendered as protoc renders its own errors."""

    location: Location
    element: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.element}: {self.message}"


class SchemaError(Exception):
    """Raised when a schema has diagnostics; carries all of them, sorted by location."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(diagnostics, key=lambda d: (d.location, d.element, d.message)))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


def allowed_values(value: str, allowed: Iterable[str]) -> str:
    """Say which values are allowed and, when one is close to what was written, suggest it."""
    import difflib  # only when a problem is reported

    choices = [str(a) for a in allowed]
    text = "allowed: " + ", ".join(choices)
    close = difflib.get_close_matches(value.lower(), choices, n=1, cutoff=0.6)
    if close:
        text += f"; did you mean {close[0]!r}?"
    return text
