"""Real servers from prism_stack: talked to with the real clients, and managed with up/status/down."""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import nats
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from nats.js.api import ConsumerConfig, DeliverPolicy

import prism_stack as stack


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # an orphan not yet reaped by init is a zombie: it no longer runs
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _processes_using(path: Path) -> list[int]:
    """Live pids whose working directory is inside ``path`` or whose command line mentions it (Linux)."""
    needle = str(path)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if (cwd.startswith(needle) or needle.encode() in cmdline) and not _pid_gone(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _accepting(server: stack.RunningServer) -> bool:
    try:
        with socket.create_connection((server.host, server.port), timeout=1.0):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------------
# (a) the session servers, with the real clients
# --------------------------------------------------------------------------------------------------


async def test_postgres_select_1(postgres_dsn: str) -> None:
    conn = await asyncpg.connect(postgres_dsn, timeout=10)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        table = _unique("t")
        await conn.execute(f"CREATE TEMP TABLE {table} (id int PRIMARY KEY, name text)")
        await conn.execute(f"INSERT INTO {table} VALUES ($1, $2)", 1, "one")
        assert await conn.fetchval(f"SELECT name FROM {table} WHERE id = $1", 1) == "one"
    finally:
        await conn.close()


async def test_nats_jetstream_publish_and_fetch(nats_url: str) -> None:
    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    js = nc.jetstream()
    name = _unique("S")
    try:
        info = await js.add_stream(name=name, subjects=[f"{name}.>"])
        assert info.config.name == name
        acks = [
            await js.publish(f"{name}.a", f"v{i}".encode(), headers={"Nats-Msg-Id": f"id-{i}"})
            for i in range(3)
        ]
        assert [ack.seq for ack in acks] == [1, 2, 3]
        again = await js.publish(f"{name}.a", b"dup", headers={"Nats-Msg-Id": "id-1"})
        assert again.duplicate and again.seq == 2
        assert (await js.stream_info(name)).state.messages == 3

        sub = await js.pull_subscribe(f"{name}.>", durable="worker")
        msgs = await sub.fetch(3, timeout=5)
        assert [m.data for m in msgs] == [b"v0", b"v1", b"v2"]
        assert msgs[0].headers == {"Nats-Msg-Id": "id-0"}
        for m in msgs:
            await m.ack()

        # nats-py rounds the ack's nanosecond timestamp to the nearest microsecond, possibly *after* the
        # stored time, and the server would then skip that message: step back one microsecond.
        start = msgs[1].metadata.timestamp - datetime.timedelta(microseconds=1)
        ordered = await js.subscribe(
            f"{name}.>",
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start),
        )
        try:
            assert [(await ordered.next_msg(timeout=5)).data for _ in range(2)] == [b"v1", b"v2"]
        finally:
            await ordered.unsubscribe()
    finally:
        await js.delete_stream(name)
        await nc.close()


async def test_kafka_create_topic_produce_consume(kafka_bootstrap: str) -> None:
    topic = _unique("topic")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()

    created_at = int(time.time() * 1000) - 3_600_000  # an hour ago: CreateTime must be kept as sent
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            topic, b"value", key=b"key", partition=1, timestamp_ms=created_at, headers=[("h", b"1")]
        )
    finally:
        await producer.stop()

    tp = TopicPartition(topic, 1)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        record = await asyncio.wait_for(consumer.getone(tp), timeout=10)
    finally:
        await consumer.stop()
    assert (record.offset, record.key, record.value) == (sent.offset, b"key", b"value")
    assert list(record.headers) == [("h", b"1")]
    assert (record.timestamp, record.timestamp_type) == (created_at, 0)  # 0 = CreateTime


# --------------------------------------------------------------------------------------------------
# (b) up / status / down
# --------------------------------------------------------------------------------------------------


def test_up_status_down(stack_dir: Path) -> None:
    try:
        servers = stack.up(stack_dir)
        assert [s.kind for s in servers] == list(stack.ALL_KINDS)
        assert (stack_dir / stack.STATE_FILE).is_file()
        assert servers[0].url.startswith("postgresql://postgres@127.0.0.1:")
        assert servers[1].url.startswith("nats://127.0.0.1:")
        assert servers[2].url.startswith("kafka://127.0.0.1:")
        for server in servers:
            assert server.data_dir == stack_dir / server.kind
            assert server.log_path.is_file()

        statuses = stack.status(stack_dir)
        assert [s.server for s in statuses] == servers
        assert all(s.ok for s in statuses)

        assert stack.up(stack_dir) == servers  # healthy servers are kept, not restarted
    finally:
        stopped = stack.down(stack_dir)

    assert stopped == servers
    assert not (stack_dir / stack.STATE_FILE).exists()
    assert stack.status(stack_dir) == []
    for server in servers:
        assert _pid_gone(server.pid), server
        assert not _accepting(server), server
    assert _processes_using(stack_dir) == []


