"""Pure emitters: each is a function of the model (and plan) to generated files."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GeneratedFile:
    """One output file, its path relative to the output directory."""

    name: str
    content: str
