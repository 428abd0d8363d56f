"""Real CodeGeneratorRequests for in-process plugin tests: captured from protoc, then answered by
`plugin.respond`, the very function the executable runs, with no process per request."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import yaml
from conftest import protoc_commands
from google.protobuf.compiler import plugin_pb2

from protoc_gen_prism.plugin import DUMP_ENV, respond
from protoc_gen_prism.protoc_runner import prism_include, tool


def capture_request(root: Path, files: list[str], work: Path) -> plugin_pb2.CodeGeneratorRequest:
    """Run protoc with the plugin on `files` under `root` and return the request protoc sent it."""
    saved = work / "request.bin"
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    # The plugin saves the request before answering it, so a schema it refuses is captured too.
    done = subprocess.run(
        [
            *protoc_commands()["grpcio-tools"],
            f"-I{root}",
            f"-I{prism_include()}",
            f"--plugin=protoc-gen-prism={tool('protoc-gen-prism')}",
            f"--prism_out={out}",
            *files,
        ],
        capture_output=True,
        env={**os.environ, DUMP_ENV: str(saved)},
        check=False,
        timeout=60,
    )
    assert saved.exists(), done.stderr
    return plugin_pb2.CodeGeneratorRequest.FromString(saved.read_bytes())


def problems_with(response: plugin_pb2.CodeGeneratorResponse) -> list[str]:
    """Return what is wrong with a response: it must be valid files, or one clean line per error."""
    if response.error:
        found = []
        if response.file:
            found.append("an error response also carries files")
        if "Traceback" in response.error or "internal error" in response.error:
            found.append(f"not a clean error: {response.error[:2000]}")
        for line in response.error.split("\n"):
            if not line.strip() or line != line.strip():
                found.append(f"an error line that is blank or indented: {line!r}")
        return found
    # No error and no file is a valid answer: none of the files to generate has a prism option.
    return [p for f in response.file if (p := _invalid(f.name, f.content))]


def _invalid(name: str, content: str) -> str:
    """Return why a generated file is not valid for its kind, or ''."""
    try:
        if name.endswith(".py"):
            ast.parse(content, name)
        elif name.endswith(".json"):
            json.loads(content)
        elif name.endswith((".yaml", ".yml")):
            list(yaml.safe_load_all(content))
    except (SyntaxError, ValueError, yaml.YAMLError) as error:
        return f"{name} is not valid: {error}"
    # A py.typed package marker (PEP 561) is empty by design; every other file says something.
    if not content.strip() and not name.endswith("/py.typed"):
        return f"{name} is empty"
    return ""


def answer(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Answer a request in-process; the response has been through the wire format, as protoc reads it."""
    response = respond(request)
    return plugin_pb2.CodeGeneratorResponse.FromString(response.SerializeToString())
