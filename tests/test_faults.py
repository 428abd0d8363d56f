"""Fault injection: kill -9 a writer process or a server mid-workload, then check every acknowledged write.

Each test keeps a ledger of the writes Prism acknowledged (the call returned), injects the fault, and reads
the ledger back afterwards: 0 acknowledged writes may be lost. During an outage a write may fail, but only
with ``BackendUnavailable`` naming the namespace; after the server is back, writes must resume without
restarting the application. Every test is bounded by counts (batches, failures seen, acks after restart),
each wait by a generous deadline, never by a sleep that assumes an idle machine.

Each test prints its figures (``fault figures: {...}``) and appends them as one JSON line to the file named
by ``PRISM_FAULT_FIGURES``, if set: docs/reliability.md is written from them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fault_writer
import pytest
from fault_writer import BATCH_ROWS

import prism_runtime
import prism_stack as stack
from protoc_gen_prism.sql.provision import provision

FIGURES_ENV = "PRISM_FAULT_FIGURES"
WRITER = Path(fault_writer.__file__).resolve()
#: One kill per entry, on one database file: the writer is killed once it has begun this many batches, this
#: long after it began the last one (0 s: while it encodes; later: in the middle of its transaction, or
#: after the commit and before it could say so). What holds must hold at any instant.
KILL_POINTS = ((1, 0.0), (3, 0.004), (6, 0.01), (10, 0.02))
WAIT_LIMIT_S = 60.0  # a deadline for a wait that takes well under a second on an idle machine
#: A call still running after this long counts as hung: during an outage a call must fail in bounded time.
CALL_LIMIT_S = 30.0
TASKS = 4
SERVER_KILLS = 2
ACKS_BETWEEN_KILLS = 20
FAILURE_PAUSE_S = 0.05  # a writer's pause after a failed call: a refused connection fails at once


def record(test: str, **figures: object) -> None:
    """Print the figures of one fault test and append them to $PRISM_FAULT_FIGURES when set."""
    line = json.dumps({"test": test, **figures}, sort_keys=False)
    print(f"fault figures: {line}")
    target = os.environ.get(FIGURES_ENV)
    if target:
        with open(target, "a") as out:
            out.write(line + "\n")


# -- a writer process killed mid-batch on SQLite -----------------------------------------------------


@dataclass
class WriterRun:
    """What one killed writer process reported: batches begun and acknowledged."""

    begun: list[int] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)

    def read(self, line: bytes) -> None:
        verb, number = line.decode().split()
        (self.acked if verb == "ack" else self.begun).append(int(number))


async def kill_writer_after(
    url: str, mode: str, first: int, point: tuple[int, float], generated: Path
) -> WriterRun:
    """Start a writer at batch `first`, SIGKILL it at `point` (see KILL_POINTS), return what it reported."""
    begun, delay = point
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(generated), os.environ.get("PYTHONPATH")])),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), url, mode, str(first),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    run = WriterRun()
    try:
        while len(run.begun) < begun:
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT_LIMIT_S)
            if not line:
                error = (await proc.stderr.read()).decode(errors="replace")
                pytest.fail(f"the writer exited before it was killed:\n{error}")
            run.read(line)
        await asyncio.sleep(delay)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
    # Lines written before the kill are still in the pipe: every one of them is part of the ledger.
    for line in (await proc.stdout.read()).splitlines():
        run.read(line)
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return run


def integrity(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


async def rows_of_batch(db: prism_runtime.Database, mode: str, batch: int) -> list[tuple[str, str]]:
    """Return (id, value) of the rows of `batch` the database holds, in the writer's row order."""
    if mode == "kv":
        store = importlib.import_module("prismtest.bulk.v1.bulk_prism").TextRowStore(db)
        got = await store.get_many([fault_writer.row_id(batch, r) for r in range(BATCH_ROWS)])
        return [(m.id, m.value) for m in got if m is not None]
    series = importlib.import_module("acme.events.v1.events_prism").ClickEventSeries(db)
    return [(e.page, str(e.dwell_ms)) async for e in series.query(fault_writer.event_user(batch))]


def written(mode: str, batch: int) -> list[tuple[str, str]]:
    """Return the (id, value) pairs of `batch` as the writer wrote them."""
    if mode == "kv":
        return [(fault_writer.row_id(batch, r), fault_writer.row_value(batch, r)) for r in range(BATCH_ROWS)]
    return [(fault_writer.event_page(batch, r), str(r)) for r in range(BATCH_ROWS)]


