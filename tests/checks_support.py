"""Helpers of the schema-check tests: write small schemas and run the real `prism` CLI on them."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from protoc_gen_prism.protoc_runner import tool

HEADER = 'syntax = "proto3";\npackage {package};\nimport "prism/options.proto";\n\n'


def write_schema(
    root: Path, body: str, name: str = "acme/app/v1/app.proto", package: str = "acme.app.v1"
) -> Path:
    """Write one .proto with the usual header (unless `body` has its own package) and return the root."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if "package " in body:
        text = 'syntax = "proto3";\nimport "prism/options.proto";\n' + body + "\n"
    else:
        text = HEADER.format(package=package) + body + "\n"
    path.write_text(text)
    return root


@dataclass(frozen=True)
class Run:
    """What one `prism` invocation printed and returned."""

    returncode: int
    stdout: str
    stderr: str

    def findings(self) -> list[tuple[str, str]]:
        """Return (rule, location) of each finding of a --format json run."""
        return [(f["rule"], f"{f['file']}:{f['line']}:{f['col']}") for f in json.loads(self.stdout or "[]")]

    def rules(self) -> list[str]:
        """Return the rule IDs of a --format json run, in output order."""
        return [rule for rule, _ in self.findings()]


def prism(*args: str | Path, cwd: Path | None = None) -> Run:
    """Run the installed `prism` command."""
    done = subprocess.run(
        [tool("prism"), *(str(a) for a in args)], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    return Run(done.returncode, done.stdout, done.stderr)
