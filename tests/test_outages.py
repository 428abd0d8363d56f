"""Outages of real servers: each test starts its own server, crashes it (SIGKILL of the whole process
group) or restarts it on the same port and data dir, and checks that calls fail fast with
BackendUnavailable naming the caller's namespace, then work again once the server is back.

Every wait is bounded by a count of attempts; the only unbounded-looking parts are server starts, which
`prism_stack` bounds itself. The recovery times printed (``-s`` shows them) are the figures in
docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from servers import server_dir

import prism_runtime
import prism_stack as stack
from prism_stack import postgres_server, supervisor
from protoc_gen_prism.sql.provision import provision

# How long one call may take to fail while its server is down: fast, not a client's own long timeout.
FAIL_FAST_S = 5.0
# Attempts (0.1 s apart) to wait for the first success after a server is back: 30 s at most.
RECOVERY_ATTEMPTS = 300


@pytest.fixture
def modules(generated: Path) -> dict[str, Any]:
    return {
        name: importlib.import_module(module)
        for name, module in {
            "users_pb2": "acme.users.v1.users_pb2",
            "users": "acme.users.v1.users_prism",
            "pii_pb2": "prismtest.pii.v1.pii_pb2",
            "pii": "prismtest.pii.v1.pii_prism",
            "events_pb2": "acme.events.v1.events_pb2",
            "events": "acme.events.v1.events_prism",
        }.items()
    }


@pytest.fixture
def own_dir() -> Iterator[Path]:
    with server_dir("outage") as path:
        yield path


async def fails_fast(call: Callable[[], Awaitable[object]]) -> prism_runtime.BackendUnavailable:
    """Run `call` while its server is down; return the BackendUnavailable it must raise within FAIL_FAST_S."""
    started = time.monotonic()
    with pytest.raises(prism_runtime.BackendUnavailable) as caught:
        await asyncio.wait_for(call(), FAIL_FAST_S * 2)
    assert time.monotonic() - started < FAIL_FAST_S
    return caught.value


async def recovers(call: Callable[[], Awaitable[object]]) -> float:
    """Retry `call` until it succeeds (BackendUnavailable meanwhile); return the seconds it took."""
    started = time.monotonic()
    for _ in range(RECOVERY_ATTEMPTS):
        try:
            await asyncio.wait_for(call(), FAIL_FAST_S * 2)
        except prism_runtime.BackendUnavailable:
            await asyncio.sleep(0.1)
            continue
        return time.monotonic() - started
    raise AssertionError(f"no recovery within {RECOVERY_ATTEMPTS} attempts")


def start_standby(pgdata: Path, port: int) -> subprocess.Popen[bytes]:
    """Start the cluster as a standby with hot standby off: it listens, and refuses every session (57P03)."""
    account = pwd.getpwnam(postgres_server.SYSTEM_USER) if os.geteuid() == 0 else None
    with open(pgdata.parent / "standby.log", "ab") as log:
        proc = subprocess.Popen(
            [
                str(stack.postgres_tool("postgres")), "-D", str(pgdata),
                "-c", f"listen_addresses={supervisor.HOST}", "-c", f"port={port}",
                "-c", "unix_socket_directories=", "-c", "hot_standby=off",
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            user=account.pw_uid if account else None, group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )  # fmt: skip
    for _ in range(RECOVERY_ATTEMPTS):
        try:
            socket.create_connection((supervisor.HOST, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"the standby did not listen; see {pgdata.parent / 'standby.log'}")


# -- Postgres ------------------------------------------------------------------------------------------


@pytest.fixture
async def pg(own_dir: Path, generated: Path) -> AsyncIterator[stack.RunningServer]:
    """A Postgres of this test alone, provisioned with every generated schema."""
    server = await asyncio.to_thread(stack.start_postgres, own_dir)
    try:
        async with prism_runtime.connect(server.url) as db:
            await provision(db, generated, echo=lambda line: None)
        yield server
    finally:
        await asyncio.to_thread(stack.crash, server)


def pg_calls(db: prism_runtime.Database, m: dict[str, Any]) -> dict[str, Callable[[], Awaitable[object]]]:
    """A get and a put of a plain entity and of an encrypted, audited one (keys and audit in play)."""
    users, patients = m["users"].UserProfileStore(db), m["pii"].PatientStore(db)
    return {
        "acme_users_v1_user_profile get": lambda: users.get("u1"),
        "acme_users_v1_user_profile put": lambda: users.put(m["users_pb2"].UserProfile(user_id="u2")),
        "prismtest_pii_v1_patient get": lambda: patients.get("p1"),
        "prismtest_pii_v1_patient put": lambda: patients.put(
            m["pii_pb2"].Patient(patient_id="p2", ssn="078-05-1120")
        ),
    }


async def test_postgres_crash_fails_fast_naming_the_namespace_then_recovers(
    pg: stack.RunningServer, modules: dict[str, Any]
) -> None:
    m = modules
    async with prism_runtime.connect(pg.url) as db:
        calls = pg_calls(db, m)
        await (
            m["users"].UserProfileStore(db).put(m["users_pb2"].UserProfile(user_id="u1", display_name="Ann"))
        )
        await m["pii"].PatientStore(db).put(m["pii_pb2"].Patient(patient_id="p1", ssn="078-05-1120"))
        for call in calls.values():
            await call()  # the pool holds live connections when the server dies

        await asyncio.to_thread(stack.crash, pg)
        for name, call in calls.items():
            for _ in range(2):  # the pool's dead connections first, then refused new ones
                error = await fails_fast(call)
                assert error.namespace == name.split()[0], (name, str(error))
                assert "078-05-1120" not in str(error)

        server = await asyncio.to_thread(stack.start_postgres, pg.data_dir, port=pg.port)
        try:
            seconds = [await recovers(call) for call in calls.values()]
            print(f"postgres: first success {seconds[0]:.3f}s after the restart returned")
            found = await m["users"].UserProfileStore(db).get("u1")
            assert found is not None and found.display_name == "Ann"
            patient = await m["pii"].PatientStore(db).get("p1")
            assert patient is not None and patient.ssn == "078-05-1120"
        finally:
            await asyncio.to_thread(stack.crash, server)


async def test_postgres_terminated_connections_are_unavailable_not_a_plain_backend_error(
    pg: stack.RunningServer, modules: dict[str, Any]
) -> None:
    m = modules
    async with prism_runtime.connect(pg.url) as db:
        calls = pg_calls(db, m)
        await m["pii"].PatientStore(db).put(m["pii_pb2"].Patient(patient_id="p1", ssn="078-05-1120"))
        for call in calls.values():
            await call()
        for name, call in calls.items():
            admin = await asyncpg.connect(pg.url)
            try:  # SQLSTATE 57P01 on the pool's connections: an administrator (or a failover) ended them
                await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
            finally:
                await admin.close()
            try:
                await call()  # a connection the pool finds closed is replaced: this may well succeed
            except prism_runtime.BackendError as error:
                assert type(error) is prism_runtime.BackendUnavailable, (name, str(error))
                assert error.namespace == name.split()[0], (name, str(error))
            await call()  # and the next one does


async def test_postgres_starting_up_is_unavailable_naming_the_namespace(
    pg: stack.RunningServer, modules: dict[str, Any]
) -> None:
    """A server that accepts TCP but answers 57P03 ("not accepting connections"): a standby with hot
    standby off, as a server in crash recovery or a replica being promoted answers."""
    m = modules
    async with prism_runtime.connect(pg.url) as db:
        calls = pg_calls(db, m)
        for call in calls.values():
            await call()
        await asyncio.to_thread(stack.stop, pg)
        pgdata = pg.data_dir / "pgdata"
        (pgdata / "standby.signal").touch()
        standby = start_standby(pgdata, pg.port)
        try:
            for name, call in calls.items():
                error = await fails_fast(call)
                assert error.namespace == name.split()[0], (name, str(error))
                assert "SQLSTATE 57P03" in str(error) or "Connection" in str(error), str(error)
            assert "SQLSTATE 57P03" in str(await fails_fast(calls["prismtest_pii_v1_patient put"]))
        finally:
            os.killpg(standby.pid, signal.SIGKILL)
            standby.wait(timeout=15)
            (pgdata / "standby.signal").unlink()
        server = await asyncio.to_thread(stack.start_postgres, pg.data_dir, port=pg.port)
        try:
            for call in calls.values():
                await recovers(call)
        finally:
            await asyncio.to_thread(stack.crash, server)


# -- NATS and Kafka ------------------------------------------------------------------------------------


def click(m: dict[str, Any], user: str, n: int) -> Any:
    """A ClickEvent of `user` whose page and time are its number (distinct numbers, distinct events)."""
    event = m["events_pb2"].ClickEvent(user_id=user, page=f"/{n}")
    event.at.FromMilliseconds(1_700_000_000_000 + n)
    return event


async def next_page(tail: Any) -> tuple[str, float]:
    """Return the page of the tail's next event and the seconds it took, iterating again after each
    BackendUnavailable (the tail is kept across an outage)."""
    started = time.monotonic()
    for _ in range(RECOVERY_ATTEMPTS):
        try:
            event = await asyncio.wait_for(anext(tail), FAIL_FAST_S * 2)
        except prism_runtime.BackendUnavailable:
            continue
        return str(event.page), time.monotonic() - started
    raise AssertionError(f"the tail did not resume within {RECOVERY_ATTEMPTS} attempts")


async def test_nats_appends_and_tails_resume_after_an_outage_of_any_length(
    own_dir: Path, modules: dict[str, Any]
) -> None:
    m = modules
    server = await asyncio.to_thread(stack.start_nats, own_dir)
    try:
        async with prism_runtime.connect(server.url) as db:
            series = m["events"].ClickEventSeries(db)
            await series.append(click(m, "u", 0))
            async with series.tail("u") as tail:
                await series.append(click(m, "u", 1))
                assert (await next_page(tail))[0] == "/1"

                await asyncio.to_thread(stack.crash, server)
                backend = db._backends["nats"]
                # nats-py gave up for good after 3 failed reconnects (about 8 s): outlast far more.
                for n in range(2, 2 + RECOVERY_ATTEMPTS):
                    error = await fails_fast(lambda n=n: series.append(click(m, "u", n)))  # type: ignore[misc]
                    assert error.namespace == "acme_events_v1_click_event"
                    with pytest.raises(prism_runtime.BackendUnavailable):
                        await asyncio.wait_for(anext(tail), FAIL_FAST_S)
                    if backend.failed_connects >= 12:
                        break
                else:
                    raise AssertionError("the client stopped trying to reconnect")

                server = await asyncio.to_thread(stack.start_nats, own_dir, port=server.port)
                seconds = await recovers(lambda: series.append(click(m, "u", 1000)))
                page, tail_seconds = await next_page(tail)
                assert page == "/1000"
                print(f"nats: append {seconds:.3f}s, tail {seconds + tail_seconds:.3f}s after the restart")
                assert [e.page for e in await collect(series.query("u"))] == ["/0", "/1", "/1000"]
    finally:
        await asyncio.to_thread(stack.crash, server)


async def collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


async def test_kafka_appends_fail_within_a_bound_during_a_broker_outage_and_resume_after(
    own_dir: Path, modules: dict[str, Any]
) -> None:
    from prism_runtime.backends.kafka import SEND_TIMEOUT_S

    m = modules
    server = await asyncio.to_thread(stack.start_kafka, own_dir)
    try:
        async with prism_runtime.connect(server.app_url) as db:
            series = m["events"].ClickEventSeries(db)
            await series.append(click(m, "u", 0))
            await asyncio.to_thread(stack.crash, server)
            for n in (1, 2):  # without the bound, each waited for aiokafka's 40 s request timeout
                started = time.monotonic()
                with pytest.raises(prism_runtime.BackendUnavailable) as caught:
                    await asyncio.wait_for(series.append(click(m, "u", n)), SEND_TIMEOUT_S * 4)
                assert time.monotonic() - started < SEND_TIMEOUT_S + 2
                assert caught.value.namespace == "acme_events_v1_click_event"
            server = await asyncio.to_thread(stack.start_kafka, own_dir, port=server.port)
            seconds = await recovers(lambda: series.append(click(m, "u", 1000)))
            print(f"kafka: append {seconds:.3f}s after the restart (same producer, no app restart)")
    finally:
        await asyncio.to_thread(stack.crash, server)


async def test_kafka_idempotent_producer_refused_says_what_and_how_to_fix(
    own_dir: Path, modules: dict[str, Any]
) -> None:
    m = modules
    server = await asyncio.to_thread(stack.start_kafka, own_dir)
    try:
        async with prism_runtime.connect(server.url) as db:  # idempotence on: the Kafka default
            with pytest.raises(prism_runtime.BackendError) as caught:
                await m["events"].ClickEventSeries(db).append(click(m, "u", 0))
        text = str(caught.value)
        assert "InitProducerId" in text and "?idempotence=false" in text, text
        assert caught.value.namespace == "acme_events_v1_click_event"
    finally:
        await asyncio.to_thread(stack.crash, server)


async def test_stack_up_prints_urls_that_work_as_printed(own_dir: Path, modules: dict[str, Any]) -> None:
    """`prism stack up` prints a PRISM_URL and a prism.yaml snippet; with the local Kafka-protocol broker
    both must work for an append and a query, pasted as they are."""
    import yaml

    from protoc_gen_prism.protoc_runner import tool

    def prism(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("prism"), "stack", *args, "--dir", str(own_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    up = await asyncio.to_thread(prism, "up", "--only", "kafka")
    try:
        assert up.returncode == 0, up.stderr
        lines = up.stdout.splitlines()
        exports = [
            line.removeprefix("export PRISM_URL=") for line in lines if line.startswith("export PRISM_URL=")
        ]
        assert len(exports) == 1, up.stdout
        start = lines.index("backends:")
        end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("  "))
        config = yaml.safe_load("\n".join(lines[start:end]))
        m = modules
        for url, conf in ((exports[0], None), (None, config)):
            async with prism_runtime.connect(url or config["backends"]["kafka"], config=conf) as db:
                series = m["events"].ClickEventSeries(db)
                user = f"stack-{url is None}"
                await asyncio.wait_for(series.append(click(m, user, 7)), 30)
                assert [e.page for e in await collect(series.query(user))] == ["/7"]
    finally:
        down = await asyncio.to_thread(prism, "down")
        assert down.returncode == 0, down.stderr
