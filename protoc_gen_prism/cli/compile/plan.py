"""`prism plan`: print the capacity plan of a proto directory as a table, with the binding of a config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prism_runtime.config import Config, load_config
from prism_runtime.errors import ConfigError
from protoc_gen_prism.plan_source import PlanUnavailable, load_plan
from protoc_gen_prism.settings import Profile


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser("plan", help="print where each namespace lives, with what settings, and why")
    parser.add_argument("source", help="directory of .proto files, or a prism.plan.json")
    parser.add_argument(
        "--config", help="prism.yaml: also show which configured backend each namespace binds to"
    )
    parser.add_argument("--profile", choices=list(Profile), help="deployment profile (default: production)")
    parser.add_argument("-I", "--include", action="append", default=[], help="extra include directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the plan table; 2 on a plan or config that cannot be read."""
    try:
        plan = load_plan(
            Path(args.source), profile=args.profile, includes=[Path(p) for p in args.include]
        ).document
        binding = bindings(plan, load_config(None, args.config)) if args.config else None
    except (PlanUnavailable, ConfigError) as error:
        print(f"prism plan: {error}", file=sys.stderr)
        return 2
    print(render(plan, binding))
    return 0


def bindings(plan: Mapping[str, Any], config: Config) -> dict[str, str]:
    """Return, per namespace of the plan, the backend kind and URL (redacted) the config binds it to."""
    out = {}
    for entity in plan["entities"]:
        kind = config.kind_for(entity["namespace"], entity["backend"])
        out[entity["namespace"]] = f"{kind} ({config.backends[kind].redacted})"
    return out


def summary(settings: Mapping[str, Any]) -> str:
    """Return the settings of one plan in a few words."""
    if "topic" in settings:
        config = settings["config"]
        return f"{settings['partitions']} partitions x{settings['replicas']}, retention.ms={config['retention.ms']}"
    if "stream" in settings:
        days = settings["max_age_ns"] / 86_400e9
        age = f"max_age {days:g}d" if days else "max_age unlimited"
        return f"replicas {settings['replicas']}, {age}, max_bytes {settings['max_bytes']}"
    if settings.get("partition_by"):
        return f"table, daily partitions dropped after {settings['drop_after_days']}d"
    if settings.get("ttl_seconds"):
        return f"table, items expire after {settings['ttl_seconds']}s"
    return "table"


def render(plan: Mapping[str, Any], binding: Mapping[str, str] | None = None) -> str:
    """Return the plan as an aligned text table followed by every reason."""
    header = ["NAMESPACE", "ABSTRACTION", "BACKEND", "SETTINGS", "WHY"]
    if binding is not None:
        header.insert(3, "BOUND TO")
    rows = []
    for e in plan["entities"]:
        row = [e["namespace"], e["abstraction"], e["backend"], summary(e["settings"]), e["rationale"][0]]
        if binding is not None:
            row.insert(3, binding[e["namespace"]])
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
        for r in [header, *rows]
    ]
    lines.append("")
    lines.append(f"profile: {plan.get('profile', 'production')}")
    for e in plan["entities"]:
        lines.append(f"{e['namespace']}:")
        lines += [f"  - {reason}" for reason in e["rationale"]]
    return "\n".join(lines)
