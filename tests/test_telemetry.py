"""OpenTelemetry (docs/observability.md): spans and metrics of every operation, with the real SDK's in-memory
exporters set as the global providers, on every backend; no PII in anything exported; Prism unchanged
without opentelemetry; Prometheus scraping a running example process.

The API sets its global providers once per process: a module fixture sets them and resets them afterwards.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import BACKENDS as SQL_BACKENDS
from backends import drop_schema, url_for
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from styles import STYLES, Twins, styled

import prism_runtime
from prism_runtime import telemetry
from prism_runtime.pii import LocalKeyWrapper
from protoc_gen_prism.sql.provision import provision

ROOT = Path(__file__).resolve().parents[1]
SSN, EMAIL, PHONE, IP = "078-05-1120", "Jane.Roe@example.com", "+1 415 555 0134", "198.51.100.23"
PATIENT_NS, VISIT_NS, SIGNIN_NS = (
    "prismtest_pii_v1_patient",
    "prismtest_pii_v1_visit",
    "prismtest_pii_v1_sign_in",
)


class Sdk:
    """The SDK's in-memory span exporter and metric reader behind the global providers."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        """Return the data points of metric `name` (cumulative since the providers were set)."""
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def total(self, name: str) -> int:
        return sum(int(p.value) for p in self.points(name))

    def exported_text(self) -> str:
        """Return every attribute, name, event and link of every span and metric point, as text."""
        parts: list[str] = []
        for span in self.finished():
            parts += [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
            parts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
            parts += [repr(dict(link.attributes or {})) for link in span.links]
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    parts += [metric.name, metric.description or ""]
                    parts += [repr(dict(p.attributes or {})) for p in metric.data.data_points]
        return "\n".join(parts)


@pytest.fixture(scope="module")
def providers() -> Iterator[Sdk]:
    """Set the SDK's providers globally for this module's tests, and take them back off afterwards.

    The API sets its globals once per process; like opentelemetry-test-utils, the teardown resets them so
    that the stores of other test modules stay untraced, as without a provider.
    """
    from opentelemetry.metrics import _internal as metrics_globals
    from opentelemetry.util._once import Once

    made = Sdk()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(made.spans))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[made.reader]))
    yield made
    tracer_provider.shutdown()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_globals._METER_PROVIDER_SET_ONCE = Once()
    metrics_globals._METER_PROVIDER = None
    metrics_globals._PROXY_METER_PROVIDER = metrics_globals._ProxyMeterProvider()
    assert not telemetry.enabled()


@pytest.fixture
def sdk(providers: Sdk) -> Sdk:
    assert telemetry.enabled()
    providers.spans.clear()
    return providers


@pytest.fixture(params=STYLES)
def pii(request: pytest.FixtureRequest, generated: Path) -> Iterator[tuple[Any, Any]]:
    """The generated module in each client style (tests/styles.py): blocking calls make the same spans."""
    twins = Twins()
    yield (
        importlib.import_module("prismtest.pii.v1.pii_pb2"),
        styled(importlib.import_module("prismtest.pii.v1.pii_prism"), request.param, twins),
    )
    twins.close()


@pytest.fixture(params=SQL_BACKENDS)
async def sql_db(
    request: pytest.FixtureRequest, tmp_path: Path, generated: Path, sdk: Sdk
) -> AsyncIterator[tuple[str, prism_runtime.Database]]:
    address = await url_for(request, request.param, tmp_path)
    wrapper = LocalKeyWrapper(tmp_path / "master.key")
    try:
        async with prism_runtime.connect(address, key_wrapper=wrapper) as db:
            await provision(db, generated, echo=lambda line: None)
            yield address, db
    finally:
        if request.param == "postgres":
            await drop_schema(address)


def patient(pb2: Any, pid: str) -> Any:
    message = pb2.Patient(
        patient_id=pid, ssn=SSN, email=EMAIL, phone=PHONE, photo=b"face", display_name="J. R.", last_ip=IP
    )
    message.emergency.name = "John Roe"
    return message


