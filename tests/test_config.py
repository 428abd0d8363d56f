"""Namespace binding: connect(config=...) sends each namespace to its plan's backend, or where it is bound."""

from __future__ import annotations

import datetime
import importlib
import uuid
from pathlib import Path
from typing import Any

import pytest

import prism_runtime


@pytest.fixture
def modules(generated: Path) -> dict[str, Any]:
    names = [
        "acme.events.v1.events_pb2",
        "acme.events.v1.events_prism",
        "acme.users.v1.users_pb2",
        "acme.users.v1.users_prism",
    ]
    return {n.rsplit(".", 1)[1]: importlib.import_module(n) for n in names}


def click(pb2: Any, user: str) -> Any:
    event = pb2.ClickEvent(user_id=user, page="/")
    event.at.FromDatetime(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
    return event


async def test_each_namespace_goes_to_its_planned_backend_when_configured(
    modules: dict[str, Any], kafka_bootstrap: str, nats_url: str, tmp_path: Path
) -> None:
    events, events_prism = modules["events_pb2"], modules["events_prism"]
    users, users_prism = modules["users_pb2"], modules["users_prism"]
    sqlite = f"sqlite:///{tmp_path / 'default.db'}"
    kafka = f"kafka://{kafka_bootstrap}?idempotence=false"
    config = {"backends": {"kafka": kafka, "nats": nats_url, "sqlite": sqlite}}
    user = f"u-{uuid.uuid4().hex}"
    async with prism_runtime.connect(config=config) as db:
        clicks, stock, profiles = (
            events_prism.ClickEventSeries(db),
            events_prism.StockLevelSeries(db),
            users_prism.UserProfileStore(db),
        )
        assert [db.kind_for(s.spec) for s in (clicks, stock, profiles)] == ["kafka", "nats", "sqlite"]
        await clicks.append(click(events, user))
        await profiles.put(users.UserProfile(user_id=user))
    async with prism_runtime.connect(kafka) as on_kafka:
        assert [e.user_id async for e in events_prism.ClickEventSeries(on_kafka).query(user)] == [user]
    async with prism_runtime.connect(sqlite) as on_sqlite:
        assert [e async for e in events_prism.ClickEventSeries(on_sqlite).query(user)] == []
        assert await users_prism.UserProfileStore(on_sqlite).get(user) is not None


async def test_an_unconfigured_kind_falls_back_to_the_embedded_default(
    modules: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "prism.yaml"
    path.write_text(f"backends:\n  sqlite: sqlite:///{tmp_path / 'x.db'}\n")
    async with prism_runtime.connect(config=path) as db:
        assert db.kind_for(modules["events_prism"].ClickEventSeries(db).spec) == "sqlite"


async def test_an_explicit_binding_wins_over_the_plan(
    modules: dict[str, Any], nats_url: str, tmp_path: Path
) -> None:
    config = {
        "backends": {"nats": nats_url, "sqlite": f"sqlite:///{tmp_path / 'x.db'}"},
        "namespaces": {"acme_events_v1_click_event": "nats"},
    }
    async with prism_runtime.connect(config=config) as db:
        clicks = modules["events_prism"].ClickEventSeries(db)
        assert db.kind_for(clicks.spec) == "nats"
        user = f"u-{uuid.uuid4().hex}"
        await clicks.append(click(modules["events_pb2"], user))
        assert [e.user_id async for e in clicks.query(user)] == [user]


async def test_an_impossible_binding_fails_at_connect_time(
    modules: dict[str, Any], kafka_bootstrap: str
) -> None:
    config = {
        "backends": {"kafka": f"kafka://{kafka_bootstrap}"},
        "namespaces": {"acme_users_v1_user_profile": "kafka"},
    }
    with pytest.raises(prism_runtime.ConfigError) as error:
        await prism_runtime.connect("sqlite://", config=config).open()
    assert str(error.value) == (
        "namespace 'acme_users_v1_user_profile' is key_value data, which a kafka backend cannot serve; "
        "bind it to a backend serving key_value (sqlite, postgres)"
    )


async def test_a_default_that_cannot_serve_is_a_config_error_at_first_use(modules: dict[str, Any]) -> None:
    async with prism_runtime.connect("kafka://127.0.0.1:1") as db:
        with pytest.raises(prism_runtime.ConfigError, match="'acme_users_v1_user_profile' is key_value data"):
            modules["users_prism"].UserProfileStore(db)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"backend": {}}, "config: unknown key 'backend'; allowed: backends, namespaces, migrations"),
        (
            {"backends": {"mysql": "mysql://x"}},
            "config: backends.mysql: unsupported URL scheme 'mysql' in 'mysql://x'; "
            "allowed: sqlite://, postgresql://, postgres://, kafka://, nats://",
        ),
        (
            {"backends": {"my-db": "sqlite://"}},
            "config: backends: 'my-db' is neither a kind (kafka, nats, postgres, sqlite) nor a name "
            "(letters, digits, underscores)",
        ),
        ({"backends": {"kafka": "nats://h:1"}}, "config: backends.kafka is a nats URL (nats://h:1)"),
        (
            {"namespaces": {"ns": "kafka"}},
            "config: namespaces.ns is bound to 'kafka', which has no URL; allowed: sqlite (add it under backends)",
        ),
        ([1, 2], "config: expected a mapping with keys backends, namespaces, migrations"),
    ],
)
def test_a_wrong_config_names_what_is_allowed(config: Any, expected: str) -> None:
    with pytest.raises(prism_runtime.ConfigError) as error:
        prism_runtime.connect("sqlite://", config=config)
    assert str(error.value) == expected


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(prism_runtime.ConfigError, match=r"cannot read config .*nope\.yaml"):
        prism_runtime.connect(config=tmp_path / "nope.yaml")


async def test_key_value_goes_to_postgres_when_configured(
    modules: dict[str, Any], postgres_dsn: str, tmp_path: Path
) -> None:
    config = {"backends": {"postgres": postgres_dsn, "sqlite": f"sqlite:///{tmp_path / 'x.db'}"}}
    async with prism_runtime.connect(config=config) as db:
        profiles = modules["users_prism"].UserProfileStore(db)
        clicks = modules["events_prism"].ClickEventSeries(db)
        assert (db.kind_for(profiles.spec), db.kind_for(clicks.spec)) == ("postgres", "sqlite")
