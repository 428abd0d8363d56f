"""Helpers of the admin's tests: a deployment seeded with a PII workload, and `prism admin` run as a process."""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

import prism_runtime
from prism_runtime import migrations
from prism_runtime.pii.audit import actor
from prism_runtime.pii.wrappers import LocalKeyWrapper
from protoc_gen_prism.cli import main as prism

PRISM = [sys.executable, "-c", "import sys; from protoc_gen_prism.cli import main; sys.exit(main())"]
"""The `prism` command of this interpreter."""
PROTOS = Path(__file__).resolve().parent / "protos"
PII_PROTO = "prismtest/pii/v1/pii.proto"
ACTOR = "ops-test"
# Every value the workload stores or looks up: none may appear on any admin page.
SSN, EMAIL, PHONE, IP = "078-05-1120", "Jane.Roe@example.com", "+1 415 555 0134", "198.51.100.23"
PII_VALUES = (
    SSN,
    EMAIL,
    PHONE,
    IP,
    "John Roe",
    "p-secret",
    "clinic-secret",
    "notes-secret",
    "news.reader@example.org",
    "reader@example.net",
    "Jay Secret",
)


def free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Seeded:
    """A deployment on disk: its config, master key file and database."""

    directory: Path
    config: Path
    key_file: Path
    database: str


MIGRATING = "prismtest_pii_v1_subscription"
"""The namespace a seeded deployment moves to a second SQLite database (with `migration=True`)."""


def seed(
    directory: Path, *, nats_url: str | None = None, metrics_url: str | None = None, migration: bool = False
) -> Seeded:
    """Write a deployment of the PII test schema, provision it and run a PII workload through its stores.

    The admin compiles the copied .proto directory itself; the workload uses the session's generated code.
    """
    protos = directory / "protos"
    (protos / PII_PROTO).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROTOS / PII_PROTO, protos / PII_PROTO)
    database = f"sqlite:///{directory / 'prism.db'}"
    backends = {"sqlite": database, **({"nats": nats_url} if nats_url else {})}
    migrations: dict[str, Any] = {}
    if migration:
        backends["sqlite_new"] = f"sqlite:///{directory / 'new.db'}"
        migrations[MIGRATING] = {"source": "sqlite", "target": "sqlite_new", "phase": "dual_write"}
    # With a NATS server the deployment is generated for one (the local profile: one replica) and its streams
    # provisioned; without one, the admin compiles the .proto directory and only the SQL is provisioned.
    source = directory / "gen" if nats_url else protos
    admin: dict[str, Any] = {"source": str(source), "actor": ACTOR, "scrape_seconds": 1}
    if metrics_url:
        admin["metrics_url"] = metrics_url
    config = directory / "prism.yaml"
    body: dict[str, Any] = {"backends": backends, "admin": admin}
    if migrations:
        body["migrations"] = migrations
    config.write_text(yaml.safe_dump(body))
    if nats_url:
        # The session's NATS server is shared: other modules (test_pii) publish to the same schema's streams.
        asyncio.run(_drop_streams(nats_url, "prismtest_pii_"))
        assert (
            prism(["generate", str(protos), "-o", str(source), "--opt", "profile=local", "--no-python"]) == 0
        )
        assert prism(["provision", str(source), "--config", str(config)]) == 0
    else:
        assert prism(["provision", str(protos), "--url", database]) == 0
    key_file = directory / "master.key"
    if migration:  # the target's tables, as the runbook's first step says
        assert prism(["provision", str(protos), "--url", backends["sqlite_new"]]) == 0
    asyncio.run(
        _workload({"backends": backends, "migrations": migrations}, key_file, streams=nats_url is not None)
    )
    return Seeded(directory, config, key_file, database)


async def _drop_streams(nats_url: str, prefix: str) -> None:
    """Delete the streams named `prefix`... that earlier tests left, so this deployment's counts are its own."""
    import nats

    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        for name in await js.streams_info():
            if name.config.name and name.config.name.startswith(prefix):
                await js.delete_stream(name.config.name)
    finally:
        await nc.close()


