"""Located, user-facing diagnostics: what is wrong, where, what is allowed, what was probably meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based position in a .proto file."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


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
    choices = [str(a) for a in allowed]
    text = "allowed: " + ", ".join(choices)
    close = difflib.get_close_matches(value.lower(), choices, n=1, cutoff=0.6)
    if close:
        text += f"; did you mean {close[0]!r}?"
    return text
