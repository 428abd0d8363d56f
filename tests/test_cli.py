"""The `prism` command line as a new user meets it: help without extras, clear errors, no state made by reading."""

from __future__ import annotations

import asyncio
import importlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from backends import drop_schema, new_schema
from conftest import EXAMPLES

import prism_runtime
from protoc_gen_prism import cli
from protoc_gen_prism.cli import main

OPTIONAL_DRIVERS = ("asyncpg", "aiokafka", "nats", "boto3", "psutil", "filelock")

# Runs `prism` in a fresh interpreter where the modules named in argv[1] cannot be imported, as after a
# plain `pip install .`: a meta-path finder refuses them before any other finder looks.
_WITHOUT = """
import sys

class NoDriver:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoDriver(set(filter(None, sys.argv.pop(1).split(",")))))
"""

_RUN_PRISM = (
    _WITHOUT
    + """
from protoc_gen_prism import cli
from protoc_gen_prism.cli import main
sys.argv[0] = "prism"
sys.exit(main())
"""
)

# Every command module's parser, every nested action, and the top level: each `--help`, bare `prism` and
# an unknown command, in one interpreter; prints {argv: [exit code, stdout, stderr, traceback]} as JSON.
_EVERY_HELP = (
    _WITHOUT
    + """
import argparse, contextlib, io, json, pkgutil, traceback
import protoc_gen_prism.cli.compile, protoc_gen_prism.cli.ops
from protoc_gen_prism import cli

def paths(parser, prefix):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from paths(sub, [*prefix, name])

packages = (protoc_gen_prism.cli.compile, protoc_gen_prism.cli.ops)
modules = sorted(m.name for p in packages for m in pkgutil.iter_modules(p.__path__) if m.name != "database")
argvs = [[], ["--help"], ["no-such-command"], ["--version"]]
for name in modules:
    argvs += [[*p, "--help"] for p in paths(cli.build_parser(name), [])]
results = {"modules": modules, "commands": cli.COMMANDS, "runs": {}}
for argv in argvs:
    out, err, trace, code = io.StringIO(), io.StringIO(), "", 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        trace = traceback.format_exc()
    results["runs"][" ".join(argv)] = [code, out.getvalue(), err.getvalue(), trace]
print(json.dumps(results))
"""
)