def test_up_from_another_process_survives_it(stack_dir: Path) -> None:
    """`prism stack up` exits after starting the servers: they must keep running until `down`."""
    script = "import sys; import prism_stack as stack; stack.up(sys.argv[1], ['nats', 'kafka'])"
    try:
        subprocess.run([sys.executable, "-c", script, str(stack_dir)], check=True, timeout=120)
        statuses = stack.status(stack_dir)
        assert [s.server.kind for s in statuses] == ["nats", "kafka"]
        assert all(s.ok for s in statuses), statuses
    finally:
        stopped = stack.down(stack_dir)
    assert [s.kind for s in stopped] == ["nats", "kafka"]
    for server in stopped:
        assert _pid_gone(server.pid), server
    assert _processes_using(stack_dir) == []


def test_status_sees_a_dead_server_and_up_replaces_it(stack_dir: Path) -> None:
    try:
        (first,) = stack.up(stack_dir, ["nats"])
        stack.stop(first)
        (st,) = stack.status(stack_dir)
        assert (st.alive, st.accepting, st.ok) == (False, False, False)

        (second,) = stack.up(stack_dir, ["nats"])
        assert second.pid != first.pid
        assert [s.ok for s in stack.status(stack_dir)] == [True]
    finally:
        stack.down(stack_dir)
    assert _processes_using(stack_dir) == []


async def test_postgres_keeps_its_data_across_restarts(stack_dir: Path) -> None:
    first = stack.start_postgres(stack_dir)
    try:
        conn = await asyncpg.connect(first.url, timeout=10)
        await conn.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)")
        await conn.close()
    finally:
        stack.stop(first)
    second = stack.start_postgres(stack_dir)  # reuses <stack_dir>/pgdata, on a new port
    try:
        conn = await asyncpg.connect(second.url, timeout=10)
        assert await conn.fetchval("SELECT id FROM kept") == 7
        await conn.close()
    finally:
        stack.stop(second)
    assert _processes_using(stack_dir) == []


def test_start_on_a_given_port_keeps_it_or_fails(stack_dir: Path) -> None:
    first = stack.start_nats(stack_dir / "a")
    try:
        with pytest.raises(
            stack.StackError, match=rf"^nats: port {first.port} of 127\.0\.0\.1 is already in use"
        ):
            stack.start_nats(stack_dir / "b", port=first.port)  # taken: no other port is tried instead
    finally:
        stack.stop(first)
    again = stack.start_nats(stack_dir / "a", port=first.port)  # a restart where its clients expect it
    try:
        assert again.url == first.url
    finally:
        stack.stop(again)
    assert _processes_using(stack_dir) == []


def test_failed_start_names_the_server_and_shows_its_log(stack_dir: Path) -> None:
    (stack_dir / "jetstream").write_text("a file where nats-server wants its store directory")
    with pytest.raises(stack.StackError) as caught:
        stack.start_nats(stack_dir)
    assert caught.value.kind == "nats"
    assert str(caught.value).startswith("nats: ")
    assert "storage directory is not a directory" in caught.value.log_tail
    assert _processes_using(stack_dir) == []


def test_start_timeout_stops_the_process(stack_dir: Path) -> None:
    with pytest.raises(stack.StackError, match=r"kafka: not ready on kafka://127\.0\.0\.1:\d+ within 0s"):
        stack.start_kafka(stack_dir, timeout=0)
    assert _processes_using(stack_dir) == []


def test_stack_cli_up_status_down(tmp_path: Path) -> None:
    import subprocess

    from protoc_gen_prism.protoc_runner import tool

    def prism(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("prism"), "stack", *args, "--dir", str(tmp_path)], capture_output=True, text=True
        )

    up = prism("up", "--only", "postgres", "--only", "nats")
    try:
        assert up.returncode == 0, up.stderr
        assert "export PRISM_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:" in up.stdout
        status = prism("status")
        assert status.returncode == 0 and status.stdout.count(" up") == 2
    finally:
        down = prism("down")
    assert down.returncode == 0 and "postgres  stopped" in down.stdout
    assert prism("status").stdout.strip() == f"no servers recorded in {tmp_path}"


def test_a_probe_keeps_the_drivers_refusals_quiet(caplog: pytest.LogCaptureFixture) -> None:
    # nats-py logs a refused connection on nats.aio.client (a child of the logger the probe quiets), with a
    # traceback: while a server starts, nothing of that may reach the terminal; after the probe, it may.
    from prism_stack.probing import run_probe

    async def refused() -> None:
        logging.getLogger("nats.aio.client").error("nats: encountered error")

    with caplog.at_level(logging.DEBUG):
        run_probe(refused, timeout=5, quiet=("nats",))
        logging.getLogger("nats.aio.client").error("after the probe")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("nats")] == ["after the probe"]