@pytest.mark.parametrize("mode", ["kv", "ts"], ids=["put_many", "append_many"])
async def test_sqlite_writer_killed_mid_batch_loses_no_acknowledged_write(
    mode: str, tmp_path: Path, generated: Path
) -> None:
    path = tmp_path / "faults.db"
    url = f"sqlite:///{path}"
    async with prism_runtime.connect(url) as db:
        await provision(db, generated, echo=lambda line: None)
    acked: list[int] = []
    in_flight: dict[int, int] = {}  # batch begun but not acked when killed -> rows found (all or none)
    recoveries: list[float] = []
    batch = 0
    for point in KILL_POINTS:
        run = await kill_writer_after(url, mode, batch, point, generated)
        killed = time.monotonic()
        acked += run.acked
        assert integrity(path) == ["ok"]
        async with prism_runtime.connect(url) as db:
            # The application comes back: the first write after the crash is acknowledged.
            restart = max(run.begun) + 1
            await fault_writer.write_batch(db, mode, restart)
            recoveries.append(time.monotonic() - killed)
            acked.append(restart)
            for begun in set(run.begun) - set(run.acked):
                in_flight[begun] = len(await rows_of_batch(db, mode, begun))
            lost = [n for n in acked if await rows_of_batch(db, mode, n) != written(mode, n)]
        batch = restart + 1
        assert lost == [], f"acknowledged batches lost or damaged after a kill at batch {max(run.begun)}"
    assert integrity(path) == ["ok"]
    record(
        f"sqlite writer SIGKILL mid-{'put_many' if mode == 'kv' else 'append_many'}",
        kills=len(KILL_POINTS), acked_batches=len(acked), acked_rows=len(acked) * BATCH_ROWS, lost=0,
        failed=0, in_flight_at_kill=len(in_flight),
        in_flight_committed=sum(1 for rows in in_flight.values() if rows == BATCH_ROWS),
        recovery_s=round(max(recoveries), 2),
    )  # fmt: skip
    # One transaction per call: a batch in flight at the kill is there whole or not at all.
    assert all(rows in (0, BATCH_ROWS) for rows in in_flight.values()), in_flight


# -- a server killed mid-workload and restarted ------------------------------------------------------


@dataclass
class Ledger:
    """Acknowledged writes of the writer tasks, and every failure they saw."""

    acked: dict[str, str] = field(default_factory=dict)
    ack_times: list[float] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self, items: dict[str, str]) -> None:
        self.acked.update(items)
        self.ack_times.append(time.monotonic())
        self.changed.set()

    def fail(self, error: BaseException) -> None:
        self.failures.append(error)
        self.changed.set()

    async def wait_acks(self, more: int, what: str) -> None:
        """Wait for `more` acknowledged calls than now."""
        if not await self.acks_within(more, WAIT_LIMIT_S):
            pytest.fail(f"timed out waiting for {what}: {self.summary()}")

    async def acks_within(self, more: int, limit: float) -> bool:
        """Return whether `more` calls than now are acknowledged within `limit` seconds."""
        target = len(self.ack_times) + more
        return await self._until(lambda: len(self.ack_times) >= target, limit)

    async def wait_failures(self, more: int, what: str) -> None:
        """Wait for `more` failed calls than now."""
        target = len(self.failures) + more
        if not await self._until(lambda: len(self.failures) >= target, WAIT_LIMIT_S):
            pytest.fail(f"timed out waiting for {what}: {self.summary()}")

    async def _until(self, done: Callable[[], bool], limit: float) -> bool:
        deadline = time.monotonic() + limit
        while not done():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    def untyped(self, namespace: str) -> collections.Counter[str]:
        """Count the failures that are not BackendUnavailable naming `namespace`, by type and text."""
        return collections.Counter(
            f"{type(e).__module__}.{type(e).__name__}: {e}"[:200]
            for e in self.failures
            if not (isinstance(e, prism_runtime.BackendUnavailable) and e.namespace == namespace)
        )

    def summary(self) -> str:
        kinds = collections.Counter(type(e).__name__ for e in self.failures)
        return f"{len(self.ack_times)} acks, failures {dict(kinds)}"


async def keep_writing(
    write: Callable[[int], Awaitable[dict[str, str]]], task: int, ledger: Ledger, stop: asyncio.Event
) -> None:
    """Call `write(n)` for n = task * 10**6 + 0, 1, ... until `stop`; ledger what was acked and what failed."""
    n = task * 1_000_000
    while not stop.is_set():
        try:
            items = await asyncio.wait_for(write(n), CALL_LIMIT_S)
        except Exception as error:  # every failure is kept: the test checks each one is a typed error
            ledger.fail(error)
            await asyncio.sleep(FAILURE_PAUSE_S)
        else:
            ledger.ack(items)
        n += 1


