"""`buf generate` with the repository's own buf.yaml and buf.gen.yaml, through the buf binary from PyPI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES, ROOT, run_protoc


def test_buf_generate_matches_protoc(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    for name in ("buf.yaml", "buf.gen.yaml"):
        shutil.copy(ROOT / name, work / name) if work.exists() else (
            work.mkdir(),
            shutil.copy(ROOT / name, work),
        )
    shutil.copytree(ROOT / "proto", work / "proto")
    shutil.copytree(EXAMPLES, work / "examples" / "proto")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    buf = shutil.which("buf", path=env["PATH"])
    assert buf is not None, "buf-bin is a test dependency"
    done = subprocess.run([buf, "generate"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    generated = {str(p.relative_to(work / "gen")) for p in (work / "gen").rglob("*") if p.is_file()}
    # strategy: all gives the plugin every file at once, so the one plan covers them all.
    assert generated == {
        f"acme/{name}/v1/{name}{suffix}"
        for name in ("users", "orders", "social", "events")
        for suffix in ("_pb2.py", "_pb2.pyi", "_prism.py")
    } | {
        "prism.plan.json",
        "manifests/kafka/acme_events_v1_click_event.yaml",
        "manifests/nats/acme_events_v1_stock_level.yaml",
        "manifests/nats/acme_events_v1_stock_level.json",
    } | {
        # Package markers, from the plugin: the same tree protoc and prism generate write.
        f"{package}/{marker}"
        for package in (
            "acme",
            *(f"acme/{n}{v}" for n in ("users", "orders", "social", "events") for v in ("", "/v1")),
        )
        for marker in ("__init__.py", "py.typed")
    } | {
        f"sql/{dialect}/acme/{name}/v1/{name}.sql"
        for dialect in ("postgres", "sqlite")
        for name in ("users", "orders", "social", "events")
    }
    protos = [
        "acme/users/v1/users.proto",
        "acme/orders/v1/orders.proto",
        "acme/social/v1/social.proto",
        "acme/events/v1/events.proto",
    ]
    expected = run_protoc(EXAMPLES, protos, tmp_path / "protoc").files()
    for name, content in expected.items():
        assert (work / "gen" / name).read_text() == content


def test_buf_lint_passes_on_the_workspace() -> None:
    buf = shutil.which("buf", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    assert buf is not None
    done = subprocess.run([buf, "lint"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
