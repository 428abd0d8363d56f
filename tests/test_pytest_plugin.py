"""Prism's pytest plugin in a user's project: docs/testing.md's example, run by pytest in a subprocess, against
SQLite and an embedded Postgres the plugin starts itself (one server per session, one database per test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from protoc_gen_prism.cli import main

# Beyond the documented example: the server is the session's, each test gets its own database.
ONE_SERVER = """
import prism_runtime

SEEN = []


async def test_first(prism_postgres: prism_runtime.Database, prism_postgres_server: str) -> None:
    SEEN.append((prism_postgres_server, await database_name(prism_postgres)))


async def test_second(prism_postgres: prism_runtime.Database, prism_postgres_server: str) -> None:
    SEEN.append((prism_postgres_server, await database_name(prism_postgres)))
    (first_server, first_db), (second_server, second_db) = SEEN
    assert first_server == second_server
    assert first_db != second_db and first_db.startswith("prism_test_")


async def database_name(db: prism_runtime.Database) -> str:
    rows = await db.backend.fetch("SELECT current_database()", (), namespace="test")  # type: ignore[attr-defined]
    return str(rows[0][0])
"""


def blocks(markdown: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", markdown, flags=re.S)


def test_the_documented_example_passes_on_sqlite_and_an_embedded_postgres(tmp_path: Path) -> None:
    project = tmp_path / "project"
    assert main(["init", str(project)]) == 0
    assert main(["generate", str(project / "proto"), "-o", str(project / "gen")]) == 0
    doc = (ROOT / "docs" / "testing.md").read_text()
    [ini] = blocks(doc, "ini")
    [example] = blocks(doc, "python")
    (project / "pytest.ini").write_text(ini)
    (project / "tests").mkdir()
    (project / "tests" / "test_notes.py").write_text(example)
    (project / "tests" / "test_one_server.py").write_text(ONE_SERVER)
    env = {k: v for k, v in os.environ.items() if k != "PRISM_TEST_POSTGRES_DSN"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestWarning"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout, done.stdout
    # Every database the plugin made is gone with the session's server, and nothing is left in the project.
    assert not (project / "prism.db").exists()
