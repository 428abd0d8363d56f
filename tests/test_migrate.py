"""`prism migrate` + `prism provision`: a chain of three schema versions on real SQLite and Postgres, with data.

v1 -> v2 renames a field (same number), adds an optional indexed column and a repeated one;
v2 -> v3 renames the table (namespace), removes a field (expand now, contract later), indexes a column and adds one.
Rows written at every version must all be there, with their values, at the end.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from backends import BACKENDS, drop_schema, url_for
from checks_support import prism, write_schema
from conftest import run_protoc
from google.protobuf import message_factory

import prism_runtime
from prism_runtime.keyvalue import KeyValueStore
from prism_runtime.timeseries import TimeSeries
from protoc_gen_prism.descriptors import build_pool
from protoc_gen_prism.images import Image, compile_image
from protoc_gen_prism.migrations import plan_migration, render
from protoc_gen_prism.sql.provision import provision

FILE = "acme/shop/v1/shop.proto"
V1 = """message Account {
  option (prism.access_pattern) = "key_value";
  option (prism.namespace) = "accounts";
  string id = 1 [(prism.key) = true];
  string nick = 2;
  int64 credits = 3;
  string legacy = 4;
}"""
V2 = """message Account {
  option (prism.access_pattern) = "key_value";
  option (prism.namespace) = "accounts";
  string id = 1 [(prism.key) = true];
  string display_name = 2;
  int64 credits = 3;
  string legacy = 4;
  optional string country = 5 [(prism.index) = true];
  repeated string tags = 6;
}"""
V3 = """message Account {
  option (prism.access_pattern) = "key_value";
  option (prism.namespace) = "customer_accounts";
  reserved 4;
  reserved "legacy";
  string id = 1 [(prism.key) = true];
  string display_name = 2;
  int64 credits = 3 [(prism.index) = true];
  optional string country = 5 [(prism.index) = true];
  repeated string tags = 6;
  bool verified = 7;
}"""
ROWS = 300  # above the Postgres COPY threshold, so bulk upserts stage rows in a copy of the table


class Version:
    """One schema version: its .proto root, compiled image, generated SQL and runtime store."""

    def __init__(self, root: Path, body: str, out: Path, message: str = "acme.shop.v1.Account") -> None:
        self.root = write_schema(root, body, name=FILE, package="acme.shop.v1")
        self.image: Image = compile_image(self.root)
        run = run_protoc(self.root, [FILE], out)
        assert run.returncode == 0, run.stderr
        self.gen = out
        self.entity = self.image.schema().entities[0]
        pool = build_pool(self.image.files)
        self.message: Any = message_factory.GetMessageClass(pool.FindMessageTypeByName(message))

    def store(self, db: prism_runtime.Database) -> KeyValueStore[Any, str]:
        """Return the KeyValue store of Account at this version."""
        return KeyValueStore(db, self.entity.spec, self.message)


@pytest.fixture
def versions(tmp_path: Path) -> list[Version]:
    return [Version(tmp_path / f"v{i}", body, tmp_path / f"gen{i}") for i, body in enumerate((V1, V2, V3), 1)]


def test_plan_is_the_expected_sql(versions: list[Version]) -> None:
    v1, v2, v3 = (v.image.schema() for v in versions)
    first = plan_migration(v1, v2)
    assert render(first.steps, "postgres", "t").splitlines()[3:] == [
        "-- rename column accounts.nick to display_name",
        'ALTER TABLE "accounts" RENAME COLUMN "nick" TO "display_name";',
        "",
        "-- add column accounts.country",
        'ALTER TABLE IF EXISTS "accounts" ADD COLUMN IF NOT EXISTS "country" TEXT;',
        "",
        "-- add column accounts.tags",
        'ALTER TABLE IF EXISTS "accounts" ADD COLUMN IF NOT EXISTS "tags" TEXT[] NOT NULL DEFAULT \'{}\';',
        "",
        "-- create index on accounts.country",
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "accounts__country__idx" ON "accounts"("country", "id");',
    ]
    second = plan_migration(v2, v3)
    assert not second.contract and second.withheld == (
        "customer_accounts.legacy: field 4 was removed; --allow-destructive writes the expand step now and the "
        "DROP COLUMN contract step for later",
    )
    destructive = plan_migration(v2, v3, allow_destructive=True)
    assert render(destructive.contract, "sqlite", "t").splitlines()[3:] == [
        "-- contract: drop column customer_accounts.legacy",
        'ALTER TABLE "customer_accounts" DROP COLUMN "legacy";',
    ]
    assert [s.summary for s in destructive.steps] == [
        "rename table accounts to customer_accounts",
        "drop index of accounts.country",
        "add column customer_accounts.verified",
        "create index on customer_accounts.credits",
        "create index on customer_accounts.country",
        "expand: stop requiring customer_accounts.legacy (field 4 removed)",
    ]


def _rows(version: Version, start: int, **extra: Any) -> list[Any]:
    name_field = "nick" if "nick" in version.message.DESCRIPTOR.fields_by_name else "display_name"
    return [
        version.message(id=f"u{i:04d}", credits=i, **{name_field: f"name {i}"}, **extra)
        for i in range(start, start + ROWS)
    ]


async def _apply(url: str, version: Version, migrations: Path) -> list[str]:
    lines: list[str] = []
    async with prism_runtime.connect(url) as db:
        await provision(db, version.gen, migrations=migrations, echo=lines.append)
    return lines


@pytest.mark.parametrize("backend", BACKENDS)
async def test_three_versions_keep_every_row(
    request: pytest.FixtureRequest, tmp_path: Path, versions: list[Version], backend: str
) -> None:
    v1, v2, v3 = versions
    migrations = tmp_path / "migrations"
    url = await url_for(request, backend, tmp_path)
    try:
        await _apply(url, v1, migrations)
        async with prism_runtime.connect(url) as db:
            await v1.store(db).put_many(_rows(v1, 0, legacy="old"))

        first = prism("migrate", v2.root, "--against", v1.root, "-o", migrations)
        assert first.returncode == 0, first.stderr
        assert (
            migrations / "postgres" / "0001_rename_column_accounts_nick_to_display_name_and_3_more.sql"
        ).exists()
        lines = await _apply(url, v2, migrations)
        assert (
            f"migrations/{backend}/0001_rename_column_accounts_nick_to_display_name_and_3_more.sql: statement applied"
            in lines
        )
        async with prism_runtime.connect(url) as db:
            await v2.store(db).put_many(_rows(v2, ROWS, country="NL", tags=["a", "b"]))

        withheld = prism("migrate", v3.root, "--against", v2.root, "-o", tmp_path / "unused")
        assert "not written: customer_accounts.legacy: field 4 was removed" in withheld.stderr
        second = prism("migrate", v3.root, "--against", v2.root, "-o", migrations, "--allow-destructive")
        assert second.returncode == 0, second.stderr
        pending = migrations / backend / "pending"
        assert [p.name for p in pending.iterdir()] == [
            "0003_rename_table_accounts_to_customer_accounts_and_6_more_contract.sql"
        ]
        await _apply(url, v3, migrations)
        async with prism_runtime.connect(url) as db:
            await v3.store(db).put_many(_rows(v3, 2 * ROWS, verified=True))

        # Contract, once no running version reads the removed column: move the step up and provision again.
        shutil.move(
            pending / "0003_rename_table_accounts_to_customer_accounts_and_6_more_contract.sql",
            migrations / backend,
        )
        contract = await _apply(url, v3, migrations)
        assert any("0003_" in line and "applied" in line for line in contract)
        again = await _apply(url, v3, migrations)
        assert again[-1].startswith("nothing to do: all ")

        async with prism_runtime.connect(url) as db:
            store = v3.store(db)
            got = await store.get_many([f"u{i:04d}" for i in range(3 * ROWS)])
            columns = await _columns(db, backend)
        assert all(row is not None for row in got)
        assert [row.display_name for row in got[:3]] == ["name 0", "name 1", "name 2"]
        assert (
            got[ROWS].country == "NL"
            and list(got[ROWS].tags) == ["a", "b"]
            and not got[0].HasField("country")
        )
        assert [row.credits for row in got] == list(range(3 * ROWS))
        assert sum(row.verified for row in got) == ROWS
        assert "legacy" not in columns and "nick" not in columns and "verified" in columns
    finally:
        if backend == "postgres":
            await drop_schema(url)


async def _columns(db: prism_runtime.Database, backend: str) -> set[str]:
    driver: Any = db.backend
    return {row[0] for row in await driver.fetch(_COLUMNS[backend], [], namespace="t")}


_COLUMNS = {
    "sqlite": "SELECT name FROM pragma_table_info('customer_accounts')",
    "postgres": "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = 'customer_accounts'",
}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_fresh_database_skips_migrations_and_gets_whole_tables(
    request: pytest.FixtureRequest, tmp_path: Path, versions: list[Version], backend: str
) -> None:
    v1, v2, v3 = versions
    migrations = tmp_path / "migrations"
    assert prism("migrate", v2.root, "--against", v1.root, "-o", migrations).returncode == 0
    assert (
        prism("migrate", v3.root, "--against", v2.root, "-o", migrations, "--allow-destructive").returncode
        == 0
    )
    url = await url_for(request, backend, tmp_path)
    try:
        lines = await _apply(url, v3, migrations)
        assert any(
            "skipped (already done, or its table is created whole by the DDL)" in line for line in lines
        )
        async with prism_runtime.connect(url) as db:
            store = v3.store(db)
            await store.put(v3.message(id="x", display_name="X", verified=True))
            got = await store.get("x")
        assert got is not None and got.verified
    finally:
        if backend == "postgres":
            await drop_schema(url)


def test_no_change_writes_nothing(tmp_path: Path) -> None:
    root = write_schema(tmp_path / "p", V1, name=FILE, package="acme.shop.v1")
    run = prism("migrate", root, "--against", root, "-o", tmp_path / "m")
    assert run.returncode == 0 and "nothing written" in run.stdout
    assert not (tmp_path / "m").exists()


def test_key_and_type_changes_are_withheld(tmp_path: Path) -> None:
    before = write_schema(tmp_path / "a", V1, name=FILE, package="acme.shop.v1")
    after = write_schema(
        tmp_path / "b", V1.replace("int64 credits", "double credits"), name=FILE, package="acme.shop.v1"
    )
    run = prism("migrate", after, "--against", before, "-o", tmp_path / "m")
    assert "not written: accounts.credits: column type changes from BIGINT to DOUBLE PRECISION" in run.stderr


def test_a_withheld_type_or_key_change_fails_and_writes_nothing(tmp_path: Path) -> None:
    before = write_schema(tmp_path / "a", V1, name=FILE, package="acme.shop.v1")
    # Alongside a change that alone would be written (a new field): a partial migration is not written either.
    changed = V1.replace("int64 credits", "double credits").replace(
        "string legacy = 4;", "string legacy = 4;\n  string note = 5;"
    )
    after = write_schema(tmp_path / "b", changed, name=FILE, package="acme.shop.v1")
    run = prism("migrate", after, "--against", before, "-o", tmp_path / "m")
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "prism migrate: not written: accounts.credits: column type changes from BIGINT to DOUBLE PRECISION; "
        "add a new field and backfill it instead",
        "prism migrate: nothing written: no migration brings the database to the current schema while 1 "
        "change(s) above stand; change the schema as they say, then run prism migrate again",
    ]
    assert not (tmp_path / "m").exists()
    rekeyed = write_schema(
        tmp_path / "c",
        V1.replace("string id = 1 [(prism.key) = true];", "string id = 1;").replace(
            "string nick = 2;", "string nick = 2 [(prism.key) = true];"
        ),
        name=FILE,
        package="acme.shop.v1",
    )
    run = prism("migrate", rekeyed, "--against", before, "-o", tmp_path / "m")
    assert run.returncode == 1 and "not written: accounts: the primary key" in run.stderr
    assert not (tmp_path / "m").exists()


def test_a_withheld_removal_still_writes_the_rest_and_exits_0(tmp_path: Path) -> None:
    before = write_schema(tmp_path / "a", V1, name=FILE, package="acme.shop.v1")
    after = write_schema(
        tmp_path / "b",
        V1.replace("string legacy = 4;", "reserved 4;\n  string note = 5;"),
        name=FILE,
        package="acme.shop.v1",
    )
    run = prism("migrate", after, "--against", before, "-o", tmp_path / "m")
    assert run.returncode == 0, run.stderr
    assert "not written: accounts.legacy: field 4 was removed" in run.stderr
    assert sorted(p.name for p in (tmp_path / "m" / "sqlite").iterdir()) == [
        "0001_add_column_accounts_note.sql"
    ]


def test_provision_cli_applies_migrations_first(tmp_path: Path, versions: list[Version]) -> None:
    v1, v2, _ = versions
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    first = prism("provision", v1.gen, "--url", url)
    assert first.returncode == 0, first.stderr
    migrations = tmp_path / "migrations"
    assert (
        prism(
            "migrate", v2.root, "--against", v1.root, "-o", migrations, "--name", "Nick to display name"
        ).returncode
        == 0
    )
    dry = prism("provision", v2.gen, "--url", url, "--migrations", migrations, "--dry-run")
    assert (
        dry.stdout.splitlines()[0]
        == "migrations/sqlite/0001_nick_to_display_name.sql: statement would be applied"
    )
    done = prism("provision", v2.gen, "--url", url, "--migrations", migrations)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "migrations/sqlite/0001_nick_to_display_name.sql: statement applied"
    assert "sql/sqlite/acme/shop/v1/shop.sql: index accounts__country__idx already exists" in lines
    assert lines[-1] == "sqlite: applied 2 file(s), 0 unchanged"


SERIES_V1 = """message Click {
  option (prism.access_pattern) = "append_heavy";
  option (prism.retention_days) = "7";
  option (prism.namespace) = "clicks";
  string user_id = 1 [(prism.key) = true];
  int64 at_ms = 2 [(prism.event_time) = true];
  string page = 3;
}"""
SERIES_V2 = SERIES_V1.replace(
    "string page = 3;", "string url = 3;\n  string referrer = 4 [(prism.index) = true];"
)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_time_series_migration_keeps_events(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    # On Postgres a series table is partitioned by event time: its index cannot be built CONCURRENTLY.
    v1 = Version(tmp_path / "s1", SERIES_V1, tmp_path / "g1", message="acme.shop.v1.Click")
    v2 = Version(tmp_path / "s2", SERIES_V2, tmp_path / "g2", message="acme.shop.v1.Click")
    migrations = tmp_path / "migrations"
    url = await url_for(request, backend, tmp_path)
    try:
        await _apply(url, v1, migrations)
        base_ms = int(time.time() * 1000) - 3_600_000  # within retention: older events are dropped on purpose
        async with prism_runtime.connect(url) as db:
            await TimeSeries(db, v1.entity.spec, v1.message).append_many(
                v1.message(user_id="u", at_ms=base_ms + i, page=f"/p{i}") for i in range(50)
            )
        assert prism("migrate", v2.root, "--against", v1.root, "-o", migrations).returncode == 0
        sql = (migrations / "postgres").glob("*.sql").__next__().read_text()
        assert 'CREATE INDEX IF NOT EXISTS "clicks__referrer__idx" ON "clicks"' in sql
        await _apply(url, v2, migrations)
        async with prism_runtime.connect(url) as db:
            series = TimeSeries(db, v2.entity.spec, v2.message)
            await series.append(v2.message(user_id="u", at_ms=base_ms + 50, url="/new", referrer="r"))
            events = [e async for e in series.query("u", base_ms, base_ms + 100)]
        assert [e.url for e in events] == [f"/p{i}" for i in range(50)] + ["/new"]
        assert events[-1].referrer == "r" and events[0].referrer == ""
    finally:
        if backend == "postgres":
            await drop_schema(url)


def test_blind_index_columns_follow_their_field(tmp_path: Path) -> None:
    email = 'string email = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true{}];'
    body = 'message Account {{\n  option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];\n  {}\n}}'
    plain = compile_image(
        write_schema(tmp_path / "a", body.format(email.format("")), name=FILE, package="acme.shop.v1")
    )
    searchable = email.format(", (prism.searchable) = true")
    found = compile_image(
        write_schema(tmp_path / "b", body.format(searchable), name=FILE, package="acme.shop.v1")
    )
    renamed = compile_image(
        write_schema(
            tmp_path / "c",
            body.format(searchable.replace("email =", "mail =")),
            name=FILE,
            package="acme.shop.v1",
        )
    )
    added = plan_migration(plain.schema(), found.schema())
    assert [s.summary for s in added.steps] == [
        "add column acme_shop_v1_account.email__bidx",
        "create index on acme_shop_v1_account.email__bidx",
    ]
    moved = plan_migration(found.schema(), renamed.schema())
    assert [s.summary for s in moved.steps] == [
        "rename column acme_shop_v1_account.email to mail",
        "rename column acme_shop_v1_account.email__bidx to mail__bidx",
        "drop index of acme_shop_v1_account.email__bidx",
        "create index on acme_shop_v1_account.mail__bidx",
    ]
