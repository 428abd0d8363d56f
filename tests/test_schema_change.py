"""A schema change met by an old SQLite file: no DDL before the columns are checked, no index on a constant.

The scenario of issue 11: an app wrote `prism.db` with a KeyValue message; the message gains an indexed field
`country`, is regenerated, and the app runs against the old file. SQLite reads a double-quoted name it cannot
resolve as a string literal, so the old runtime's `CREATE INDEX ... ("country")`, run before it checked the
columns, indexed a constant; `prism provision --migrations` then added the column, and the index no longer
matched its table (`PRAGMA integrity_check`: "row 1 missing from index"; the next put: "database disk image
is malformed").
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from checks_support import prism, write_schema
from conftest import run_protoc
from google.protobuf import message_factory

import prism_runtime
from prism_runtime.errors import SchemaMismatch
from prism_runtime.keyvalue import KeyValueStore
from protoc_gen_prism.descriptors import build_pool
from protoc_gen_prism.images import compile_image
from protoc_gen_prism.sql.ddl import ddl_statements
from protoc_gen_prism.sql.dialects import SqliteDdl

FILE = "acme/geo/v1/geo.proto"
V1 = """message Profile {
  option (prism.access_pattern) = "key_value";
  option (prism.namespace) = "profiles";
  string id = 1 [(prism.key) = true];
  string name = 2;
  int64 visits = 3;
}"""
V2 = V1.replace("int64 visits = 3;", "int64 visits = 3;\n  string country = 4 [(prism.index) = true];")
INDEX = "profiles__country__idx"


class Version:
    """One schema version: its .proto root, generated code and SQL, and the runtime store of Profile."""

    def __init__(self, root: Path, body: str, out: Path) -> None:
        self.root = write_schema(root, body, name=FILE, package="acme.geo.v1")
        image = compile_image(self.root)
        run = run_protoc(self.root, [FILE], out)
        assert run.returncode == 0, run.stderr
        self.gen = out
        spec = image.schema().entities[0].spec
        # As the generated module has it: with the SQLite DDL the runtime runs on first use.
        self.spec = dataclasses.replace(spec, ddl={"sqlite": tuple(ddl_statements(spec, SqliteDdl()))})
        pool = build_pool(image.files)
        self.message: Any = message_factory.GetMessageClass(pool.FindMessageTypeByName("acme.geo.v1.Profile"))

    def store(self, db: prism_runtime.Database) -> KeyValueStore[Any, str]:
        return KeyValueStore(db, self.spec, self.message)


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Version, Version]:
    return Version(tmp_path / "v1", V1, tmp_path / "gen1"), Version(tmp_path / "v2", V2, tmp_path / "gen2")


def _sql(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _schema(path: Path) -> list[tuple[Any, ...]]:
    return _sql(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")


def _integrity(path: Path) -> list[str]:
    return [row[0] for row in _sql(path, "PRAGMA integrity_check")]


async def _old_app(path: Path, v1: Version) -> None:
    """Write a row as the app at v1 did: the runtime makes the table on first use, no provisioning."""
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        await v1.store(db).put(v1.message(id="u1", name="Ada", visits=3))


def _migrate(tmp_path: Path, v1: Version, v2: Version) -> Path:
    migrations = tmp_path / "migrations"
    run = prism("migrate", v2.root, "--against", v1.root, "-o", migrations, "--name", "add country")
    assert run.returncode == 0, run.stderr
    return migrations


async def test_new_field_on_an_old_file_raises_schema_mismatch_having_run_no_ddl(
    tmp_path: Path, versions: tuple[Version, Version]
) -> None:
    v1, v2 = versions
    path = tmp_path / "prism.db"
    await _old_app(path, v1)
    before = _schema(path)
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        store = v2.store(db)
        with pytest.raises(SchemaMismatch, match=r"namespace 'profiles'.*lacks columns country"):
            await store.put(v2.message(id="u2", name="Bo", country="NZ"))
        with pytest.raises(SchemaMismatch):
            await store.get("u1")
    assert _schema(path) == before  # no index (on a constant, or anything else) was made
    # The fix the error names: a migration, provisioned; the file is whole and serves v2.
    migrations = _migrate(tmp_path, v1, v2)
    done = prism("provision", v2.gen, "--url", f"sqlite:///{path}", "--migrations", migrations)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "sqlite: applied 2 file(s), 0 unchanged"
    assert _integrity(path) == ["ok"]
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        store = v2.store(db)
        await store.put(v2.message(id="u2", name="Bo", country="NZ"))
        old = await store.get("u1")
        assert old is not None and (old.name, old.country) == ("Ada", "")
        assert _by_country(path, "NZ") == ["u2"]
    assert _integrity(path) == ["ok"]


def _by_country(path: Path, country: str) -> list[str]:
    """Return the ids found through the country index itself."""
    return [
        r[0] for r in _sql(path, f"SELECT id FROM profiles INDEXED BY {INDEX} WHERE country = '{country}'")
    ]


async def test_provision_without_the_migration_refuses_before_any_ddl(
    tmp_path: Path, versions: tuple[Version, Version]
) -> None:
    # The DDL file's CREATE INDEX on a column the old table lacks would index a constant on SQLite.
    v1, v2 = versions
    path = tmp_path / "prism.db"
    await _old_app(path, v1)
    before = _schema(path)
    run = prism("provision", v2.gen, "--url", f"sqlite:///{path}")
    assert run.returncode == 1
    assert "namespace 'profiles'" in run.stderr and "lacks columns country" in run.stderr
    assert "prism migrate" in run.stderr
    assert [row for row in _schema(path) if "prism_schema_history" not in row[1]] == before
    assert _integrity(path) == ["ok"]


def _old_runtime_first_use(path: Path, v2: Version) -> None:
    """Run what the runtime before this fix ran on first use of v2: its DDL, before any column check."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in ddl_statements(v2.spec, SqliteDdl()):
            conn.execute(statement)
    finally:
        conn.close()
    # This SQLite reads the unknown "country" as a string: the index is on a constant.
    assert [r[0] for r in _sql(path, f"SELECT name FROM sqlite_master WHERE name = '{INDEX}'")] == [INDEX]


