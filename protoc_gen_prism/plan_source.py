"""Get a plan for the `prism` commands: compile a directory of .proto files, or read a prism.plan.json."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from protoc_gen_prism import protoc_runner
from protoc_gen_prism.emitters.plan_file import PLAN_FILE


class PlanUnavailable(Exception):
    """The plan could not be made: protoc's complaint, or a path that is neither a directory nor a plan."""


def load_plan(
    source: Path, *, profile: str | None = None, includes: list[Path] | None = None
) -> dict[str, Any]:
    """Return the plan of a proto directory (compiled with `profile`), a generated directory or a plan file."""
    if source.is_dir() and (source / PLAN_FILE).is_file():
        source = source / PLAN_FILE  # a generated directory: use the plan protoc wrote there
    if source.is_file():
        if profile is not None:
            raise PlanUnavailable(f"{source} is a plan already made; --profile applies to a proto directory")
        plan: dict[str, Any] = json.loads(source.read_text())
        return plan
    if not source.is_dir():
        raise PlanUnavailable(f"{source} is neither a directory of .proto files nor a {PLAN_FILE}")
    if not protoc_runner.find_protos(source):
        raise PlanUnavailable(f"{source} holds no .proto files and no {PLAN_FILE}")
    with tempfile.TemporaryDirectory(prefix="prism-plan-") as out:
        parameter = f"profile={profile}" if profile else ""
        result = protoc_runner.generate(
            source, Path(out), includes=includes, parameter=parameter, python=False
        )
        if result.returncode != 0:
            raise PlanUnavailable(result.stderr.strip())
        path = Path(out) / PLAN_FILE
        if not path.exists():
            return {"version": 1, "profile": profile or "production", "entities": []}
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
