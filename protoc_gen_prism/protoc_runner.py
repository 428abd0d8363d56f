"""Run grpcio-tools' protoc with Prism's include paths and plugins: the engine of `prism generate`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from protoc_gen_prism.package_data import data_dir


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
    args = [
        f"-I{prism_include()}",
        f"--plugin=protoc-gen-prism={tool('protoc-gen-prism')}",
        f"--prism_out={out}",
    ]
    if parameter:
        args.append(f"--prism_opt={parameter}")
    if python:
        args += [
            f"--python_out={out}",
            f"--plugin=protoc-gen-mypy={tool('protoc-gen-mypy')}",
            f"--mypy_out={out}",
        ]
    return args


@dataclass(frozen=True)
class ProtocResult:
    """What protoc said and whether it succeeded."""

    returncode: int
    stderr: str


def find_protos(root: Path) -> list[Path]:
    """Return every .proto under `root`, sorted, relative to it."""
    return sorted(p.relative_to(root) for p in root.rglob("*.proto"))


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
    targets = files if files is not None else find_protos(proto_root)
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_root}",
        *(f"-I{p}" for p in includes or ()),
        f"-I{wkt_include()}",
        *plugin_args(out, parameter=parameter, python=python),
        *(str(t) for t in targets),
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    # protoc-gen-mypy prints a line per file it writes; keep only what a user must read.
    stderr = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("Writing mypy to "))
    return ProtocResult(done.returncode, stderr)
