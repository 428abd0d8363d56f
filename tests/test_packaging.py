"""Two distributions: the compiler's wheel carries its data, and a service runs on prism-runtime alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import drop_schema, new_schema

ROOT = Path(__file__).resolve().parents[1]
COMPILER_ONLY = ("grpcio-tools", "sqlglot", "jinja2", "mypy-protobuf")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build both wheels from this checkout."""
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(out),
            str(ROOT / "runtime"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    built = {p.name.split("-")[0]: p for p in out.glob("*.whl")}
    return {"runtime": built["prism_runtime"], "compiler": built["protoc_gen_prism"]}


def test_the_compiler_wheel_ships_templates_and_the_options_proto(wheels: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(wheels["compiler"]).namelist())
    templates = {p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").iterdir()}
    assert {f"protoc_gen_prism/{t}" for t in templates} <= names
    assert "protoc_gen_prism/include/prism/options.proto" in names
    assert "prism_stack/supervisor.py" in names
    admin = ROOT / "protoc_gen_prism" / "admin"
    shipped = {p.relative_to(ROOT).as_posix() for d in ("templates", "static") for p in (admin / d).iterdir()}
    assert shipped <= names, "the admin's templates, script and style are package data"
    assert not any(n.startswith(("prism_runtime/", "prism/")) for n in names)


def test_the_runtime_wheel_is_the_runtime_and_the_options_module_only(wheels: dict[str, Path]) -> None:
    archive = zipfile.ZipFile(wheels["runtime"])
    packages = {n.split("/")[0] for n in archive.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"prism_runtime", "prism"}
    metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [
        line.split(":", 1)[1].strip().lower()
        for line in archive.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert not [r for r in requires if r.startswith(COMPILER_ONLY)]


@pytest.fixture(scope="module")
def service_venv(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with prism-runtime[postgres] installed, as a service's container has."""
    home = tmp_path_factory.mktemp("service") / "venv"
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            f"prism-runtime[postgres] @ {wheels['runtime'].as_uri()}",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return python


SERVICE = textwrap.dedent(
    """
    import asyncio, importlib.metadata, sys

    import prism_runtime
    from acme.users.v1 import users_pb2, users_prism

    missing = []
    for name in {compiler_only!r}:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    assert missing == list({compiler_only!r}), missing
    assert "sqlglot" not in sys.modules and "jinja2" not in sys.modules

    async def main(url: str) -> None:
        async with prism_runtime.connect(url) as db:
            users = users_prism.UserProfileStore(db)
            await users.put(users_pb2.UserProfile(user_id="u1", display_name="Ada"))
            got = await users.get("u1")
            assert got is not None and got.display_name == "Ada", got
            assert "sqlglot" not in sys.modules
        print("ok", url.split(":", 1)[0])

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.fixture
def postgres_url(postgres_dsn: str, generated: Path) -> Iterator[str]:
    """A fresh schema on the test server with the generated SQL applied by `prism provision`."""
    import asyncio

    url = asyncio.run(new_schema(postgres_dsn))
    subprocess.run(
        [str(Path(sys.executable).parent / "prism"), "provision", str(generated), "--url", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    yield url
    asyncio.run(drop_schema(url))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_generated_client_runs_on_prism_runtime_alone(
    backend: str, service_venv: Path, generated: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'svc.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    program = tmp_path / "service.py"
    program.write_text(SERVICE.format(compiler_only=COMPILER_ONLY))
    done = subprocess.run(
        [str(service_venv), str(program), url],
        cwd=generated,
        env={"PYTHONPATH": str(generated), "PRISM_MASTER_KEY_FILE": str(tmp_path / "master.key")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ok {url.split(':', 1)[0]}"
