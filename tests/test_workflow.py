"""The example GitHub Actions workflow: its prism steps run as written in a real git repository."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import yaml
from conftest import EXAMPLES, ROOT

from protoc_gen_prism.protoc_runner import tool


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_workflow_steps_pass_on_the_examples_and_fail_on_a_break(tmp_path: Path) -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "github-workflow.yml").read_text())
    commands = [
        step["run"] for step in workflow["jobs"]["prism"]["steps"] if step.get("run", "").startswith("prism ")
    ]
    assert [c.split()[:2] for c in commands] == [["prism", "check"], ["prism", "breaking"]]
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "proto")
    _git(tmp_path, "init", "-q", "-b", "main", str(repo))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "schema")
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")

    def run_all() -> list[subprocess.CompletedProcess[str]]:
        return [
            subprocess.run([tool("prism"), *shlex.split(c)[1:]], cwd=repo, capture_output=True, text=True)
            for c in commands
        ]

    assert [r.returncode for r in run_all()] == [0, 0]
    users = repo / "proto" / "acme" / "users" / "v1" / "users.proto"
    users.write_text(
        users.read_text().replace(
            ", (prism.encrypt_at_rest) = true];\n  string display_name", "];\n  string display_name"
        )
    )
    check, breaking = run_all()
    assert check.returncode == 1 and "title=LINT_PII_PLAINTEXT" in check.stdout
    assert breaking.returncode == 1
    assert breaking.stdout.startswith(
        "::error file=proto/acme/users/v1/users.proto,line=15,col=3,title=PROTECT_ENCRYPTION_REMOVED::"
    )
