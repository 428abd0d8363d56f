"""Emit prism.plan.json: the capacity plan of every entity in the request, in one file."""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _string
from typing import Any

from protoc_gen_prism import __version__
from protoc_gen_prism.emitters import GeneratedFile
from protoc_gen_prism.model import Schema
from protoc_gen_prism.planner import Plans
from protoc_gen_prism.settings import Settings

PLAN_FILE = "prism.plan.json"
PLAN_VERSION = 1


def emit(schema: Schema, plans: Plans, settings: Settings) -> list[GeneratedFile]:
    """Return the one plan file, or nothing when the request has no entities."""
    if not plans:
        return []
    return [GeneratedFile(PLAN_FILE, indented_json(document(schema, plans)) + "\n")]


def document(schema: Schema, plans: Plans) -> dict[str, Any]:
    """Return the JSON document prism.plan.json holds for the plans of a schema."""
    return {
        "generated_by": f"protoc-gen-prism {__version__}. DO NOT EDIT.",
        "version": PLAN_VERSION,
        "profile": str(plans.profile),
        "sources": sorted({e.proto_file for e in schema.entities}),
        "entities": [p.to_json() for p in sorted(plans, key=lambda p: p.namespace)],
    }


def indented_json(value: object) -> str:
    """Return `json.dumps(value, indent=2)`, byte for byte, without the json module's pure-Python encoder.

    json.dumps only uses its C encoder without indent; with it, every value goes through nested generators,
    which on 10,000 entities takes longer than planning them. This writes the same text directly: strings
    and keys through the same C escaping (ASCII only), numbers as json writes them.
    """
    out: list[str] = []
    _write(value, out, "\n")
    return "".join(out)


def _write(value: object, out: list[str], newline: str) -> None:
    """Append `value` to `out`; `newline` is a newline and the indentation of the line `value` is on."""
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        before = "{" + inner
        for key, item in value.items():
            name = _string(key) if isinstance(key, str) else _string(_scalar(key))
            if isinstance(item, str):  # most values: written here rather than in a call of their own
                out.append(f"{before}{name}: {_string(item)}")
            else:
                out.append(f"{before}{name}: ")
                _write(item, out, inner)
            before = "," + inner
        out.append(newline + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        before = "[" + inner
        for item in value:
            if isinstance(item, str):
                out.append(before + _string(item))
            else:
                out.append(before)
                _write(item, out, inner)
            before = "," + inner
        out.append(newline + "]")
    elif isinstance(value, str):
        out.append(_string(value))
    else:
        out.append(_scalar(value))


def _scalar(value: object) -> str:
    # In json's order: bool before int (a bool is an int), and a float as float.__repr__ unless not finite.
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
