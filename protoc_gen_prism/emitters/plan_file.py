"""Emit prism.plan.json: the capacity plan of every entity in the request, in one file."""

from __future__ import annotations

import json
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
    return [GeneratedFile(PLAN_FILE, json.dumps(document(schema, plans), indent=2) + "\n")]


def document(schema: Schema, plans: Plans) -> dict[str, Any]:
    """Return the JSON document prism.plan.json holds for the plans of a schema."""
    return {
        "generated_by": f"protoc-gen-prism {__version__}. DO NOT EDIT.",
        "version": PLAN_VERSION,
        "profile": str(plans.profile),
        "sources": sorted({e.proto_file for e in schema.entities}),
        "entities": [p.to_json() for p in sorted(plans, key=lambda p: p.namespace)],
    }
