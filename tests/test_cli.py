"""The `prism` command line as a new user meets it: help without extras, clear errors, no state made by reading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from backends import drop_schema, new_schema
from conftest import EXAMPLES

OPTIONAL_DRIVERS = ("asyncpg", "aiokafka", "nats")

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
import protoc_gen_prism.commands
from protoc_gen_prism import cli

def paths(parser, prefix):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from paths(sub, [*prefix, name])

modules = sorted(m.name for m in pkgutil.iter_modules(protoc_gen_prism.commands.__path__) if not m.name.startswith("_"))
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
        OPTIONAL_DRIVERS, "provision", str(EXAMPLES), "--url", "postgresql://prism@127.0.0.1:1/none", cwd=tmp_path
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "prism provision: the postgres backend (postgresql://prism@127.0.0.1:1/none) needs the 'asyncpg' "
        "driver, which is not installed; install it with: pip install 'protoc-gen-prism[postgres]'"
    )


def test_streams_without_the_nats_driver_name_the_extra(tmp_path: Path) -> None:
    config = tmp_path / "prism.yaml"
    config.write_text(
        f"backends:\n  sqlite: sqlite:///{tmp_path / 'app.db'}\n  nats: nats://127.0.0.1:1\n"
        "  kafka: kafka://127.0.0.1:1\n"
    )
    done = prism_without(OPTIONAL_DRIVERS, "provision", str(EXAMPLES), "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "pip install 'protoc-gen-prism[kafka]'" in done.stderr


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
