"""The DDL emitter: parseable, idempotent, quoting every name, constraining oneofs, on real SQLite and Postgres."""

from __future__ import annotations

import importlib
import importlib.util
import sqlite3
from pathlib import Path

import asyncpg
import pytest
import sqlglot
from backends import BACKENDS, new_schema, url_for
from conftest import EXAMPLES, PROTOS, run_protoc
from hypothesis import given, settings
from hypothesis import strategies as st

import prism_runtime
from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from protoc_gen_prism.sql.ddl import ddl_dialect, ddl_statements
from protoc_gen_prism.sql.dialects import ddl_dialect_for as dialect_for
from protoc_gen_prism.sql.expressions import rendered
from protoc_gen_prism.sql.provision import history, provision


def ddl_files(tmp_path: Path, parameter: str = "") -> dict[str, str]:
    run = run_protoc(
        PROTOS,
        ["prismtest/types/v1/types.proto", "prismtest/sqlnames/v1/names.proto"],
        tmp_path,
        parameter=parameter,
    )
    assert run.returncode == 0, run.stderr
    return {name: text for name, text in run.files().items() if name.startswith("sql/")}


@pytest.mark.parametrize("dialect", ["postgres", "sqlite", "mysql", "duckdb"])
def test_every_statement_parses_back(tmp_path: Path, dialect: str) -> None:
    files = ddl_files(tmp_path, parameter="sql_dialect=mysql,sql_dialect=duckdb")
    ours = {name: text for name, text in files.items() if name.startswith(f"sql/{dialect}/")}
    assert len(ours) == 2
    for text in ours.values():
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
        assert statements and all(s.key in ("create", "comment") for s in statements)


def test_ddl_is_deterministic(tmp_path: Path) -> None:
    assert ddl_files(tmp_path / "a") == ddl_files(tmp_path / "b")


def test_unknown_sql_dialect_is_an_error(tmp_path: Path) -> None:
    run = run_protoc(EXAMPLES, ["acme/users/v1/users.proto"], tmp_path, parameter="sql_dialect=postgress")
    assert run.errors.startswith("--prism_out: sql_dialect='postgress' is not a sqlglot dialect; allowed: ")
    assert run.errors.endswith("did you mean 'postgres'?")


def test_sqlite_ddl_applies_twice_unchanged(tmp_path: Path) -> None:
    files = ddl_files(tmp_path / "out")
    conn = sqlite3.connect(tmp_path / "x.db")
    for _ in range(2):
        for name, text in files.items():
            if name.startswith("sql/sqlite/"):
                conn.executescript(text)
    tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    assert tables == sorted(
        ["order", "prismtest_types_v1_all_types", "prismtest_types_v1_counter", "device_readings"]
    )


async def test_postgres_ddl_applies_twice_unchanged(tmp_path: Path, postgres_dsn: str) -> None:
    files = ddl_files(tmp_path / "out")
    url = await new_schema(postgres_dsn)
    conn = await asyncpg.connect(url)
    try:
        for _ in range(2):
            for name, text in files.items():
                if name.startswith("sql/postgres/"):
                    await conn.execute(text)
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        assert len(tables) == 4
    finally:
        await conn.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_reserved_words_and_oneof_check(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path, backend: str
) -> None:
    pb2 = importlib.import_module("prismtest.sqlnames.v1.names_pb2")
    prism = importlib.import_module("prismtest.sqlnames.v1.names_prism")
    url = await url_for(request, backend, tmp_path)
    async with prism_runtime.connect(url) as db:
        await provision(db, generated, echo=lambda line: None)
        store = prism.SelectStore(db)
        row = pb2.Select(user="u", group="g", limit=5, **{"from": 7})
        await store.put(row)
        assert await store.get("u") == row
        driver = db.backend
        both_set = 'INSERT INTO "order" ("user", "from", "group", "table", "limit") VALUES ({}, 1, {}, {}, 2)'.format(
            *(driver.dialect.placeholder(i) for i in (1, 2, 3))
        )
        with pytest.raises(prism_runtime.BackendError):
            await driver.execute(both_set, ["v", "g", "t"], namespace="order")


async def test_provision_twice_changes_nothing_the_second_time(
    tmp_path: Path, generated: Path, postgres_dsn: str
) -> None:
    url = await new_schema(postgres_dsn)
    lines: list[str] = []
    async with prism_runtime.connect(url) as db:
        assert await history(db.backend) == []  # type: ignore[arg-type]
        dry = await provision(db, generated, dry_run=True, echo=lines.append)
        assert dry.changed and any("would be created" in line for line in lines)
        assert await history(db.backend) == [], "a dry run records nothing"  # type: ignore[arg-type]
        first = await provision(db, generated, echo=lines.append)
        second_lines: list[str] = []
        second = await provision(db, generated, echo=second_lines.append)
        recorded = await db.backend.fetch(
            "SELECT source, sha256 FROM prism_schema_history", [], namespace="t"
        )  # type: ignore[attr-defined]
        applied = await history(db.backend)  # type: ignore[arg-type]
    assert first.applied and not second.applied
    assert sorted(first.applied) == sorted(second.unchanged) == sorted(r[0] for r in recorded)
    assert second_lines[-1].startswith("nothing to do: all ")
    assert all(source.startswith("sql/postgres/") for source in first.applied)
    assert sorted(a.source for a in applied) == sorted(first.applied)
    assert [a.applied_at for a in applied] == sorted((a.applied_at for a in applied), reverse=True)


