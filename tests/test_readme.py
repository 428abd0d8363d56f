"""The README cannot drift: every ```bash block runs, in order, as a new user would run them, in an empty
directory outside this repository with a fresh virtualenv (pip's cache as it is), and its prism.yaml is the
format the runtime and `prism check` read.

A block may opt out only with `# readme-test: skip (why)` as its first line, and only the quick start may:
those two commands run in this checkout and are what CI runs first anyway.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

from prism_runtime.config import load_config
from protoc_gen_prism.checks import runner
from protoc_gen_prism.checks.config import load_check_config
from protoc_gen_prism.checks.rules import Severity

README = ROOT / "README.md"
SKIP = "# readme-test: skip ("
# Everything a test session or an activated virtualenv adds, which a new user's shell would not have.
_SESSION_ENV = ("VIRTUAL_ENV", "PYTHONPATH", "PRISM_URL", "PRISM_MASTER_KEY_FILE", "PRISM_TEST_")


def fenced(language: str) -> list[tuple[int, str]]:
    """Return (offset, body) of every ```language block of the README."""
    text = README.read_text()
    return [(m.start(), m.group(1)) for m in re.finditer(rf"```{language}\n(.*?)```", text, flags=re.S)]


def test_only_the_quick_start_opts_out() -> None:
    text = README.read_text()
    install = text.index("\n## Install\n")
    skipped = [offset for offset, body in fenced("bash") if body.startswith(SKIP)]
    assert len(skipped) == 1 and skipped[0] < install
    assert all(SKIP not in body for offset, body in fenced("bash") if offset > install)
    # The quick start's two commands, exactly.
    assert (
        "python3.11 -m venv .venv && .venv/bin/pip install -q ./runtime . && .venv/bin/prism generate "
        "examples/proto -o examples/gen && .venv/bin/python examples/shop.py\n" in text[:install]
    )
    assert (
        "python3.11 -m venv .venv && .venv/bin/pip install -q ./runtime '.[test]' && .venv/bin/pytest\n"
        in text[:install]
    )


def test_the_prism_yaml_of_the_readme_is_what_the_runtime_and_prism_check_read(tmp_path: Path) -> None:
    [(_, body)] = fenced("yaml")
    path = tmp_path / "prism.yaml"
    path.write_text(body)
    config = load_config(config=path)
    assert sorted(config.backends) == ["kafka", "nats", "postgres", "postgres_new", "sqlite"]
    assert config.backends["postgres_new"].kind == "postgres"
    assert config.migrations["example_v1_note"].target == "postgres_new"
    assert config.kind_for("example_v1_note", "sqlite") == "postgres"
    assert config.kind_for("other_v1_thing", "sqlite") == "sqlite"
    assert runner.lint_image  # importing the runner registers every rule, as `prism check` does
    checks = load_check_config(path)
    assert checks.severity_of("LINT_RESERVED_WORD") is Severity.WARNING
    assert checks.ignore == {"LINT_PII_PLAINTEXT": ("example/legacy/",)}


@pytest.fixture
def project() -> Iterator[Path]:
    """An empty directory outside this repository, and outside pytest's basetemp.

    As root, the embedded Postgres runs as an unprivileged user who must traverse every ancestor of its data
    dir and of its binaries (here both in the project's own .venv), and a concurrent pytest session resets
    /tmp/pytest-of-root to 0700.
    """
    path = Path(tempfile.mkdtemp(prefix="prism-readme-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_every_command_block_runs_in_a_new_project(project: Path) -> None:
    blocks = [body for _, body in fenced("bash") if not body.startswith(SKIP)]
    assert not project.resolve().is_relative_to(ROOT)
    here = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SESSION_ENV)}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != here)
    env["PRISM"] = str(ROOT)
    script = "set -euo pipefail\n" + "\n".join(
        f"echo '### block {i}'\n{body}" for i, body in enumerate(blocks, start=1)
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    # Whatever happened, leave no server running.
    if (project / ".prism" / "stack").exists():
        subprocess.run(
            [str(project / ".venv/bin/prism"), "stack", "down"], cwd=project, capture_output=True, check=False
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert f"### block {len(blocks)}" in out
    # prism init said what to run next; main.py stored a note and read it back; mypy found nothing.
    assert "next:\nprism generate proto -o gen" in out
    assert 'note_id: "n1"\ntext: "hello, prism"\n' in out
    assert "Success: no issues found" in out
    # prism stack up printed each server's URL, provision made the example's table on Postgres, down stopped all.
    for line in ("postgres  postgresql://", "nats      nats://", "kafka     kafka://", "export PRISM_URL="):
        assert line in out
    assert "table example_v1_note created" in out
    assert (project / "gen/example/v1/notes_prism.py").is_file()
    assert (project / ".venv/bin/buf").is_file()
