"""What is special about Postgres: typed errors for a down server, a wrong password, a missing table, and
the documented limits of its types."""

from __future__ import annotations

import asyncio
import importlib
import socket
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from backends import new_schema

import prism_runtime
import prism_stack as stack
from protoc_gen_prism.sql.provision import provision


@pytest.fixture
def users(generated: Path) -> tuple[Any, Any]:
    return importlib.import_module("acme.users.v1.users_pb2"), importlib.import_module(
        "acme.users.v1.users_prism"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_down_server_names_namespace_and_backend(users: Any) -> None:
    pb2, prism = users
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    async with prism_runtime.connect(url) as db:
        with pytest.raises(prism_runtime.BackendUnavailable) as caught:
            await prism.UserProfileStore(db).put(pb2.UserProfile(user_id="u1", email="secret@example.com"))
    text = str(caught.value)
    assert caught.value.namespace == "acme_users_v1_user_profile"
    assert "namespace 'acme_users_v1_user_profile', postgres (postgresql://postgres@127.0.0.1:" in text
    assert "cannot connect" in text and "prism stack up" in text
    assert "secret@example.com" not in text


async def test_missing_table_says_to_provision(users: Any, postgres_dsn: str) -> None:
    _, prism = users
    async with prism_runtime.connect(await new_schema(postgres_dsn)) as db:
        with pytest.raises(prism_runtime.SchemaMismatch) as caught:
            await prism.UserProfileStore(db).get("u1")
    assert "table 'acme_users_v1_user_profile' does not exist" in str(caught.value)
    assert "prism provision" in str(caught.value)


async def test_wrong_password_is_a_typed_error_without_the_password(tmp_path: Path, users: Any) -> None:
    _, prism = users
    server = await asyncio.to_thread(stack.start_postgres, tmp_path / "pg")
    try:
        hba = tmp_path / "pg" / "pgdata" / "pg_hba.conf"
        hba.write_text("host all secured 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        conn = await asyncpg.connect(server.url)
        await conn.execute("CREATE ROLE secured LOGIN PASSWORD 'right-password'")
        await conn.execute("SELECT pg_reload_conf()")
        await conn.close()
        url = f"postgresql://secured:wrong-password@{server.address}/postgres"
        async with prism_runtime.connect(url) as db:
            with pytest.raises(prism_runtime.BackendUnavailable) as caught:
                await prism.UserProfileStore(db).get("u1")
        text = str(caught.value)
        assert "authentication failed (InvalidPasswordError)" in text
        assert "namespace 'acme_users_v1_user_profile'" in text
        assert "wrong-password" not in text and "secured:***@" in text
    finally:
        await asyncio.to_thread(stack.stop, server)


async def test_text_with_nul_is_refused_clearly(users: Any, postgres_dsn: str, generated: Path) -> None:
    pb2, prism = users
    async with prism_runtime.connect(await new_schema(postgres_dsn)) as db:
        await provision(db, generated, echo=lambda line: None)
        with pytest.raises(prism_runtime.BackendError) as caught:
            await prism.UserProfileStore(db).put(pb2.UserProfile(user_id="u1", display_name="nul\x00secret"))
    assert "U+0000" in str(caught.value)
    assert "secret" not in str(caught.value)


async def test_timestamps_keep_microseconds(postgres_dsn: str, generated: Path) -> None:
    pb2 = importlib.import_module("prismtest.types.v1.types_pb2")
    prism = importlib.import_module("prismtest.types.v1.types_prism")
    async with prism_runtime.connect(await new_schema(postgres_dsn)) as db:
        await provision(db, generated, echo=lambda line: None)
        store = prism.AllTypesStore(db)
        message = pb2.AllTypes(id="t")
        message.at.FromNanoseconds(1_700_000_000_123_456_789)
        await store.put(message)
        got = await store.get("t")
    assert got is not None and got.at.ToNanoseconds() == 1_700_000_000_123_456_000


async def test_pool_size_comes_from_the_url(postgres_dsn: str) -> None:
    from backends import with_query

    async with prism_runtime.connect(with_query(postgres_dsn, pool_size="3")) as db:
        assert db.backend.pool_size == 3  # type: ignore[attr-defined]
    with pytest.raises(prism_runtime.ConfigError, match="pool_size"):
        await prism_runtime.connect(with_query(postgres_dsn, pool_size="lots")).open()


async def test_bulk_upserts_into_two_tables_with_same_column_names(
    postgres_dsn: str, generated: Path
) -> None:
    # Same column names, different types: each bulk load must stage with its own table's types.
    a_pb2 = importlib.import_module("prismtest.bulk.v1.bulk_pb2")
    a = importlib.import_module("prismtest.bulk.v1.bulk_prism")
    async with prism_runtime.connect(await new_schema(postgres_dsn)) as db:
        await provision(db, generated, echo=lambda line: None)
        texts, blobs = a.TextRowStore(db), a.BlobRowStore(db)
        await texts.put_many(a_pb2.TextRow(id=f"k{i}", value=f"v{i}") for i in range(300))
        await blobs.put_many(a_pb2.BlobRow(id=f"k{i}", value=f"v{i}".encode()) for i in range(300))
        assert (await texts.get("k7")) == a_pb2.TextRow(id="k7", value="v7")
        assert (await blobs.get("k7")) == a_pb2.BlobRow(id="k7", value=b"v7")
