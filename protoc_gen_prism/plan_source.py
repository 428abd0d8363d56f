"""Get a plan for the `prism` commands: compile a directory of .proto files in-process, or read a prism.plan.json.

A .proto directory is compiled to a descriptor image by protoc and then planned here, typed, by the same
stages the plugin runs (no plugin process, no plan file on disk); a generated directory or a plan file is
read back from the JSON the plugin wrote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prism_runtime.stream_plans import PlannedStream, planned_streams
from protoc_gen_prism import protoc_runner
from protoc_gen_prism.diagnostics import SchemaError
from protoc_gen_prism.emitters import GeneratedFile
from protoc_gen_prism.emitters.plan_file import PLAN_FILE, PLAN_VERSION, document
from protoc_gen_prism.generator import emit, plan
from protoc_gen_prism.images import ImageError, compile_image
from protoc_gen_prism.model_builder import build_schema
from protoc_gen_prism.settings import Profile, Settings


class PlanUnavailable(Exception):
    """The plan could not be made: protoc's complaint, or a path that is neither a directory nor a plan."""


@dataclass(frozen=True)
class LoadedPlan:
    """A plan as the commands use it: the prism.plan.json document, and its topics and streams typed."""

    document: dict[str, Any]
    streams: tuple[PlannedStream, ...]


@dataclass(frozen=True)
class Compiled:
    """A .proto directory compiled in-process: its plan and every file the plugin would write."""

    plan: LoadedPlan
    files: tuple[GeneratedFile, ...]


def load_plan(source: Path, *, profile: str | None = None, includes: Sequence[Path] = ()) -> LoadedPlan:
    """Return the plan of a proto directory (compiled with `profile`), a generated directory or a plan file."""
    if source.is_dir() and (source / PLAN_FILE).is_file():
        source = source / PLAN_FILE  # a generated directory: use the plan protoc wrote there
    if source.is_file():
        if profile is not None:
            raise PlanUnavailable(f"{source} is a plan already made; --profile applies to a proto directory")
        loaded: dict[str, Any] = json.loads(source.read_text())
        return LoadedPlan(loaded, tuple(planned_streams(loaded)))
    if not source.is_dir():
        raise PlanUnavailable(f"{source} is neither a directory of .proto files nor a {PLAN_FILE}")
    if not protoc_runner.find_protos(source):
        raise PlanUnavailable(f"{source} holds no .proto files and no {PLAN_FILE}")
    return compile_protos(source, profile=profile, includes=includes).plan


def compile_protos(source: Path, *, profile: str | None = None, includes: Sequence[Path] = ()) -> Compiled:
    """Compile a .proto directory in-process: model, validate, plan once, then the emitters."""
    settings = Settings(profile=Profile(profile) if profile else Profile.PRODUCTION)
    try:
        image = compile_image(source, includes)
        schema = build_schema(image.files, image.targets)
        plans = plan(schema, settings.profile)
    except (ImageError, SchemaError) as error:
        raise PlanUnavailable(str(error)) from None
    if plans:
        loaded = LoadedPlan(document(schema, plans), tuple(plans.streams()))
    else:
        loaded = LoadedPlan({"version": PLAN_VERSION, "profile": str(settings.profile), "entities": []}, ())
    return Compiled(loaded, tuple(emit(schema, plans, settings)))
