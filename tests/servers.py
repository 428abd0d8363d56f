"""Pytest plugin: real local servers for the test-suite, one of each per test session.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["servers"]``. Each fixture starts its server
(see :mod:`prism_stack`) on a free loopback port in a fresh temp dir the first time a test asks
for it, and stops it when the session ends. To run the same tests against servers you already have,
set:

* ``PRISM_TEST_POSTGRES_DSN`` (read by Prism's pytest plugin) -- e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``
* ``PRISM_TEST_NATS`` -- e.g. ``nats://127.0.0.1:4222`` (JetStream enabled)
* ``PRISM_TEST_KAFKA`` -- bootstrap servers, ``host:port[,host:port...]`` (a ``kafka://`` prefix is allowed)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import prism_stack as stack

ENV_NATS = "PRISM_TEST_NATS"
ENV_KAFKA = "PRISM_TEST_KAFKA"


@contextmanager
def server_dir(kind: str) -> Iterator[Path]:
    """A fresh directory for a server, removed afterwards.

    Not under pytest's ``tmp_path``: as root, Postgres runs as an unprivileged user who must traverse
    every ancestor of its data dir, and each new pytest session resets ``/tmp/pytest-of-root`` to 0700,
    which breaks a Postgres started by another, concurrent session.
    """
    path = Path(tempfile.mkdtemp(prefix=f"prism-test-{kind}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _started(kind: stack.ServerKind) -> Iterator[stack.RunningServer]:
    with server_dir(kind) as path:
        server = stack.start(kind, path)
        try:
            yield server
        finally:
            stack.stop(server)


def _external(env_var: str) -> str | None:
    return os.environ.get(env_var, "").strip() or None


def _kafka_bootstrap(value: str) -> str:
    return ",".join(part.strip().removeprefix("kafka://") for part in value.split(",") if part.strip())


@pytest.fixture(scope="session")
def postgres_dsn(prism_postgres_server: str) -> str:
    """DSN of a Postgres server: ``postgresql://postgres@127.0.0.1:PORT/postgres`` (trust auth).

    The server of Prism's pytest plugin (``protoc_gen_prism.pytest_plugin``), which users' suites get too:
    one per session, shared with the ``prism_postgres`` fixture.
    """
    return prism_postgres_server


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """URL of a nats-server with JetStream: ``nats://127.0.0.1:PORT``."""
    external = _external(ENV_NATS)
    if external:
        yield external
        return
    with _started("nats") as server:
        yield server.url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers (``127.0.0.1:PORT``) of a Kafka-protocol broker (Tansu, in-memory)."""
    external = _external(ENV_KAFKA)
    if external:
        yield _kafka_bootstrap(external)
        return
    with _started("kafka") as server:
        yield server.address


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    """A fresh directory for servers a test starts itself (``stack.up``, ``stack.start_*``); see ``server_dir``."""
    with server_dir("stack") as path:
        yield path
