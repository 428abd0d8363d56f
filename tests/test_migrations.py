"""Moving a namespace between backends with shadow traffic (docs/migrations-between-backends.md), on real
servers: dual write, shadow read, promote and roll back, a backfill killed with SIGKILL and resumed under a
concurrent writer of puts and deletes, `--verify`, and PII (ciphertext copied with its keys, forget on both
sides, audit chains intact)."""

from __future__ import annotations

import asyncio
import importlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from backends import new_schema

import prism_runtime
from prism_runtime import migrations
from prism_runtime.errors import ConfigError
from protoc_gen_prism.sql.provision import provision

NS = "acme_users_v1_user_profile"
CLI = [sys.executable, "-c", "import sys; from protoc_gen_prism.cli import main; sys.exit(main())"]


@pytest.fixture
def users(generated: Path) -> tuple[Any, Any]:
    return importlib.import_module("acme.users.v1.users_pb2"), importlib.import_module(
        "acme.users.v1.users_prism"
    )


async def new_database(dsn: str) -> str:
    """Create a second database on the server and return its DSN (two Postgres databases, not schemas)."""
    name = f"m_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn.rsplit("/", 1)[0] + f"/{name}"


async def provisioned(url: str, generated: Path) -> str:
    async with prism_runtime.connect(url) as db:
        await provision(db, generated, echo=lambda line: None)
    return url


async def ends(kind: str, tmp_path: Path, generated: Path, postgres_dsn: str) -> tuple[str, str]:
    """Return (source URL, target URL) of an empty migration of `kind`: sqlite->postgres or postgres->postgres."""
    target = await provisioned(await new_database(postgres_dsn), generated)
    if kind == "sqlite->postgres":
        return f"sqlite:///{tmp_path / 'source.db'}", target
    return await provisioned(await new_schema(postgres_dsn), generated), target


def config_file(tmp_path: Path, source: str, target: str, phase: str = "dual_write", **more: Any) -> Path:
    path = tmp_path / "prism.yaml"
    body = {
        "backends": {"old": source, "new": target},
        "namespaces": {NS: "old"},
        "migrations": {
            NS: {"source": "old", "target": "new", "phase": phase, "phase_poll_seconds": 0.1, **more}
        },
    }
    path.write_text(yaml.safe_dump(body))
    return path


def profile(pb2: Any, i: int, version: int = 0) -> Any:
    return pb2.UserProfile(
        user_id=f"u{i:05d}",
        email=f"user{i}.v{version}@example.com",
        display_name=f"User {i} v{version}",
        tags=["a", f"t{version}"],
        preferences={"lang": "en", "v": str(version)},
    )


def test_config_names_two_backends_of_one_kind_and_checks_migrations(tmp_path: Path) -> None:
    from prism_runtime.config import load_config

    config = load_config(
        config={
            "backends": {"postgres": "postgresql://a/x", "pg_new": "postgresql://b/y"},
            "migrations": {"ns": {"source": "postgres", "target": "pg_new", "phase": "shadow_read"}},
        }
    )
    assert config.backends["pg_new"].kind == "postgres"
    assert (
        config.migrations["ns"].phase == "shadow_read" and config.migrations["ns"].shadow_read_sample == 1.0
    )
    bad = [
        ({"ns": {"source": "postgres", "target": "nowhere"}}, "which has no URL"),
        ({"ns": {"source": "postgres", "target": "postgres"}}, "name two backends"),
        ({"ns": {"source": "postgres", "target": "pg_new", "phase": "later"}}, "allowed: dual_write"),
        ({"ns": {"source": "postgres", "target": "pg_new", "shadow_read_sample": 2}}, "0.0..1.0"),
    ]
    for migrations_section, message in bad:
        with pytest.raises(ConfigError, match=message):
            load_config(
                config={
                    "backends": {"postgres": "postgresql://a/x", "pg_new": "postgresql://b/y"},
                    "migrations": migrations_section,
                }
            )
    with pytest.raises(ConfigError, match="is a sqlite URL"):
        load_config(config={"backends": {"postgres": "sqlite:///x.db"}})


async def rows_on(url: str, generated: Path, pb2: Any, prism: Any, keys: list[str]) -> dict[str, Any]:
    """Read `keys` straight from one backend (no migration), decrypting with the keys it holds."""
    async with prism_runtime.connect(url) as db:
        found = await prism.UserProfileStore(db).get_many(keys)
    return {k: v for k, v in zip(keys, found, strict=True) if v is not None}


@pytest.mark.parametrize("kind", ["sqlite->postgres", "postgres->postgres"])
async def test_phases_route_reads_and_writes_and_a_rollback_loses_nothing(
    kind: str, tmp_path: Path, generated: Path, postgres_dsn: str, users: Any
) -> None:
    pb2, prism = users
    source, target = await ends(kind, tmp_path, generated, postgres_dsn)
    path = config_file(tmp_path, source, target)
    async with prism_runtime.connect(config=path) as db:
        store = prism.UserProfileStore(db)
        await store.put(profile(pb2, 1))
        await store.put_many([profile(pb2, 2), profile(pb2, 3)])
        assert await store.delete("u00003")
        assert await store.get("u00001") == profile(pb2, 1)
        # dual_write: both sides hold the writes; the target's copy is the source's ciphertext, opened there.
        assert await rows_on(target, generated, pb2, prism, ["u00001", "u00002", "u00003"]) == {
            "u00001": profile(pb2, 1),
            "u00002": profile(pb2, 2),
        }
        await migrations.set_phase(db, NS, "shadow_read", "tester")
        assert await store.get("u00002") == profile(pb2, 2)
        with pytest.raises(ConfigError, match="done only after promoted"):
            await migrations.set_phase(db, NS, "done", "tester")
        await migrations.set_phase(db, NS, "promoted", "tester")
        assert (await migrations.status(db, NS)).following == "promoted"
        await store.put(profile(pb2, 4))
        await store.put(profile(pb2, 1, version=1))
        assert await store.delete("u00002")
        # Roll back: the source got every write made while the target was primary.
        await migrations.set_phase(db, NS, "dual_write", "tester")
        expected = {"u00001": profile(pb2, 1, version=1), "u00004": profile(pb2, 4)}
        keys = ["u00001", "u00002", "u00004"]
        assert dict(zip(keys, await store.get_many(keys), strict=True)) == {**expected, "u00002": None}
    assert await rows_on(source, generated, pb2, prism, keys) == expected
    assert await rows_on(target, generated, pb2, prism, keys) == expected
