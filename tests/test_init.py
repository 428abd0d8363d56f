"""`prism init` in an empty directory outside this repository: buf (offline) and prism generate write the same
tree, and the generated client stores and reads a message on the embedded SQLite default."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from protoc_gen_prism import __version__
from protoc_gen_prism.cli import main
from protoc_gen_prism.cli.compile.init import scaffold

BIN = str(Path(sys.executable).parent)


def env() -> dict[str, str]:
    """The environment of an activated virtualenv: its bin/ first on PATH (buf runs python3 and the plugins)."""
    return {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}


def run(*argv: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env={**env(), **extra_env}, capture_output=True, text=True, timeout=300, check=False
    )


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    assert not path.resolve().is_relative_to(ROOT)
    assert main(["init", str(path)]) == 0
    return path


def test_init_writes_the_scaffold_and_says_what_to_run_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fresh"
    assert main(["init", str(path)]) == 0
    out = capsys.readouterr().out
    assert tree(path) == scaffold()
    assert sorted(scaffold()) == [
        ".gitignore",
        "buf.gen.yaml",
        "buf.yaml",
        "main.py",
        "prism.yaml",
        "proto/example/v1/notes.proto",
        "proto/prism/options.proto",
    ]
    assert out.endswith(
        f"\nnext:\ncd {path}\n"
        "prism generate proto -o gen          # or: buf generate\n"
        "prism check proto\n"
        "PYTHONPATH=gen python main.py\n"
    )
    options = (path / "proto/prism/options.proto").read_text()
    assert options.startswith(f"// Vendored by `prism init` from protoc-gen-prism {__version__}: ")
    assert options.endswith((ROOT / "proto/prism/options.proto").read_text())
    ignored = (path / ".gitignore").read_text().split()
    assert {"prism.db", "prism-master.key"} <= set(ignored)
    prism_yaml = (path / "prism.yaml").read_text()
    assert "  sqlite: sqlite:///prism.db\n" in prism_yaml
    for kind in ("postgres", "kafka", "nats"):
        assert f"  # {kind}: " in prism_yaml


def test_init_is_idempotent_and_overwrites_only_with_force(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["init", str(project)]) == 0
    assert capsys.readouterr().out.count("unchanged ") == len(scaffold())
    (project / "prism.yaml").write_text("backends: {}\n")
    assert main(["init", str(project)]) == 0
    out = capsys.readouterr().out
    assert "kept      prism.yaml (it differs from what prism init writes; --force overwrites it)\n" in out
    assert (project / "prism.yaml").read_text() == "backends: {}\n"
    assert main(["init", str(project), "--force"]) == 0
    assert "overwrote prism.yaml\n" in capsys.readouterr().out
    assert tree(project) == scaffold()


def test_prism_check_warns_when_the_vendored_options_are_stale(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert main(["check", "proto"]) == 0
    assert "warning:" not in capsys.readouterr().err
    options = project / "proto/prism/options.proto"
    options.write_text(options.read_text().replace(__version__, "0.0.1", 1) + "// an older vocabulary\n")
    assert main(["check", "proto"]) == 0
    err = capsys.readouterr().err
    assert (
        "prism check: warning: proto/prism/options.proto (vendored from protoc-gen-prism 0.0.1) differs from "
        f"the installed protoc-gen-prism {__version__}'s prism/options.proto"
    ) in err
    assert "run `prism init --update-options` in the project directory" in err
    assert main(["init", "--update-options"]) == 0
    assert capsys.readouterr().out == "overwrote proto/prism/options.proto\n"
    assert main(["check", "proto"]) == 0
    assert "warning:" not in capsys.readouterr().err


def test_buf_and_prism_generate_agree_and_the_client_stores_and_reads(project: Path) -> None:
    buf = shutil.which("buf", path=env()["PATH"])
    assert buf is not None, "buf-bin is a test dependency"
    done = run(buf, "generate", cwd=project)
    assert done.returncode == 0, done.stderr
    done = run("prism", "generate", "proto", "-o", "gen-prism", cwd=project)
    assert done.returncode == 0, done.stderr
    by_buf, by_prism = tree(project / "gen"), tree(project / "gen-prism")
    assert sorted(by_buf) == sorted(by_prism)
    # buf fills in json_name in the descriptors it hands protoc's python generator, so the serialized
    # descriptor inside *_pb2.py differs in length; everything else is byte for byte the same.
    for name, content in by_buf.items():
        if not name.endswith("_pb2.py"):
            assert content == by_prism[name], name
    assert sorted(tree(project / "gen")) == [
        "example/__init__.py",
        "example/py.typed",
        "example/v1/__init__.py",
        "example/v1/notes_pb2.py",
        "example/v1/notes_pb2.pyi",
        "example/v1/notes_prism.py",
        "example/v1/py.typed",
        "prism.plan.json",
        "sql/postgres/example/v1/notes.sql",
        "sql/sqlite/example/v1/notes.sql",
    ]
    # The scaffolded program, as `prism init` says to run it: put then get on ./prism.db.
    done = run(sys.executable, "main.py", cwd=project, PYTHONPATH="gen")
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'note_id: "n1"\ntext: "hello, prism"\n\n'
    assert (project / "prism.db").is_file()
    # A second process reads what the first stored.
    read_back = (
        "import asyncio, prism_runtime\n"
        "from example.v1 import notes_prism\n"
        "async def main():\n"
        "    async with prism_runtime.connect(config='prism.yaml') as db:\n"
        "        print((await notes_prism.NoteStore(db).get('n1')).text)\n"
        "asyncio.run(main())\n"
    )
    done = run(sys.executable, "-c", read_back, cwd=project, PYTHONPATH="gen")
    assert (done.returncode, done.stdout) == (0, "hello, prism\n"), done.stderr
    # No extra mypy flags: the generated packages are regular, typed packages.
    done = run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", "main.py", "gen", cwd=project)
    assert done.returncode == 0, done.stdout
