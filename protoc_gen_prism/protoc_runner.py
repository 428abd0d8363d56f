"""Run grpcio-tools' protoc with Prism's include paths and plugins: the engine of `prism generate`."""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from protoc_gen_prism.package_data import data_dir
from protoc_gen_prism.vocabulary import FIELD_OPTION_NAMES, MESSAGE_OPTION_NAMES

# protoc's complaints about a prism option: one no imported file defines (misspelt, or the import missing),
# e.g. Option "(prism.acces_pattern)" unknown., and one set on the wrong element (a field option on a message).
_UNKNOWN_OPTION = re.compile(r'Option "\(prism\.([A-Za-z0-9_]+)\)[^"]*" unknown\.')
_MISPLACED_OPTION = re.compile(
    r'Option field "\(prism\.([A-Za-z0-9_]+)\)" is not a field or extension of message'
)
_OPTION_KINDS = {**{n: "field" for n in FIELD_OPTION_NAMES}, **{n: "message" for n in MESSAGE_OPTION_NAMES}}


def prism_include() -> Path:
    """Return the directory to pass with -I so that `import "prism/options.proto"` resolves."""
    return data_dir("include")


def wkt_include() -> Path:
    """Return grpcio-tools' directory of the well-known types (google/protobuf/*.proto)."""
    import grpc_tools  # type: ignore[import-untyped]

    return Path(grpc_tools.__file__).parent / "_proto"


def tool(name: str) -> str:
    """Return the path of an executable installed next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; pip install protoc-gen-prism provides it")
    return found


def plugin_args(out: Path, *, parameter: str = "", python: bool = True) -> list[str]:
    """Return protoc's arguments for the prism include path and plugin, and python + mypy stubs, into `out`."""
    return [f"-I{prism_include()}", *_plugin_outputs(out, parameter=parameter, python=python)]


def _plugin_outputs(out: Path, *, parameter: str, python: bool) -> list[str]:
    args = [f"--plugin=protoc-gen-prism={tool('protoc-gen-prism')}", f"--prism_out={out}"]
    if parameter:
        args.append(f"--prism_opt={parameter}")
    if python:
        args += [
            f"--python_out={out}",
            f"--plugin=protoc-gen-mypy={tool('protoc-gen-mypy')}",
            f"--mypy_out={out}",
        ]
    return args


def protoc_command(
    proto_root: Path, targets: Sequence[Path | str], outputs: Sequence[str], includes: Sequence[Path] = ()
) -> list[str]:
    """Return the whole grpcio-tools protoc command: the one place its include path is put together.

    The proto root first, then the caller's include directories, Prism's options and the well-known types;
    `outputs` are the output flags (plugins, --descriptor_set_out, ...).
    """
    return [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_root}",
        *(f"-I{p}" for p in includes),
        f"-I{prism_include()}",
        f"-I{wkt_include()}",
        *outputs,
        *(str(t) for t in targets),
    ]


@dataclass(frozen=True)
class ProtocResult:
    """What protoc said and whether it succeeded."""

    returncode: int
    stderr: str


VOCABULARY = Path("prism/options.proto")


def find_protos(root: Path) -> list[Path]:
    """Return every .proto under `root`, sorted, relative to it."""
    return sorted(p.relative_to(root) for p in root.rglob("*.proto"))


def generation_targets(root: Path) -> list[Path]:
    """Return the .proto files under `root` to generate code for: all but a vendored prism/options.proto.

    The vocabulary is imported, never generated: the runtime ships `prism.options_pb2`, and a generated copy
    would only shadow it (buf.gen.yaml from `prism init` excludes it the same way).
    """
    return [p for p in find_protos(root) if p != VOCABULARY]


def generate(
    proto_root: Path,
    out: Path,
    *,
    files: list[Path] | None = None,
    includes: list[Path] | None = None,
    parameter: str = "",
    python: bool = True,
) -> ProtocResult:
    """Generate *_pb2.py, *_pb2.pyi and Prism output for the .proto files under `proto_root` into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    targets = files if files is not None else generation_targets(proto_root)
    args = protoc_command(
        proto_root, targets, _plugin_outputs(out, parameter=parameter, python=python), includes or ()
    )
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    # protoc-gen-mypy prints a line per file it writes; keep only what a user must read.
    stderr = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("Writing mypy to "))
    return ProtocResult(done.returncode, explain_unknown_options(stderr))


def explain_unknown_options(stderr: str) -> str:
    """Add to each of protoc's "unknown option" lines about a prism option what was probably meant.

    protoc only says the option is unknown and to check the imports; a misspelt name (`acces_pattern`) gets
    the closest Prism option, and a Prism option used on the wrong element gets the element it belongs on.
    """
    return "\n".join(_explain_line(line) for line in stderr.split("\n"))


def _explain_line(line: str) -> str:
    unknown = _UNKNOWN_OPTION.search(line)
    found = unknown or _MISPLACED_OPTION.search(line)
    if found is None:
        return line
    name = found.group(1)
    kind = _OPTION_KINDS.get(name)
    if kind is not None and unknown is not None:
        return f'{line} Add `import "prism/options.proto";` to this file to use (prism.{name}).'
    if kind is not None:
        return f"{line} (prism.{name}) is a {kind} option: it goes on a {kind}."
    close = difflib.get_close_matches(name, list(_OPTION_KINDS), n=1, cutoff=0.6)
    if close:
        return f"{line} Did you mean (prism.{close[0]}), a {_OPTION_KINDS[close[0]]} option?"
    return f"{line} Prism's options are: {', '.join(f'(prism.{n})' for n in _OPTION_KINDS)}."