def spans_of(sdk: Sdk, namespace: str) -> list[ReadableSpan]:
    return [s for s in sdk.finished() if (s.attributes or {}).get("db.collection.name") == namespace] + [
        s for s in sdk.finished() if (s.attributes or {}).get("messaging.destination.name") == namespace
    ]


async def test_every_keyvalue_operation_is_a_client_span_with_the_database_conventions(
    sql_db: tuple[str, prism_runtime.Database], pii: Any, sdk: Sdk
) -> None:
    url, db = sql_db
    pb2, prism = pii
    store = prism.PatientStore(db)
    pid = f"p-{uuid.uuid4().hex[:8]}"
    await store.put(patient(pb2, pid))
    await store.put_many([patient(pb2, f"{pid}-{i}") for i in range(3)])
    assert (await store.get(pid)).ssn == SSN
    assert len(await store.get_many([pid, "nobody"])) == 2
    assert len([p async for p in store.scan(limit=2)]) == 2
    assert await store.delete(pid)

    by_op = {(s.attributes or {})["db.operation.name"]: s for s in spans_of(sdk, PATIENT_NS)}
    assert {"put", "put_many", "get", "get_many", "scan", "delete"} <= set(by_op)
    system = "sqlite" if url.startswith("sqlite") else "postgresql"
    for op, span in by_op.items():
        attrs = dict(span.attributes or {})
        assert span.name == f"{op} {PATIENT_NS}"
        assert span.kind is SpanKind.CLIENT
        assert attrs["db.system.name"] == system
        assert attrs["db.collection.name"] == PATIENT_NS
        assert "error.type" not in attrs
        if system == "postgresql":
            assert attrs["server.address"] and isinstance(attrs["server.port"], int)
            assert attrs["db.namespace"]
        else:
            assert attrs["db.namespace"].endswith(".db")
    assert by_op["put_many"].attributes["db.operation.batch.size"] == 3  # type: ignore[index]
    assert by_op["get_many"].attributes["db.operation.batch.size"] == 2  # type: ignore[index]
    assert "db.operation.batch.size" not in (by_op["put"].attributes or {})

    points = [
        p
        for p in sdk.points(telemetry.DB_DURATION)
        if p.attributes.get("db.collection.name") == PATIENT_NS and p.attributes["db.system.name"] == system
    ]
    assert {p.attributes["db.operation.name"] for p in points} >= {"get", "put", "scan", "delete"}
    get = next(
        p for p in points if p.attributes["db.operation.name"] == "get" and "error.type" not in p.attributes
    )
    assert get.count >= 1 and 0 < get.sum < 10
    assert list(get.explicit_bounds) == list(telemetry.DB_BUCKETS)


