"""Findings rendered for people (text), programs (json) and GitHub Actions (workflow-command annotations)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from enum import StrEnum

from protoc_gen_prism.checks.rules import RULES, Finding, Severity


class Format(StrEnum):
    """The output formats of `prism check` and `prism breaking`."""

    TEXT = "text"
    JSON = "json"
    GITHUB = "github"


def render(findings: Sequence[Finding], fmt: Format, path_prefix: str = "") -> str:
    """Return the findings in `fmt`; `path_prefix` turns .proto import paths into repository paths for GitHub."""
    ordered = sorted(findings)
    if fmt is Format.JSON:
        return json.dumps([_json(f) for f in ordered], indent=2)
    if fmt is Format.GITHUB:
        return "\n".join(_github(f, path_prefix) for f in ordered)
    return "\n".join(str(f) for f in ordered)


def summary(findings: Sequence[Finding]) -> str:
    """Return the one-line count of errors and warnings."""
    errors = sum(f.severity is Severity.ERROR for f in findings)
    return f"{errors} error(s), {len(findings) - errors} warning(s)"


def _json(f: Finding) -> dict[str, object]:
    return {
        "file": f.location.file,
        "line": f.location.line,
        "col": f.location.col,
        "rule": f.rule,
        "category": str(RULES[f.rule].category),
        "severity": str(f.severity),
        "message": f.message,
    }


def _github(f: Finding, path_prefix: str) -> str:
    prefix = path_prefix.rstrip("/")
    file = f"{prefix}/{f.location.file}" if prefix and prefix != "." else f.location.file
    props = [f"file={_escape_property(file)}"]
    if f.location.line > 0:
        props += [f"line={f.location.line}", f"col={f.location.col}"]
    props.append(f"title={_escape_property(f.rule)}")
    return f"::{f.severity} {','.join(props)}::{_escape_data(f.message)}"


def _escape_data(text: str) -> str:
    # GitHub's workflow-command encoding: % first, then line breaks.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options `prism check` and `prism breaking` share."""
    parser.add_argument("proto_root", help="directory containing the .proto files (also the include root)")
    parser.add_argument("-I", "--include", action="append", default=[], help="extra include directory")
    parser.add_argument(
        "--format",
        choices=list(Format),
        default=Format.TEXT,
        help="text (default), json or github annotations",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="config file (default: ./prism-check.yaml, else `checks:` in ./prism.yaml)",
    )


def emit(command: str, findings: Sequence[Finding], fmt: Format, path_prefix: str) -> int:
    """Print the findings to stdout and a summary to stderr; return 1 if any is an error, else 0."""
    text = render(findings, fmt, path_prefix)
    if text:
        print(text)
    print(f"prism {command}: {summary(findings)}", file=sys.stderr)
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0
