"""Descriptor images: a FileDescriptorSet with source info, compiled from .proto files, a saved file or a git ref.

`prism snapshot`, `prism check`, `prism breaking` and `prism migrate` all read schemas through this module,
so the baseline and the current schema are compiled the same way and build the same model.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from google.protobuf import descriptor_pb2

from protoc_gen_prism.diagnostics import SchemaError
from protoc_gen_prism.generator import plan
from protoc_gen_prism.model import Schema
from protoc_gen_prism.model_builder import build_schema
from protoc_gen_prism.planner import Plan
from protoc_gen_prism.protoc_runner import explain_unknown_options, find_protos, protoc_command
from protoc_gen_prism.settings import Profile

# Files every image carries as imports; they are Prism's and protobuf's, never the user's schema.
_NOT_TARGETS = ("google/protobuf/", "prism/options.proto")
_GIT_RE = re.compile(r"^(?P<repo>.*?\.git)#(?P<params>.+)$")


class ImageError(Exception):
    """A schema or baseline that cannot be compiled or read; the message says what to do."""


@dataclass(frozen=True)
class Image:
    """Every file of a compiled schema in dependency order, imports included."""

    files: tuple[descriptor_pb2.FileDescriptorProto, ...]

    @cached_property
    def targets(self) -> tuple[str, ...]:
        """Return the names of the user's own files: everything but the prism vocabulary and well-known types."""
        return tuple(f.name for f in self.files if not f.name.startswith(_NOT_TARGETS))

    @cached_property
    def by_name(self) -> dict[str, descriptor_pb2.FileDescriptorProto]:
        """Return each file by its import path."""
        return {f.name: f for f in self.files}

    @cached_property
    def _model(self) -> tuple[Schema, dict[str, Plan]] | SchemaError:
        try:
            schema = build_schema(self.files, self.targets)
            # The plugin also refuses what cannot be planned (an explicit backend that cannot serve the entity).
            plans = plan(schema, Profile.PRODUCTION)
        except SchemaError as error:
            return error
        return schema, {p.message: p for p in plans}

    def schema(self) -> Schema:
        """Return the model of the image's files, built once, as the plugin would (raises SchemaError)."""
        model = self._model
        if isinstance(model, SchemaError):
            raise model
        return model[0]

    def plans(self) -> dict[str, Plan]:
        """Return the production plan of every entity by message full name (raises SchemaError)."""
        model = self._model
        if isinstance(model, SchemaError):
            raise model
        return model[1]

    def serialize(self) -> bytes:
        """Return the image as a serialized FileDescriptorSet."""
        return descriptor_pb2.FileDescriptorSet(file=self.files).SerializeToString(deterministic=True)


class Compilation:
    """A protoc run in progress, so that a caller can do other work (build the baseline model) meanwhile."""

    def __init__(self, root: Path, includes: Sequence[Path] = ()) -> None:
        if not root.is_dir():
            raise ImageError(f"{root} is not a directory of .proto files")
        targets = find_protos(root)
        if not targets:
            raise ImageError(f"{root} holds no .proto files")
        self.root = root
        self._tmp = tempfile.TemporaryDirectory(prefix="prism-image-")
        self._out = Path(self._tmp.name) / "image.binpb"
        outputs = ["--include_imports", "--include_source_info", f"--descriptor_set_out={self._out}"]
        args = protoc_command(root, targets, outputs, includes)
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def result(self) -> Image:
        """Wait for protoc and return the image, or raise ImageError with protoc's complaints."""
        try:
            _, stderr = self._process.communicate()
            if self._process.returncode != 0:
                raise ImageError(explain_unknown_options(stderr.strip()) or f"protoc failed on {self.root}")
            return read_image_bytes(self._out.read_bytes(), str(self.root))
        finally:
            self._tmp.cleanup()


def compile_image(root: Path, includes: Sequence[Path] = ()) -> Image:
    """Compile every .proto under `root` with grpcio-tools' protoc, keeping source info and imports."""
    return Compilation(root, includes).result()


def read_image_bytes(data: bytes, source: str) -> Image:
    """Parse a serialized FileDescriptorSet."""
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        fds.ParseFromString(data)
    except Exception:  # protobuf raises DecodeError, or RuntimeWarning-like errors on upb
        raise ImageError(f"{source} is not a FileDescriptorSet; write one with `prism snapshot`") from None
    return Image(tuple(fds.file))


def read_image(path: Path) -> Image:
    """Read an image written by `prism snapshot` (or `buf build -o x.binpb`, `protoc --descriptor_set_out`)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"cannot read the image {path}: {error.strerror}") from None
    return read_image_bytes(data, str(path))


def write_image(image: Image, path: Path) -> None:
    """Write an image as a FileDescriptorSet, deterministically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image.serialize())


def load_baseline(against: str, root: Path, includes: Sequence[Path] = ()) -> Image:
    """Return the baseline image `against` names: `<repo>.git#ref=REF[,subdir=DIR]`, an image file or a directory."""
    match = _GIT_RE.match(against)
    if match is not None:
        params = _git_params(match.group("params"), against)
        return git_image(
            Path(match.group("repo") or ".git"), params["ref"], root, params.get("subdir"), includes
        )
    path = Path(against)
    if path.is_dir():
        return compile_image(path, includes)
    return read_image(path)


def _git_params(text: str, against: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key not in ("ref", "subdir") or not value:
            raise ImageError(
                f"cannot read baseline {against!r}: expected .git#ref=REF[,subdir=DIR], e.g. .git#ref=origin/main"
            )
        params[key] = value
    if "ref" not in params:
        raise ImageError(f"baseline {against!r} names no ref; e.g. .git#ref=origin/main")
    return params


def git_image(
    git_dir: Path, ref: str, root: Path, subdir: str | None = None, includes: Sequence[Path] = ()
) -> Image:
    """Compile the .proto files under `root` as they were at `ref`, read with `git archive` (no checkout)."""
    repo = git_dir.parent if git_dir.name == ".git" else git_dir
    top = _git(repo, "rev-parse", "--show-toplevel").strip()
    if subdir is None:
        try:
            subdir = Path(root).resolve().relative_to(Path(top).resolve()).as_posix()
        except ValueError:
            raise ImageError(f"{root} is not inside the git repository {top}; pass subdir=") from None
    pathspec = subdir if subdir not in ("", ".") else "."
    archive = _git_bytes(Path(top), "archive", "--format=tar", ref, "--", pathspec)
    with tempfile.TemporaryDirectory(prefix="prism-baseline-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        base = Path(tmp) / subdir
        if not base.is_dir() or not find_protos(base):
            raise ImageError(f"{subdir or '.'} holds no .proto files at {ref}")
        return compile_image(base, includes)


def _git(repo: Path, *args: str) -> str:
    return _git_bytes(repo, *args).decode()


def _git_bytes(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise ImageError("git is not installed; a .git#ref= baseline needs it") from None
    if done.returncode != 0:
        raise ImageError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def warm(image: Image) -> None:
    """Build the image's model now (a SchemaError is kept for whoever asks for the model)."""
    _ = image._model