async def test_a_failed_operation_records_its_error_type(
    generated: Path, tmp_path: Path, pii: Any, sdk: Sdk
) -> None:
    """Error types are recorded above the backends: one SQLite file whose write lock another holds shows it."""
    pb2, prism = pii
    path = tmp_path / "locked.db"
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        await provision(db, generated, echo=lambda line: None)
        store = prism.SubscriptionStore(db)
        await store.put(pb2.Subscription(account_id=7, email="x@example.com"))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # past the 5 s busy timeout, the put fails with Contention
        try:
            with pytest.raises(prism_runtime.PrismError):
                await store.put(pb2.Subscription(account_id=7, email="y@example.com"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    [span] = [
        s for s in spans_of(sdk, "prismtest_pii_v1_subscription") if (s.attributes or {}).get("error.type")
    ]
    assert span.name == "put prismtest_pii_v1_subscription"
    assert span.attributes["error.type"] == "Contention"  # type: ignore[index]
    assert not span.status.is_ok
    assert not span.events, "no exception event: its message and traceback are not telemetry's to keep"
    failed = [p for p in sdk.points(telemetry.DB_DURATION) if p.attributes.get("error.type")]
    assert any(p.attributes["db.collection.name"] == "prismtest_pii_v1_subscription" for p in failed)


async def test_a_get_is_a_child_of_the_callers_span_and_its_duration_point_is_the_spans_duration(
    generated: Path, tmp_path: Path, pii: Any, sdk: Sdk
) -> None:
    """The span of a get is not made current (no context attached) yet has the caller's span as parent; one
    clock gives the span its start and end and the histogram its point; the attributes made once per
    operation are reused, never changed by a batch."""
    pb2, prism = pii
    path = tmp_path / "parent.db"  # its own db.namespace: this test's points are told from the module's
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        await provision(db, generated, echo=lambda line: None)
        store = prism.SubscriptionStore(db)
        await store.put(pb2.Subscription(account_id=1, email="x@example.com"))
        recorder = store._backend._recorder
        made = recorder.operation("get")
        with trace.get_tracer("test").start_as_current_span("GET /subscriptions/{id}") as request:
            assert (await store.get(1)).email == "x@example.com"
            assert trace.get_current_span() is request
        await store.get_many([1, 2])
    assert recorder.operation("get") is made
    assert made.attributes == {
        "db.system.name": "sqlite",
        "db.collection.name": "prismtest_pii_v1_subscription",
        "db.namespace": str(path),
        "db.operation.name": "get",
    }
    assert "db.operation.batch.size" not in recorder.operation("get_many").attributes

    [get] = [s for s in sdk.finished() if s.name == "get prismtest_pii_v1_subscription"]
    assert get.parent is not None and get.parent.span_id == request.get_span_context().span_id
    assert get.context.trace_id == request.get_span_context().trace_id
    [point] = [
        p
        for p in sdk.points(telemetry.DB_DURATION)
        if p.attributes.get("db.namespace") == str(path) and p.attributes["db.operation.name"] == "get"
    ]
    assert get.start_time is not None and get.end_time is not None
    assert point.count == 1 and point.sum == (get.end_time - get.start_time) / 1e9 > 0


async def test_a_get_under_an_unsampled_caller_exports_no_span_and_still_records_its_duration(
    generated: Path, tmp_path: Path, pii: Any, sdk: Sdk
) -> None:
    """A sampler (ParentBased, the SDK's default) drops the span of an unsampled trace; the metric counts all."""
    pb2, prism = pii
    path = tmp_path / "unsampled.db"
    unsampled = NonRecordingSpan(
        SpanContext(0x1F, 0x2F, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    )
    async with prism_runtime.connect(f"sqlite:///{path}") as db:
        await provision(db, generated, echo=lambda line: None)
        store = prism.SubscriptionStore(db)
        await store.put(pb2.Subscription(account_id=1, email="x@example.com"))
        sdk.spans.clear()
        with trace.use_span(unsampled):
            for _ in range(3):
                assert (await store.get(1)).email == "x@example.com"
    assert not [s for s in sdk.finished() if s.name.startswith("get ")]
    [point] = [
        p
        for p in sdk.points(telemetry.DB_DURATION)
        if p.attributes.get("db.namespace") == str(path) and p.attributes["db.operation.name"] == "get"
    ]
    assert point.count == 3 and point.sum > 0


async def pii_workload_sql(db: prism_runtime.Database, pb2: Any, prism: Any) -> None:
    patients = prism.PatientStore(db)
    await patients.put(patient(pb2, "p-secret-1"))
    await patients.put_many([patient(pb2, "p-secret-2"), patient(pb2, "p-secret-3")])
    assert (await patients.get("p-secret-1")).email == EMAIL
    assert [p.patient_id for p in await patients.find_by_email(EMAIL)]
    async for _ in patients.scan():
        pass
    visits = prism.VisitStore(db)
    await visits.put(pb2.Visit(clinic="clinic-secret", seq=1, patient_id="p-secret-1", notes="notes-secret"))
    assert (await visits.get("clinic-secret", 1)).notes == "notes-secret"
    series = prism.SignInSeries(db)
    await series.append(pb2.SignIn(patient_id="p-secret-1", at_ms=1_700_000_000_000, ip=IP, device="d"))
    assert [e.ip async for e in series.query("p-secret-1")] == [IP]
    await prism_runtime.forget(db, "p-secret-2")


PII_VALUES = (SSN, EMAIL, PHONE, IP, "p-secret", "clinic-secret", "notes-secret", "John Roe", "J. R.")


def assert_no_pii(sdk: Sdk) -> None:
    text = sdk.exported_text()
    assert text.strip()
    for value in PII_VALUES:
        assert value not in text
        assert value.lower() not in text.lower()


async def test_a_pii_workload_exports_no_pii_on_sql_backends(
    sql_db: tuple[str, prism_runtime.Database], pii: Any, sdk: Sdk
) -> None:
    _, db = sql_db
    pb2, prism = pii
    before = {e: sdk.total(telemetry.PII_COUNTERS[e][0]) for e in telemetry.PII_COUNTERS}
    await pii_workload_sql(db, pb2, prism)
    ops = {(s.attributes or {}).get("db.operation.name") for s in sdk.finished()}
    assert {"put", "put_many", "get", "find_by", "scan", "append", "query"} <= ops
    after = {e: sdk.total(telemetry.PII_COUNTERS[e][0]) for e in telemetry.PII_COUNTERS}
    assert after["decryptions"] > before["decryptions"]
    assert after["audit_entries"] > before["audit_entries"]
    assert after["subjects_forgotten"] == before["subjects_forgotten"] + 1
    for name, _, _ in telemetry.PII_COUNTERS.values():
        assert all(not p.attributes for p in sdk.points(name)), "counts only: no label at all"
    assert_no_pii(sdk)


@pytest.mark.parametrize("kind", ["kafka", "nats"])
async def test_stream_operations_follow_the_messaging_conventions_without_pii_and_tail_links_to_append(
    kind: str, request: pytest.FixtureRequest, pii: Any, tmp_path: Path, sdk: Sdk
) -> None:
    pb2, prism = pii
    address = request.getfixturevalue("kafka_bootstrap" if kind == "kafka" else "nats_url")
    stream = f"kafka://{address}?idempotence=false" if kind == "kafka" else address
    config = {
        "backends": {kind: stream, "sqlite": f"sqlite:///{tmp_path / 'keys.db'}"},
        "namespaces": {SIGNIN_NS: kind},
    }
    pid = f"p-secret-{uuid.uuid4().hex[:8]}"
    async with prism_runtime.connect(config=config, key_wrapper=LocalKeyWrapper(tmp_path / "k")) as db:
        series = prism.SignInSeries(db)
        async with series.tail(pid) as tail:
            await series.append_many(
                pb2.SignIn(patient_id=pid, at_ms=1_700_000_000_000 + i, ip=IP, device="d") for i in range(2)
            )
            got = [await asyncio.wait_for(tail.__anext__(), 30) for _ in range(2)]
        assert [e.ip for e in got] == [IP, IP]
        assert [e.ip async for e in series.query(pid)] == [IP, IP]
        async for _ in series.query(pid):
            break  # stopping early is no failure
        await prism_runtime.forget(db, pid)

    spans = spans_of(sdk, SIGNIN_NS)
    [send] = [s for s in spans if s.name == f"append {SIGNIN_NS}"]
    receives = [s for s in spans if s.name == f"tail {SIGNIN_NS}"]
    query, early = [s for s in spans if s.name == f"query {SIGNIN_NS}"]
    assert "error.type" not in (early.attributes or {}) and early.status.is_unset
    assert send.kind is SpanKind.PRODUCER and receives and receives[0].kind is SpanKind.CONSUMER
    attrs = dict(send.attributes or {})
    assert attrs["messaging.system"] == kind
    assert attrs["messaging.destination.name"] == SIGNIN_NS
    assert attrs["messaging.operation.type"] == "send"
    assert attrs["messaging.batch.message_count"] == 2
    assert isinstance(attrs["server.port"], int) and attrs["server.address"]
    assert query.attributes["messaging.operation.type"] == "receive"  # type: ignore[index]
    assert receives[0].attributes["messaging.operation.type"] == "receive"  # type: ignore[index]
    linked = {link.context.span_id for r in receives for link in r.links}
    assert send.context.span_id in linked, "the tail's span links to the append that produced its messages"
    points = [
        p
        for p in sdk.points(telemetry.MESSAGING_DURATION)
        if p.attributes.get("messaging.destination.name") == SIGNIN_NS
        and p.attributes["messaging.system"] == kind
    ]
    assert {p.attributes["messaging.operation.name"] for p in points} >= {"append", "query", "tail"}
    assert_no_pii(sdk)


async def test_graph_traversals_are_spans_over_their_hops(generated: Path, tmp_path: Path, sdk: Sdk) -> None:
    pb2 = importlib.import_module("acme.social.v1.social_pb2")
    prism = importlib.import_module("acme.social.v1.social_prism")
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'g.db'}") as db:
        await provision(db, generated, echo=lambda line: None)
        graph = prism.FollowsGraph(db)
        await graph.add_edges(
            [pb2.Follows(follower_id="a", followee_id="b"), pb2.Follows(follower_id="b", followee_id="c")]
        )
        visits = await graph.bfs("a", 2)
        assert [v.node for v in visits][-1] == "c"
    spans = spans_of(sdk, graph.spec.namespace)
    [bfs] = [s for s in spans if s.name == f"bfs {graph.spec.namespace}"]
    hops = [s for s in spans if s.name.startswith("expand ")]
    assert hops and all(h.parent is not None and h.parent.span_id == bfs.context.span_id for h in hops)
    assert any(s.name.startswith("put_edges ") for s in spans)


_WITHOUT_OTEL = """
import asyncio, sys
from pathlib import Path
class NoOtel:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
if sys.argv[3] == "blocked":
    sys.meta_path.insert(0, NoOtel())
sys.path.insert(0, sys.argv[1])
import prism_runtime
from prism_runtime import telemetry
from protoc_gen_prism.sql.provision import provision
from prismtest.pii.v1 import pii_pb2, pii_prism

async def main():
    async with prism_runtime.connect(sys.argv[2]) as db:
        await provision(db, Path(sys.argv[1]), echo=lambda line: None)
        store = pii_prism.PatientStore(db)
        await store.put(pii_pb2.Patient(patient_id="p1", ssn="078-05-1120"))
        assert (await store.get("p1")).ssn == "078-05-1120"
        print(telemetry.AVAILABLE, "Traced" in type(store._backend).__name__, "opentelemetry" in sys.modules)
asyncio.run(main())
"""


@pytest.mark.parametrize("otel", ["blocked", "api-only"])
def test_prism_runs_unchanged_without_opentelemetry_or_without_a_provider(
    otel: str, generated: Path, tmp_path: Path
) -> None:
    """Not installed: nothing of it imported. Installed, no provider set: the store keeps the bare backend."""
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OTEL, str(generated), f"sqlite:///{tmp_path / 'x.db'}", otel],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PRISM_MASTER_KEY_FILE": str(tmp_path / "m.key")},
    )
    assert done.returncode == 0, done.stderr
    if otel == "blocked":
        assert done.stdout.split() == ["False", "False", "False"]
    else:
        assert done.stdout.split() == ["True", "False", "True"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_prometheus_scrapes_prisms_histograms_per_namespace_from_a_running_example(
    generated: Path, tmp_path: Path
) -> None:
    port = _free_port()
    example = ROOT / "examples" / "otel_prometheus.py"
    env = {
        **os.environ,
        "PYTHONPATH": str(generated),
        "PRISM_MASTER_KEY_FILE": str(tmp_path / "m.key"),
        "PRISM_URL": f"sqlite:///{tmp_path / 'ex.db'}",
        "METRICS_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, str(example)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                text = ""
            if (
                'db_collection_name="acme_users_v1_user_profile"' in text
                and 'db_operation_name="get"' in text
            ):
                break
            time.sleep(0.3)
        buckets = [
            line
            for line in text.splitlines()
            if line.startswith("db_client_operation_duration_seconds_bucket")
            and 'db_collection_name="acme_users_v1_user_profile"' in line
        ]
        assert buckets, text[-3000:]
        assert any('le="0.001"' in line for line in buckets), "the convention's bucket boundaries"
        assert re.search(r'db_client_operation_duration_seconds_count\{[^}]*db_operation_name="get"', text)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        (
            "postgresql://user:secret@[::1]:5433/app?pool_size=4",
            "postgres",
            ("postgresql", "app", "::1", 5433),
        ),
        ("postgresql://db.internal/orders", "postgres", ("postgresql", "orders", "db.internal", 5432)),
        ("kafka://b1:9093,b2:9094?idempotence=false", "kafka", ("kafka", None, "b1", 9093)),
        ("nats://127.0.0.1", "nats", ("nats", None, "127.0.0.1", 4222)),
        ("sqlite:///data/app.db", "sqlite", ("sqlite", "data/app.db", None, None)),
    ],
)
def test_backend_facts_come_from_the_url_without_its_credentials(url: str, kind: str, expected: Any) -> None:
    from prism_runtime.config import BackendUrl

    facts = telemetry.facts_of(BackendUrl(url, kind))
    assert (facts.system, facts.database, facts.address, facts.port) == expected
    assert "secret" not in repr(facts) and "user" not in repr(facts)