def prism_without(
    blocked: tuple[str, ...], *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `prism ARGS` with the `blocked` driver modules unimportable."""
    return subprocess.run(
        [sys.executable, "-c", _RUN_PRISM, ",".join(blocked), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_every_command_help_works_without_optional_drivers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _EVERY_HELP, ",".join(OPTIONAL_DRIVERS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["modules"] == sorted(results["commands"]), "every command module is a `prism` command"
    runs = results["runs"]
    assert {argv: trace for argv, (_, _, _, trace) in runs.items() if trace} == {}
    assert {argv: code for argv, (code, _, _, _) in runs.items() if code != 0} == {
        "": 2,
        "no-such-command": 2,
    }
    assert "the following arguments are required: COMMAND" in runs[""][2]
    assert "invalid choice: 'no-such-command'" in runs["no-such-command"][2]
    for command in results["commands"]:
        assert runs[f"{command} --help"][1].startswith(f"usage: prism {command}")
    assert "usage: prism keys status" in runs["keys status --help"][1]
    assert "usage: prism audit verify" in runs["audit verify --help"][1]
    assert len(runs) > len(results["commands"]) + 4  # the nested actions were walked too


def test_a_postgres_url_without_asyncpg_names_the_extra(tmp_path: Path) -> None:
    done = prism_without(
        OPTIONAL_DRIVERS,
        "provision",
        str(EXAMPLES),
        "--url",
        "postgresql://prism@127.0.0.1:1/none",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "prism provision: the postgres backend (postgresql://prism@127.0.0.1:1/none) needs the 'asyncpg' "
        "driver, which is not installed; install it with `pip install 'prism-runtime[postgres]'`, or "
        "`pip install 'protoc-gen-prism[postgres]'` where the prism CLI is installed"
    )


def test_streams_without_their_drivers_name_the_extras(tmp_path: Path) -> None:
    config = tmp_path / "prism.yaml"
    config.write_text(
        f"backends:\n  sqlite: sqlite:///{tmp_path / 'app.db'}\n  nats: nats://127.0.0.1:1\n"
        "  kafka: kafka://127.0.0.1:1\n"
    )
    # The example plan has topics and streams; each missing driver is named before any server is dialled.
    for blocked, extra in ((OPTIONAL_DRIVERS, "kafka"), (("nats",), "nats")):
        done = prism_without(blocked, "provision", str(EXAMPLES), "--config", str(config), cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert f"`pip install 'protoc-gen-prism[{extra}]'` where the prism CLI is installed" in done.stderr


async def test_postgres_only_provisioning_needs_only_the_postgres_extra(
    postgres_dsn: str, tmp_path: Path
) -> None:
    url = await new_schema(postgres_dsn)
    try:
        done = prism_without(("aiokafka", "nats"), "provision", str(EXAMPLES), "--url", url, cwd=tmp_path)
    finally:
        await drop_schema(url)
    assert done.returncode == 0, done.stderr
    assert "postgres: applied 4 file(s), 0 unchanged" in done.stdout.splitlines()


# -- commands that read state never create it ------------------------------------------------------------

READ_STATE = [
    ("audit verify", ["audit", "verify"]),
    ("audit export", ["audit", "export"]),
    ("forget", ["forget", "u1"]),
    ("keys status", ["keys", "status"]),
    ("keys rotate", ["keys", "rotate"]),
    ("keys reencrypt", ["keys", "reencrypt", "--dry-run"]),
    ("keys retire", ["keys", "retire", "--below", "2"]),
]
NO_DATABASE = (
    "no Prism database at {url}{detail} (set PRISM_URL or --url; `prism keys init` sets up a new one)"
)


@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty directory with no Prism settings in the environment (the default key file too)."""
    monkeypatch.chdir(tmp_path)
    for name in ("PRISM_URL", "PRISM_MASTER_KEY_FILE", "PRISM_KMS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize(("label", "argv"), READ_STATE, ids=[label for label, _ in READ_STATE])
def test_a_command_reading_state_fails_where_there_is_no_database(
    label: str, argv: list[str], empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    expected = NO_DATABASE.format(url="sqlite:///prism.db", detail="")
    assert capsys.readouterr().err == f"prism {label}: {expected}\n"
    assert list(empty_dir.iterdir()) == []  # no prism.db, no prism-master.key


def test_prism_url_and_url_name_the_database_that_is_missing(
    empty_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRISM_URL", "sqlite:///from-env.db")
    assert main(["keys", "status"]) == 1
    assert "no Prism database at sqlite:///from-env.db (" in capsys.readouterr().err
    assert main(["audit", "verify", "--url", "sqlite:///from-flag.db"]) == 1
    assert "no Prism database at sqlite:///from-flag.db (" in capsys.readouterr().err
    assert list(empty_dir.iterdir()) == []


def test_an_sqlite_file_without_prism_tables_is_no_prism_database(
    empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite3.connect(empty_dir / "other.db").close()
    assert main(["forget", "u1", "--url", "sqlite:///other.db"]) == 1
    expected = NO_DATABASE.format(
        url="sqlite:///other.db", detail=": it holds neither prism_keys nor prism_entities"
    )
    assert capsys.readouterr().err == f"prism forget: {expected}\n"
    assert sorted(p.name for p in empty_dir.iterdir()) == ["other.db"]
    with sqlite3.connect(empty_dir / "other.db") as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_a_postgres_database_without_prism_tables_is_left_as_it_is(
    postgres_dsn: str, empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = asyncio.run(new_schema(postgres_dsn))
    try:
        for label, argv in READ_STATE[:4]:
            assert main([*argv, "--url", url]) == 1
            expected = NO_DATABASE.format(url=url, detail=": it holds neither prism_keys nor prism_entities")
            assert capsys.readouterr().err == f"prism {label}: {expected}\n"
        assert asyncio.run(_tables(url)) == []
    finally:
        asyncio.run(drop_schema(url))
    absent = postgres_dsn.rsplit("/", 1)[0] + "/no_such_database"
    assert main(["keys", "status", "--url", absent]) == 1
    assert capsys.readouterr().err.endswith(
        "InvalidCatalogNameError (SQLSTATE 3D000); the database named in the URL does not exist: fix the URL, "
        "or create it (createdb) first\n"
    )
    assert list(empty_dir.iterdir()) == []


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    finally:
        await conn.close()
    return [str(r[0]) for r in rows]


def test_forget_works_where_all_pii_is_in_clear(
    generated: Path, empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pb2 = importlib.import_module("prismtest.pii.v1.pii_pb2")
    prism = importlib.import_module("prismtest.pii.v1.pii_prism")

    async def write() -> None:
        async with prism_runtime.connect() as db:
            await prism.UserEventSeries(db).append_many(
                pb2.UserEvent(user_id=uid, at_ms=1_700_000_000_000, email=f"{uid}@example.org", page="/")
                for uid in ("u1", "u2")
            )

    asyncio.run(write())
    with sqlite3.connect(empty_dir / "prism.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "prism_entities" in tables and "prism_keys" not in tables  # catalogued, no key made yet
    assert main(["forget", "u1"]) == 0, capsys.readouterr().err
    assert "prismtest_pii_v1_user_event" in capsys.readouterr().out
    with sqlite3.connect(empty_dir / "prism.db") as conn:
        left = conn.execute("SELECT user_id FROM prismtest_pii_v1_user_event").fetchall()
    assert left == [("u2",)]


def test_keys_init_is_what_makes_the_master_key(empty_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init"]) == 0
    assert capsys.readouterr().out == (
        "prism keys init: keys ready in sqlite:///prism.db; key wrapper: local master key file prism-master.key\n"
    )
    assert sorted(p.name for p in empty_dir.iterdir()) == ["prism-master.key", "prism.db"]
    key = (empty_dir / "prism-master.key").read_bytes()
    assert main(["keys", "init"]) == 0  # again: the same key
    assert (empty_dir / "prism-master.key").read_bytes() == key
    assert main(["keys", "status"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "ok, 0 entries" in capsys.readouterr().out


def test_a_missing_master_key_is_named_not_replaced(
    empty_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init"]) == 0
    (empty_dir / "prism-master.key").rename(empty_dir / "kept.key")
    capsys.readouterr()
    for label, argv in READ_STATE:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(
            f"prism {label}: local master key file prism-master.key: the master keyset file does not exist; "
            "point $PRISM_MASTER_KEY_FILE at the file"
        ), err
        assert not (empty_dir / "prism-master.key").exists()
    monkeypatch.setenv("PRISM_MASTER_KEY_FILE", str(empty_dir / "kept.key"))
    assert main(["keys", "status"]) == 0
    assert sorted(p.name for p in empty_dir.iterdir()) == ["kept.key", "prism.db"]


# -- what a new user meets first -------------------------------------------------------------------------


def test_generate_and_plan_on_a_directory_without_protos_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "protos"
    empty.mkdir()
    assert main(["generate", str(empty), "-o", str(tmp_path / "gen")]) == 2
    assert capsys.readouterr().err == (
        f"prism generate: {empty} holds no .proto files; pass the directory your .proto files are under\n"
    )
    assert not (tmp_path / "gen").exists()
    assert main(["plan", str(empty)]) == 2
    assert capsys.readouterr().err == f"prism plan: {empty} holds no .proto files and no prism.plan.json\n"


def test_plan_for_the_local_profile_does_not_speak_of_production(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLES), "--profile", "local"]) == 0
    local = capsys.readouterr().out
    assert "production" not in local
    assert "key_value: postgres when one is configured, else sqlite embedded" in local
    assert main(["plan", str(EXAMPLES)]) == 0
    assert "key_value: postgres in production (sqlite embedded when no server is configured)" in (
        capsys.readouterr().out
    )


MISSPELT = """syntax = "proto3";
package acme;
import "prism/options.proto";
message Thing {
  option (prism.acces_pattern) = "key_value";
  string id = 1 [(prism.kee) = true];
  string note = 2 [(prism.nonsense_here) = true];
}
"""
MISPLACED = """syntax = "proto3";
package acme;
import "prism/options.proto";
message Thing {
  option (prism.key) = true;
  string id = 1;
}
"""
UNIMPORTED = """syntax = "proto3";
package acme;
message Thing {
  option (prism.access_pattern) = "key_value";
  string id = 1;
}
"""


@pytest.mark.parametrize(("command", "code"), [("generate", 1), ("check", 2)])
def test_an_unknown_prism_option_gets_what_was_meant(
    command: str, code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {
        MISSPELT: [
            ("t.proto:5:10", "Did you mean (prism.access_pattern), a message option?"),
            ("t.proto:6:18", "Did you mean (prism.key), a field option?"),
            ("t.proto:7:20", "Prism's options are: (prism.pii), "),
        ],
        MISPLACED: [("t.proto:5:10", "(prism.key) is a field option: it goes on a field.")],
        UNIMPORTED: [
            (
                "t.proto:4:10",
                'Add `import "prism/options.proto";` to this file to use (prism.access_pattern).',
            )
        ],
    }
    for i, (text, wanted) in enumerate(expected.items()):
        root = tmp_path / str(i)
        root.mkdir()
        (root / "t.proto").write_text(text)
        assert (
            main([command, str(root), *(["-o", str(tmp_path / "gen")] if command == "generate" else [])])
            == code
        )
        lines = capsys.readouterr().err.removeprefix(f"prism {command}: ").splitlines()
        assert len(lines) == len(wanted), lines
        for location, advice in wanted:
            assert any(f"{location}: " in line and advice in line for line in lines), (advice, lines)


def test_stack_without_the_stack_extra_names_it(tmp_path: Path) -> None:
    done = prism_without(("psutil", "filelock"), "stack", "status", "--dir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "prism stack status: needs 'filelock', which is not installed; install it with "
        "`pip install 'protoc-gen-prism[stack]'`\n"
    )


def test_compile_time_commands_run_with_every_driver_unimportable(tmp_path: Path) -> None:
    # The commands of cli/compile/ need the compiler only: with asyncpg, aiokafka, nats, boto3 (and the
    # stack's psutil and filelock) refused, each does its whole job.
    runs = {
        "generate": ["generate", str(EXAMPLES), "-o", str(tmp_path / "gen")],
        "plan": ["plan", str(EXAMPLES)],
        "check": ["check", str(EXAMPLES)],
        "breaking": ["breaking", str(EXAMPLES), "--against", str(EXAMPLES)],
        "migrate": ["migrate", str(EXAMPLES), "--against", str(EXAMPLES), "-o", str(tmp_path / "migrations")],
        "snapshot": ["snapshot", str(EXAMPLES), "-o", str(tmp_path / "image.binpb")],
        "include": ["include"],
        "init": ["init", str(tmp_path / "project")],
    }
    assert sorted(runs) == sorted(cli.COMPILE_COMMANDS)
    for name, argv in runs.items():
        done = prism_without(OPTIONAL_DRIVERS, *argv, cwd=tmp_path)
        assert "Traceback" not in done.stderr, (name, done.stderr)
        assert done.returncode == 0, (name, done.stdout, done.stderr)
