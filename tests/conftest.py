"""Shared test helpers: run the plugin through real protoc binaries and import what it generates."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from protoc_gen_prism.protoc_runner import plugin_args, wkt_include

pytest_plugins = ["servers"]

# Property tests explore new examples on every run by default; `.ci/run` sets HYPOTHESIS_PROFILE=ci, so the gate
# replays the same examples every time (a failure there is reproducible) while local runs keep searching.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "proto"
PROTOS = Path(__file__).resolve().parent / "protos"


@dataclass(frozen=True)
class ProtocRun:
    """The outcome of one protoc invocation."""

    returncode: int
    stderr: str
    out: Path

    @property
    def errors(self) -> str:
        """Return protoc's stderr without its warnings (unused imports and the like)."""
        return "\n".join(line for line in self.stderr.strip().splitlines() if ": warning: " not in line)

    def files(self) -> dict[str, str]:
        """Return every generated file by relative path."""
        return {
            str(p.relative_to(self.out)): p.read_text() for p in sorted(self.out.rglob("*")) if p.is_file()
        }


def protoc_commands() -> dict[str, list[str]]:
    """Return the protoc binaries to test with: grpcio-tools' always, Debian's when installed."""
    commands = {"grpcio-tools": [sys.executable, "-m", "grpc_tools.protoc", f"-I{wkt_include()}"]}
    system = shutil.which("protoc")
    if system is not None and Path(system).resolve().parent != Path(sys.executable).resolve().parent:
        commands["system"] = [system, "-I/usr/include"]
    return commands


def run_protoc(
    root: Path,
    files: list[str],
    out: Path,
    *,
    protoc: str = "grpcio-tools",
    parameter: str = "",
    python: bool = False,
) -> ProtocRun:
    """Run protoc on `files` (relative to `root`) with the prism plugin, and optionally python + mypy."""
    out.mkdir(parents=True, exist_ok=True)
    args = [
        *protoc_commands()[protoc],
        f"-I{root}",
        *plugin_args(out, parameter=parameter, python=python),
        *files,
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    return ProtocRun(done.returncode, done.stderr, out)


def write_proto(root: Path, name: str, text: str) -> str:
    """Write a .proto under `root` and return its relative name."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return name


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generate the example schemas and the test schemas once, and put them on sys.path."""
    out = tmp_path_factory.mktemp("gen")
    for root in (EXAMPLES, PROTOS):
        files = [str(p.relative_to(root)) for p in sorted(root.rglob("*.proto"))]
        run = run_protoc(root, files, out, python=True)
        assert run.returncode == 0, run.stderr
    sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    yield out
    sys.path.remove(str(out))


@pytest.fixture(scope="session")
def prism_generated(generated: Path) -> Path:
    """What Prism's pytest plugin provisions prism_db and prism_postgres from: the session's generated tree."""
    return generated


@pytest.fixture(scope="session", autouse=True)
def master_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the PII master key of stores that use the default one out of the working directory."""
    path = tmp_path_factory.mktemp("keys") / "master.key"
    previous = os.environ.get("PRISM_MASTER_KEY_FILE")
    os.environ["PRISM_MASTER_KEY_FILE"] = str(path)
    yield path
    if previous is None:
        del os.environ["PRISM_MASTER_KEY_FILE"]
    else:
        os.environ["PRISM_MASTER_KEY_FILE"] = previous