async def test_a_migration_counts_mismatches_dual_write_failures_and_backfill_rows(
    generated: Path, tmp_path: Path, sdk: Sdk
) -> None:
    from prism_runtime import migrations

    pb2 = importlib.import_module("acme.users.v1.users_pb2")
    prism = importlib.import_module("acme.users.v1.users_prism")
    ns = "acme_users_v1_user_profile"
    before = {
        n: sdk.total(f"prism.migration.{n}") for n in ("mismatches", "dual_write_failures", "backfill_rows")
    }
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    config = {
        "backends": {"sqlite": f"sqlite:///{old}", "new": f"sqlite:///{new}"},
        "migrations": {ns: {"source": "sqlite", "target": "new", "phase": "shadow_read"}},
    }
    async with prism_runtime.connect(config=config) as db:
        store = prism.UserProfileStore(db)
        await store.put(pb2.UserProfile(user_id="m1", email=EMAIL, display_name="A"))
        assert (await migrations.backfill(db, ns)).rows == 1
        with sqlite3.connect(new) as conn:
            conn.execute(f'UPDATE "{ns}" SET "display_name" = \'changed\'')
        assert (await store.get("m1")).display_name == "A"  # the source's answer
        counted = sdk.total("prism.migration.mismatches")
        assert [m.display_name async for m in store.scan()] == ["A"]  # scans are compared too
        assert sdk.total("prism.migration.mismatches") == counted + 1
        with sqlite3.connect(new) as conn:
            conn.execute(f'DROP TABLE "{ns}"')
        await store.put(pb2.UserProfile(user_id="m2", email=EMAIL))  # the target's refusal does not fail it
        assert await store.get("m2") is not None
    after = {n: sdk.total(f"prism.migration.{n}") for n in before}
    assert after["backfill_rows"] - before["backfill_rows"] == 1
    assert after["mismatches"] - before["mismatches"] >= 1
    assert after["dual_write_failures"] - before["dual_write_failures"] == 1
    assert EMAIL not in sdk.exported_text()
    assert {p.attributes["db.collection.name"] for p in sdk.points("prism.migration.mismatches")} == {ns}