def test_provision_cli_prints_progress(tmp_path: Path, generated: Path) -> None:
    import subprocess

    from protoc_gen_prism.protoc_runner import tool

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    first = subprocess.run(
        [tool("prism"), "provision", str(generated), "--url", url], capture_output=True, text=True
    )
    second = subprocess.run(
        [tool("prism"), "provision", str(generated), "--url", url], capture_output=True, text=True
    )
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "sql/sqlite/acme/users/v1/users.sql: table acme_users_v1_user_profile created" in first.stdout
    assert "applied 0 file(s)" in second.stdout and "nothing to do" in second.stdout


# -- Postgres and SQLite DDL written as text (sql/ddl.py) against sqlglot's render (sql/expressions.py) ------

_NAMES = st.one_of(
    st.from_regex(r"[a-z_][a-z0-9_]{0,99}", fullmatch=True),
    st.sampled_from(["order", "from", "group", "select", "limit", "Mixed", "x"]),
    st.sampled_from(['quo"te', "two words", "été", "back`tick", "it's"]),
)


@st.composite
def entity_specs(draw: st.DrawFn) -> EntitySpec:
    names = draw(st.lists(_NAMES, min_size=1, max_size=12, unique=True))
    columns = [
        Column(
            name=name,
            number=i + 1,
            kind=draw(st.sampled_from(ColumnKind)),
            nullable=draw(st.booleans()),
            repeated=draw(st.booleans()),
            oneof=draw(st.sampled_from(["", "", "", "choice", "other"])),
            pii=draw(st.sampled_from(["", "", "email", "credit_card"])),
            indexed=draw(st.booleans()),
            expiry=draw(st.sampled_from([False, False, True])),
        )
        for i, name in enumerate(names)
    ]
    abstraction = draw(st.sampled_from(Abstraction))
    key = draw(st.sampled_from(names))
    second = draw(st.sampled_from(names))
    namespace = draw(_NAMES)
    if abstraction is Abstraction.TIME_SERIES:
        return EntitySpec(namespace, "M", abstraction, key, tuple(columns), event_time=second)
    sort_key = None if second == key else second
    if abstraction is Abstraction.GRAPH and sort_key is not None:
        return EntitySpec(
            namespace,
            "M",
            abstraction,
            key,
            tuple(columns),
            sort_key=sort_key,
            edge_source=key,
            edge_target=sort_key,
        )
    return EntitySpec(namespace, "M", Abstraction.KEY_VALUE, key, tuple(columns), sort_key=sort_key)


def assert_written_as_sqlglot_renders(spec: EntitySpec) -> None:
    for name in ("postgres", "sqlite"):
        for pretty in (False, True):
            oracle = rendered(spec, dialect_for(name), pretty=pretty)
            assert ddl_statements(spec, ddl_dialect(name), pretty=pretty) == oracle, (name, pretty)


@settings(max_examples=400, deadline=None)
@given(spec=entity_specs())
def test_written_ddl_is_sqlglots_render(spec: EntitySpec) -> None:
    assert_written_as_sqlglot_renders(spec)


def test_long_names_wrap_as_sqlglot_wraps_them() -> None:
    # In pretty SQL, PARTITION BY RANGE(...) and a oneof's CASE go on several lines when a name is long.
    for length in (40, 41, 42, 43, 44, 78, 79, 80, 81):
        event_time = "e" * length
        columns = (
            Column("id", 1, ColumnKind.STRING),
            Column(event_time, 2, ColumnKind.TIMESTAMP),
            Column("o" * length, 3, ColumnKind.INT32, nullable=True, oneof="c"),
            Column('"' * (length // 2), 4, ColumnKind.INT32, nullable=True, oneof="c"),
        )
        spec = EntitySpec("t", "T", Abstraction.TIME_SERIES, "id", columns, event_time=event_time)
        assert_written_as_sqlglot_renders(spec)


def test_every_example_and_test_schema_is_written_as_sqlglot_renders_it(tmp_path: Path) -> None:
    specs = [
        spec for i, root in enumerate((EXAMPLES, PROTOS)) for spec in compiled_specs(root, tmp_path / str(i))
    ]
    assert len(specs) > 20
    for spec in specs:
        assert_written_as_sqlglot_renders(spec)


def test_synthetic_schema_is_written_as_sqlglot_renders_it(tmp_path: Path) -> None:
    # bench/synthetic.py: the schema bench_plugin.py compiles (every abstraction, field kind and option).
    path = Path(__file__).resolve().parents[1] / "bench" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("synthetic", path)
    assert spec is not None and spec.loader is not None
    synthetic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synthetic)
    files = synthetic.write_schema(tmp_path / "proto", 200)
    entities = compiled_specs(tmp_path / "proto", tmp_path / "work", files)
    assert len(entities) == 200
    for entity in entities:
        assert_written_as_sqlglot_renders(entity)


def compiled_specs(root: Path, work: Path, files: list[str] | None = None) -> list[EntitySpec]:
    """Return the spec of every entity the plugin reads from `files` (every .proto under `root` if None)."""
    from plugin_requests import capture_request

    from protoc_gen_prism.model_builder import build_model

    names = files or [str(p.relative_to(root)) for p in sorted(root.rglob("*.proto"))]
    request = capture_request(root, names, work)
    model = build_model(request.proto_file, request.file_to_generate, request.source_file_descriptors)
    return [entity.spec for file in model.schema.files for entity in file.entities]