def descendants(pid: int) -> list[int]:
    """Return the pids whose parent is `pid` (Postgres backends run in sessions of their own)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def crash(server: stack.RunningServer) -> None:
    """SIGKILL the server and every process it started, and wait until they are gone."""
    pids = [server.pid, *descendants(server.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    stack.stop(server)  # only reaps the killed process
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"{server.kind} processes survive SIGKILL"
        time.sleep(0.02)


async def kill_and_restart_under_load(
    server: stack.RunningServer, write: Callable[[int], Awaitable[dict[str, str]]], ledger: Ledger
) -> tuple[stack.RunningServer, list[float | None]]:
    """Run TASKS writers; SERVER_KILLS times: crash the server, see writes fail, restart it, see them resume.

    Returns the restarted server and, per restart, the seconds from starting the server again to the
    first acknowledged write (the server's own crash recovery included), or None if writes did not
    resume within WAIT_LIMIT_S (then no further kill is tried).
    """
    stop = asyncio.Event()
    writers = [asyncio.create_task(keep_writing(write, task, ledger, stop)) for task in range(TASKS)]
    recoveries: list[float | None] = []
    try:
        for _ in range(SERVER_KILLS):
            await ledger.wait_acks(ACKS_BETWEEN_KILLS, "acks before the kill")
            await asyncio.to_thread(crash, server)
            await ledger.wait_failures(TASKS, "failures while the server is down")
            acked = len(ledger.ack_times)
            restarting = time.monotonic()
            server = await asyncio.to_thread(stack.start, server.kind, server.data_dir, port=server.port)
            if not await ledger.acks_within(ACKS_BETWEEN_KILLS, WAIT_LIMIT_S):
                recoveries.append(None)
                break
            recoveries.append(ledger.ack_times[acked] - restarting)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    return server, recoveries


def slowest(recoveries: list[float | None]) -> float | None:
    """Return the longest recovery in seconds, None if writes did not resume after some restart."""
    return None if None in recoveries else round(max(r for r in recoveries if r is not None), 2)


@pytest.fixture
async def own_server(request: pytest.FixtureRequest, stack_dir: Path) -> Any:
    """A server of the kind named by the test's parameter, on its own data dir, that the test may kill."""
    holder = [await asyncio.to_thread(stack.start, request.param, stack_dir / request.param)]
    yield holder
    await asyncio.to_thread(stack.stop, holder[0])


@pytest.mark.parametrize("own_server", ["postgres"], indirect=True)
async def test_postgres_killed_mid_workload_loses_no_acknowledged_put(
    own_server: Any, generated: Path
) -> None:
    pb2 = importlib.import_module("prismtest.bulk.v1.bulk_pb2")
    prism = importlib.import_module("prismtest.bulk.v1.bulk_prism")
    url = own_server[0].url
    ledger = Ledger()
    async with prism_runtime.connect(url) as db:
        await provision(db, generated, echo=lambda line: None)
        store = prism.TextRowStore(db)

        async def write(n: int) -> dict[str, str]:
            rows = [pb2.TextRow(id=f"{n}-{r}", value=f"value of {n}-{r}") for r in range(1 if n % 2 else 10)]
            await (store.put(rows[0]) if len(rows) == 1 else store.put_many(rows))
            return {row.id: row.value for row in rows}

        own_server[0], recoveries = await kill_and_restart_under_load(own_server[0], write, ledger)
    async with prism_runtime.connect(url) as db:
        keys = list(ledger.acked)
        got = await prism.TextRowStore(db).get_many(keys)
    lost = [k for k, m in zip(keys, got, strict=True) if m is None or m.value != ledger.acked[k]]
    record(
        "postgres server SIGKILL + restart under put/put_many",
        kills=SERVER_KILLS, acked_rows=len(ledger.acked), lost=len(lost), failed=len(ledger.failures),
        failed_untyped=sum(ledger.untyped(store.namespace).values()), recovery_s=slowest(recoveries),
    )  # fmt: skip
    assert lost == []
    assert None not in recoveries, (
        f"writes did not resume within {WAIT_LIMIT_S:g}s of a restart: {ledger.summary()}"
    )
    assert ledger.untyped(store.namespace) == {}, "failures during the outage must be BackendUnavailable"


@pytest.mark.parametrize("own_server", ["nats"], indirect=True)
async def test_nats_killed_mid_workload_loses_no_acknowledged_append(
    own_server: Any, generated: Path
) -> None:
    pb2 = importlib.import_module("acme.events.v1.events_pb2")
    prism = importlib.import_module("acme.events.v1.events_prism")
    url = own_server[0].url
    ledger = Ledger()
    async with prism_runtime.connect(url) as db:
        series = prism.ClickEventSeries(db)

        async def write(n: int) -> dict[str, str]:
            events = []
            for r in range(10):
                event = pb2.ClickEvent(user_id=f"task-{n // 1_000_000}", page=f"/{n}/{r}")
                event.at.FromSeconds(1_700_000_000 + (n % 1_000_000) * 10 + r)
                events.append(event)
            await series.append_many(events)
            return {e.page: e.user_id for e in events}

        own_server[0], recoveries = await kill_and_restart_under_load(own_server[0], write, ledger)
    async with prism_runtime.connect(url) as db:
        series = prism.ClickEventSeries(db)
        stored = {e.page for task in range(TASKS) async for e in series.query(f"task-{task}")}
    lost = [page for page in ledger.acked if page not in stored]
    record(
        "nats server SIGKILL + restart under append_many (file storage)",
        kills=SERVER_KILLS, acked_events=len(ledger.acked), lost=len(lost), failed=len(ledger.failures),
        failed_untyped=sum(ledger.untyped(series.namespace).values()), recovery_s=slowest(recoveries),
    )  # fmt: skip
    assert lost == []
    assert None not in recoveries, (
        f"writes did not resume within {WAIT_LIMIT_S:g}s of a restart: {ledger.summary()}"
    )
    assert ledger.untyped(series.namespace) == {}, "failures during the outage must be BackendUnavailable"