def _old_provision_without_migrations(path: Path, v2: Version) -> None:
    """Run what `prism provision gen2/` ran before this fix on the v1 file: the DDL file, unchecked, recorded."""
    source = "sql/sqlite/acme/geo/v1/geo.sql"
    text = (v2.gen / source).read_text()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS prism_schema_history (source TEXT NOT NULL, sha256 TEXT NOT NULL, "
            "applied_at TEXT NOT NULL, PRIMARY KEY (source, sha256))"
        )
        conn.executescript(text)
        conn.execute(
            "INSERT INTO prism_schema_history VALUES (?, ?, ?)",
            (source, hashlib.sha256(text.encode()).hexdigest(), "2026-01-01T00:00:00.000000Z"),
        )
    finally:
        conn.close()
    # The index of a KeyValue field ends with the key (finders page by it): only its first part is the string.
    assert _sql(path, f"SELECT cid FROM pragma_index_xinfo('{INDEX}') WHERE key = 1 ORDER BY seqno") == [
        (-2,),
        (0,),
    ]


@pytest.mark.parametrize("left_by", ["runtime", "provision"])
async def test_provision_rebuilds_an_index_on_a_constant_left_by_the_old_flow(
    tmp_path: Path, versions: tuple[Version, Version], left_by: str
) -> None:
    # A file an earlier Prism left with the index on a constant: its runtime's first use of v2, or its
    # `prism provision gen2/` without the migration (which also recorded the DDL file as applied). Before this
    # fix, applying the migration added the column under that index; now provisioning drops it first and
    # builds it again on the column.
    v1, v2 = versions
    path = tmp_path / "prism.db"
    await _old_app(path, v1)
    if left_by == "runtime":
        _old_runtime_first_use(path, v2)
    else:
        _old_provision_without_migrations(path, v2)
    migrations = _migrate(tmp_path, v1, v2)
    done = prism("provision", v2.gen, "--url", f"sqlite:///{path}", "--migrations", migrations)
    assert done.returncode == 0, done.stderr
    assert (
        f"profiles: index {INDEX} indexes the string 'country', not a column (an earlier Prism made it "
        "before the column existed): dropped, to be built again" in done.stdout
    )
    # Built again, on the column this time (an expression would show as cid -2, with no name).
    assert _sql(path, f"SELECT name FROM pragma_index_xinfo('{INDEX}') WHERE key = 1 ORDER BY seqno") == [
        ("country",),
        ("id",),
    ]
    assert _integrity(path) == ["ok"]
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        await v2.store(db).put(v2.message(id="u2", name="Bo", country="NZ"))
    assert _by_country(path, "NZ") == ["u2"]
    assert _integrity(path) == ["ok"]
    again = prism("provision", v2.gen, "--url", f"sqlite:///{path}", "--migrations", migrations)
    assert again.stdout.splitlines()[-2:] == [
        "nothing to do: all 2 file(s) already applied",
        "sqlite: applied 0 file(s), 2 unchanged",
    ]


async def test_provision_refuses_to_report_success_on_a_damaged_file(
    tmp_path: Path, versions: tuple[Version, Version]
) -> None:
    # The old flow to the end: the old runtime's index on a constant, then the column added under it, as the
    # old `prism provision --migrations` did. The file is corrupt; provisioning checks it last and fails.
    v1, v2 = versions
    path = tmp_path / "prism.db"
    await _old_app(path, v1)
    _old_runtime_first_use(path, v2)
    _sql(path, 'ALTER TABLE "profiles" ADD COLUMN "country" TEXT NOT NULL DEFAULT \'\'')
    assert _integrity(path) == [f"row 1 missing from index {INDEX}"]
    url = f"sqlite:///{path}"
    for args in ((), ("--migrations", _migrate(tmp_path, v1, v2))):
        run = prism("provision", v2.gen, "--url", url, *args)
        assert run.returncode == 1, run.stdout
        assert run.stderr.startswith(
            f"prism provision: sqlite ({path}): PRAGMA integrity_check reports 1 problem(s): "
            f"row 1 missing from index {INDEX}; the file is damaged"
        )
        assert "sqlite: applied" not in run.stdout
    # What the error says to do when only indexes are named: REINDEX; then the file provisions cleanly.
    _sql(path, "REINDEX")
    done = prism("provision", v2.gen, "--url", url)
    assert done.returncode == 0, done.stderr
    assert _integrity(path) == ["ok"]