async def _workload(config: dict[str, Any], key_file: Path, *, streams: bool) -> None:
    wrapper = LocalKeyWrapper(key_file)
    with actor("clinic-portal", "patient care"):
        async with prism_runtime.connect(config=config, key_wrapper=wrapper) as db:
            await _use(db, streams)
            if config["migrations"]:
                # Its checkpoint is the progress the Shadow migrations page shows.
                await migrations.backfill(db, MIGRATING)


async def _use(db: prism_runtime.Database, streams: bool) -> None:
    import importlib

    pb2 = importlib.import_module("prismtest.pii.v1.pii_pb2")
    stores = importlib.import_module("prismtest.pii.v1.pii_prism")
    patients = stores.PatientStore(db)
    for n in range(1, 4):
        p = pb2.Patient(patient_id=f"p-secret-{n}", ssn=SSN, email=EMAIL, phone=PHONE, last_ip=IP)
        p.emergency.name = "John Roe"
        await patients.put(p)
    assert (await patients.get("p-secret-1")).ssn == SSN
    assert await patients.find_by_email(EMAIL)
    visits = stores.VisitStore(db)
    await visits.put(pb2.Visit(clinic="clinic-secret", seq=1, patient_id="p-secret-1", notes="notes-secret"))
    assert (await visits.get("clinic-secret", 1)).notes == "notes-secret"
    subscriptions = stores.SubscriptionStore(db)
    await subscriptions.put(pb2.Subscription(account_id=7, email="news.reader@example.org", weekly=True))
    events = stores.UserEventSeries(db)
    await events.append(pb2.UserEvent(user_id="p-secret-1", at_ms=1, email="reader@example.net", page="/"))
    if streams:
        sign_ins = stores.SignInSeries(db)
        await sign_ins.append(pb2.SignIn(patient_id="p-secret-1", at_ms=2, ip=IP, device="d"))
        chat = stores.ChatLineSeries(db)
        await chat.append(pb2.ChatLine(user_id="p-secret-3", at_ms=3, nickname="Jay Secret", text="hi"))
    await prism_runtime.forget(db, "p-secret-2")


@dataclass
class Answer:
    """An HTTP response, read whole."""

    status: int
    headers: http.client.HTTPMessage
    text: str

    def cookies(self) -> dict[str, str]:
        """Return the cookies the response sets, by name."""
        found = {}
        for header in self.headers.get_all("set-cookie") or []:
            name, _, rest = header.partition("=")
            found[name] = rest.split(";", 1)[0]
        return found


def call(method: str, url: str, *, headers: dict[str, str] | None = None, body: str | None = None) -> Answer:
    """Make one HTTP request and return the whole answer (no redirects followed)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        sent = dict(headers or {})
        if body is not None:
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, sent)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read().decode())
    finally:
        connection.close()


@contextmanager
def admin_server(
    seeded: Seeded, *, host: str = "127.0.0.1", token: str | None = None, extra: list[str] | None = None
) -> Iterator[str]:
    """Run `prism admin` on the deployment until the block ends; yield its base URL on 127.0.0.1."""
    port = free_port()
    env = {**os.environ, "PRISM_MASTER_KEY_FILE": str(seeded.key_file)}
    env.pop("PRISM_ADMIN_TOKEN", None)
    if token is not None:
        env["PRISM_ADMIN_TOKEN"] = token
    args = ["admin", "--config", str(seeded.config), "--host", host, "--port", str(port), *(extra or [])]
    process = subprocess.Popen(
        [*PRISM, *args], env=env, cwd=seeded.directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise AssertionError(f"prism admin exited {process.returncode}: {process.stdout.read()!r}")  # type: ignore[union-attr]
            try:
                if call("GET", f"{base}/static/admin.css").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prism admin did not answer within 90 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@contextmanager
def example_service(generated: Path, directory: Path) -> Iterator[str]:
    """Run examples/otel_prometheus.py, a service instrumented the documented way; yield its /metrics URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(generated),
        "PRISM_MASTER_KEY_FILE": str(directory / "m.key"),
        "PRISM_URL": f"sqlite:///{directory / 'ex.db'}",
        "METRICS_PORT": str(port),
    }
    example = Path(__file__).resolve().parents[1] / "examples" / "otel_prometheus.py"
    process = subprocess.Popen(
        [sys.executable, str(example)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.terminate()
        process.wait(timeout=30)
