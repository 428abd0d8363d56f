"""OpenTelemetry traces and metrics of every operation (docs/observability.md), in this one module.

Optional: with the `otel` extra (opentelemetry-api) installed and a tracer or meter provider set globally by
the service, each store wraps its backend in a traced one when it is created. Otherwise the store keeps the
backend itself, and the hot path has no frame of ours. The decision is taken once per store: configure
OpenTelemetry before creating stores.

No PII reaches telemetry: attributes are the namespace, the operation, the backend's system, database,
host and port, batch sizes and error type names; never a key, a field value or a statement parameter.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from prism_runtime.backends.registry import HasKind
from prism_runtime.config import BackendUrl, Config
from prism_runtime.schema import EntitySpec

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import propagate as otel_propagate
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    AVAILABLE = True
except ImportError:  # the otel extra is not installed: Prism runs without telemetry
    AVAILABLE = False


class Traced(Protocol):
    """What telemetry reads of the database a store is made with, to name the backend in its spans: the
    backend an entity is served by, its kind and the URL configured for that kind."""

    @property
    def config(self) -> Config:
        """The database's configuration (its backends' URLs by name)."""
        ...

    def kind_for(self, spec: EntitySpec) -> str:
        """Return the name of the backend serving `spec`."""
        ...

    def backend_for(self, spec: EntitySpec) -> HasKind:
        """Return the open backend serving `spec`."""
        ...


T = TypeVar("T")
B = TypeVar("B")

SCOPE = "prism_runtime"
DB_DURATION = "db.client.operation.duration"
MESSAGING_DURATION = "messaging.client.operation.duration"
# The semantic conventions' advised bucket boundaries (seconds) of the two duration histograms.
DB_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
MESSAGING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
PII_COUNTERS = {
    "decryptions": ("prism.pii.decryptions", "{row}", "Rows whose encrypted fields were decrypted"),
    "audit_entries": ("prism.pii.audit_entries", "{entry}", "Audit entries written"),
    "subjects_forgotten": ("prism.pii.subjects_forgotten", "{subject}", "Subjects forgotten"),
}
MIGRATION_COUNTERS = {
    "mismatches": ("prism.migration.mismatches", "{read}", "Shadow reads whose target answer differed"),
    "dual_write_failures": (
        "prism.migration.dual_write_failures",
        "{write}",
        "Writes the mirror side refused",
    ),
    "backfill_rows": ("prism.migration.backfill_rows", "{row}", "Rows a backfill read from the source"),
}
# Provider classes that record nothing: the API's defaults before a service sets its own.
_NO_OP = frozenset({"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"})
_SYSTEMS = {"sqlite": "sqlite", "postgres": "postgresql", "kafka": "kafka", "nats": "nats"}
_DEFAULT_PORTS = {"postgres": 5432, "kafka": 9092, "nats": 4222}
_MAX_LINKS = 128

# The links a consumer's batch collects from message headers while a traced follower reads it.
_LINKS: ContextVar[list[Any] | None] = ContextVar("prism_telemetry_links", default=None)


def enabled() -> bool:
    """Return whether a service set a recording tracer or meter provider (and the API is installed)."""
    if not AVAILABLE:
        return False
    tracing = type(otel_trace.get_tracer_provider()).__name__ not in _NO_OP
    return tracing or type(otel_metrics.get_meter_provider()).__name__ not in _NO_OP


@dataclass(frozen=True, slots=True)
class Facts:
    """What telemetry says of a backend: its system, database, and server address and port."""

    kind: str
    system: str
    database: str | None = None
    address: str | None = None
    port: int | None = None

    @property
    def messaging(self) -> bool:
        """Return whether the backend is a message stream (messaging conventions) rather than a database."""
        return self.kind in ("kafka", "nats")


def facts_of(url: BackendUrl, backend: object = None) -> Facts:
    """Return the facts of a backend: declared by it (`telemetry_facts`), else read from its URL.

    Only the host, port and database name are taken from the URL: never its user or password.
    """
    declared = getattr(backend, "telemetry_facts", None)
    if isinstance(declared, Facts):
        return declared
    kind = url.kind
    system = _SYSTEMS.get(kind, kind)
    if kind == "sqlite":  # sqlite:///relative.db, sqlite:////absolute.db; sqlite:// is in memory
        path = url.url.split(":", 1)[1].removeprefix("///")
        return Facts(kind, system, database=path if path.strip("/") else ":memory:")
    parts = urlsplit(url.url)
    first = parts.netloc.rsplit("@", 1)[-1].split(",")[0]  # the first broker of a list; never the userinfo
    server = urlsplit(f"//{first}")
    try:
        port = server.port or _DEFAULT_PORTS.get(kind)
    except ValueError:
        port = None
    database = (unquote(parts.path.lstrip("/")) or None) if kind == "postgres" else None
    address = server.hostname
    return Facts(kind, system, database=database, address=address or None, port=port)


@dataclass(frozen=True, slots=True)
class Operation:
    """What every span and histogram point of one operation of one store share, made once and reused.

    `attributes` is never changed after it is made: a batch size or an error type goes in a copy.
    """

    span_name: str
    kind: Any  # SpanKind
    attributes: dict[str, Any]


class Recorder:
    """Records the operations of one namespace on one backend: spans and the duration histogram.

    The hot path (`run`) does per call only what the SDK needs from it: the span's name, kind and attributes
    are made once per operation (`operation`), the span is not made current (no context attached: a
    single statement has no child span; it still has the caller's current span as its parent), and one
    clock, read twice, gives the span its start and end and the histogram its duration.
    """

    def __init__(self, facts: Facts, namespace: str) -> None:
        self.namespace = namespace
        self.messaging = facts.messaging
        self.tracer = otel_trace.get_tracer(SCOPE)
        # Decided once, like the wrapping: a service exporting only metrics (Prometheus) pays for no span.
        self.tracing = type(otel_trace.get_tracer_provider()).__name__ not in _NO_OP
        meter = otel_metrics.get_meter(SCOPE)
        if facts.messaging:
            base: dict[str, Any] = {
                "messaging.system": facts.system,
                "messaging.destination.name": namespace,
            }
            self.histogram = _histogram(meter, MESSAGING_DURATION, MESSAGING_BUCKETS, "messaging")
        else:
            base = {"db.system.name": facts.system, "db.collection.name": namespace}
            if facts.database is not None:
                base["db.namespace"] = facts.database
            self.histogram = _histogram(meter, DB_DURATION, DB_BUCKETS, "database client")
        if facts.address is not None:
            base["server.address"] = facts.address
        if facts.port is not None:
            base["server.port"] = facts.port
        self.base = base
        self._operations: dict[str, Operation] = {}

    def operation(self, op: str) -> Operation:
        """Return the span name, kind and attributes of operation `op` (made on first use, then reused)."""
        found = self._operations.get(op)
        if found is None:
            attrs = dict(self.base)
            if self.messaging:
                attrs["messaging.operation.name"] = op
                attrs["messaging.operation.type"] = "send" if op == "append" else "receive"
                kind = (
                    SpanKind.PRODUCER
                    if op == "append"
                    else SpanKind.CONSUMER
                    if op == "tail"
                    else SpanKind.CLIENT
                )
            else:
                attrs["db.operation.name"] = op
                kind = SpanKind.CLIENT
            found = self._operations[op] = Operation(f"{op} {self.namespace}", kind, attrs)
        return found

    def _batch(self, attrs: dict[str, Any], size: int) -> dict[str, Any]:
        if size < 2:  # the conventions: a batch has two or more operations
            return attrs
        name = "messaging.batch.message_count" if self.messaging else "db.operation.batch.size"
        return {**attrs, name: size}

    async def run(self, op: str, size: int, work: Awaitable[T]) -> T:
        """Await `work` inside the span of operation `op` (`size`: the batch size), and time it."""
        o = self._operations.get(op) or self.operation(op)
        if not self.tracing:
            start = time.perf_counter()
            try:
                result = await work
            except BaseException as error:
                self._error_point(o, time.perf_counter() - start, error)
                raise
            self.histogram.record(time.perf_counter() - start, o.attributes)
            return result
        attrs = o.attributes if size < 2 else self._batch(o.attributes, size)
        begun = time.time_ns()
        span = self.tracer.start_span(o.span_name, kind=o.kind, attributes=attrs, start_time=begun)
        try:
            result = await work
        except BaseException as error:
            self._failed(span, o, begun, error)
            raise
        ended = time.time_ns()
        span.end(ended)
        # `_seconds`, written out: one call less on the hot path.
        self.histogram.record((ended - begun) / 1e9 if ended > begun else 0.0, o.attributes)
        return result

    async def run_current(self, op: str, size: int, work: Callable[[], Awaitable[T]]) -> T:
        """Like `run`, with the span current while `work()` runs: its hops are children, its messages carry it."""
        o = self.operation(op)
        begun = time.time_ns()
        span = self.tracer.start_span(
            o.span_name, kind=o.kind, attributes=self._batch(o.attributes, size), start_time=begun
        )
        with otel_trace.use_span(
            span,
            end_on_exit=False,
            record_exception=False,  # an exception's message and traceback are not telemetry's to keep
            set_status_on_exception=False,
        ):
            try:
                result = await work()
            except BaseException as error:
                self._failed(span, o, begun, error)
                raise
        ended = time.time_ns()
        span.end(ended)
        self.histogram.record(_seconds(begun, ended), o.attributes)
        return result

    def _failed(self, span: Any, o: Operation, begun: int, error: BaseException) -> None:
        """End `span` as failed with `error`'s type, and record the failed operation's duration."""
        ended = time.time_ns()
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR))
        span.end(ended)
        self._error_point(o, _seconds(begun, ended), error)

    def _error_point(self, o: Operation, seconds: float, error: BaseException) -> None:
        self.histogram.record(seconds, {**o.attributes, "error.type": type(error).__qualname__})

    async def iterate(self, op: str, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """Yield from `items` inside one span of operation `op`, from the first item asked to the last."""
        o = self.operation(op)
        begun = time.time_ns()
        span = self.tracer.start_span(o.span_name, kind=o.kind, attributes=o.attributes, start_time=begun)
        count = 0
        try:
            async for item in items:
                count += 1
                yield item
        except GeneratorExit:  # the caller stopped early (a break): not a failure
            span.set_attribute("prism.result.count", count)
            self._ended(span, o, begun)
            raise
        except BaseException as error:
            span.set_attribute("prism.result.count", count)
            self._failed(span, o, begun, error)
            raise
        span.set_attribute("prism.result.count", count)
        self._ended(span, o, begun)

    def _ended(self, span: Any, o: Operation, begun: int) -> None:
        ended = time.time_ns()
        span.end(ended)
        self.histogram.record(_seconds(begun, ended), o.attributes)

    async def receive(self, op: str, work: Callable[[], Awaitable[Sequence[T]]]) -> Sequence[T]:
        """Read one batch of a follower: a span (linked to the producers' spans) only for a batch with items."""
        o = self.operation(op)
        begun = time.time_ns()
        links: list[Any] = []
        token = _LINKS.set(links)
        try:
            batch = await work()
        except BaseException as error:
            span = self.tracer.start_span(o.span_name, kind=o.kind, attributes=o.attributes, start_time=begun)
            self._failed(span, o, begun, error)
            raise
        finally:
            _LINKS.reset(token)
        if batch:
            span = self.tracer.start_span(
                o.span_name,
                kind=o.kind,
                attributes=self._batch(o.attributes, len(batch)),
                links=links,
                start_time=begun,
            )
            self._ended(span, o, begun)
        return batch


def _seconds(begun: int, ended: int) -> float:
    """Return the seconds from `begun` to `ended` (nanoseconds of the span clock); never negative."""
    return max(ended - begun, 0) / 1e9


_INSTRUMENTS: dict[tuple[int, str], Any] = {}


def _histogram(meter: Any, name: str, buckets: tuple[float, ...], what: str) -> Any:
    key = (id(otel_metrics.get_meter_provider()), name)
    found = _INSTRUMENTS.get(key)
    if found is None:
        found = meter.create_histogram(
            name,
            unit="s",
            description=f"Duration of {what} operations.",
            explicit_bucket_boundaries_advisory=list(buckets),
        )
        _INSTRUMENTS[key] = found
    return found


def pii_event(event: str, count: int = 1) -> None:
    """Count PII events (`decryptions`, `audit_entries`, `subjects_forgotten`): a number, never a value."""
    _count(PII_COUNTERS, event, count, None)


def migration_event(event: str, namespace: str, count: int = 1) -> None:
    """Count migration events (`mismatches`, `dual_write_failures`, `backfill_rows`) of one namespace."""
    _count(MIGRATION_COUNTERS, event, count, {"db.collection.name": namespace})


def _count(
    counters: Mapping[str, tuple[str, str, str]], event: str, count: int, attrs: dict[str, str] | None
) -> None:
    if not AVAILABLE or count <= 0:
        return
    provider = otel_metrics.get_meter_provider()
    if type(provider).__name__ in _NO_OP:
        return
    key = (id(provider), event)
    counter = _INSTRUMENTS.get(key)
    if counter is None:
        name, unit, description = counters[event]
        counter = otel_metrics.get_meter(SCOPE).create_counter(name, unit=unit, description=description)
        _INSTRUMENTS[key] = counter
    counter.add(count, attrs)


def trace_headers() -> dict[str, str]:
    """Return the headers that carry the current span's context to consumers (none when not tracing)."""
    if not AVAILABLE or not otel_trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    otel_propagate.inject(carrier)
    return carrier


def carried(headers: Mapping[str, str] | Iterable[tuple[str, bytes]] | None) -> None:
    """Note the producer's span context a consumed message carries, while a traced follower reads."""
    links = _LINKS.get()
    if links is None or not headers or len(links) >= _MAX_LINKS:
        return
    if isinstance(headers, Mapping):
        carrier = dict(headers)
    else:
        carrier = {k: v.decode("latin-1") for k, v in headers if k in ("traceparent", "tracestate")}
    context = otel_trace.get_current_span(otel_propagate.extract(carrier)).get_span_context()
    if context.is_valid:
        links.append(Link(context))


def _recorder(db: Traced, spec: EntitySpec, backend: object) -> Recorder | None:
    if not enabled():
        return None
    kind = db.kind_for(spec)
    return Recorder(facts_of(db.config.backends[kind], db.backend_for(spec)), spec.namespace)


def keyvalue(backend: B, db: Traced, spec: EntitySpec) -> B:
    """Return `backend` traced when telemetry is on, else `backend` itself."""
    recorder = _recorder(db, spec, backend)
    if recorder is None:
        return backend
    traced: Any = _TracedKeyValue(backend, recorder)
    return traced  # type: ignore[no-any-return]


def timeseries(backend: B, db: Traced, spec: EntitySpec) -> B:
    """Return `backend` traced when telemetry is on, else `backend` itself."""
    recorder = _recorder(db, spec, backend)
    if recorder is None:
        return backend
    traced: Any = _TracedTimeSeries(backend, recorder)
    return traced  # type: ignore[no-any-return]


def graph(backend: B, db: Traced, spec: EntitySpec, store: object) -> B:
    """Return `backend` traced when telemetry is on (and trace `store`'s traversals), else `backend`."""
    recorder = _recorder(db, spec, backend)
    if recorder is None:
        return backend
    for name in ("neighbors", "bfs", "dfs", "shortest_path", "k_hop_count"):
        method = getattr(store, name, None)
        if method is not None:
            setattr(store, name, _traversal(recorder, name, method))
    traced: Any = _TracedGraph(backend, recorder)
    return traced  # type: ignore[no-any-return]


def _traversal(
    recorder: Recorder, op: str, method: Callable[..., Awaitable[T]]
) -> Callable[..., Awaitable[T]]:
    def traced(*args: Any, **kwargs: Any) -> Awaitable[T]:
        return recorder.run_current(op, 0, lambda: method(*args, **kwargs))

    return traced


class _Traced:
    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self._inner = inner
        self._recorder = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # what the abstraction does not trace, served as it is


class _TracedKeyValue(_Traced):
    def put(self, items: Sequence[Any], ttl: Any = None) -> Awaitable[None]:
        size = len(items)
        return self._recorder.run("put" if size == 1 else "put_many", size, self._inner.put(items, ttl))

    def get(self, key: tuple[Any, ...]) -> Awaitable[Any]:
        return self._recorder.run("get", 0, self._inner.get(key))

    def get_many(self, keys: Sequence[tuple[Any, ...]]) -> Awaitable[Any]:
        return self._recorder.run("get_many", len(keys), self._inner.get_many(keys))

    def delete(self, prefix: tuple[Any, ...]) -> Awaitable[int]:
        return self._recorder.run("delete", 0, self._inner.delete(prefix))

    def scan_page(self, prefix: tuple[Any, ...], **options: Any) -> Awaitable[Any]:
        return self._recorder.run("scan", 0, self._inner.scan_page(prefix, **options))

    def find_by(self, field: str, value: Any) -> Awaitable[Any]:
        return self._recorder.run("find_by", 0, self._inner.find_by(field, value))

    def find_page(self, field: str, value: Any, **options: Any) -> Awaitable[Any]:
        return self._recorder.run("find_by", 0, self._inner.find_page(field, value, **options))


class _TracedTimeSeries(_Traced):
    def append(self, events: Sequence[Any]) -> Awaitable[None]:
        # Current while it runs: a stream backend puts the span's context in the messages' headers.
        return self._recorder.run_current("append", len(events), lambda: self._inner.append(events))

    def query(
        self, key: Any, start_ns: int | None, end_ns: int | None, limit: int | None
    ) -> AsyncIterator[Any]:
        return self._recorder.iterate("query", self._inner.query(key, start_ns, end_ns, limit))

    def follow(self, key: Any | None, from_ns: int | None) -> Any:
        return _TracedFollower(self._inner.follow(key, from_ns), self._recorder)


class _TracedFollower(_Traced):
    async def start(self) -> None:
        await self._inner.start()

    def next_batch(self) -> Awaitable[Sequence[Any]]:
        return self._recorder.receive("tail", self._inner.next_batch)

    async def close(self) -> None:
        await self._inner.close()


class _TracedGraph(_Traced):
    def put_edges(self, edges: Sequence[Any]) -> Awaitable[None]:
        return self._recorder.run("put_edges", len(edges), self._inner.put_edges(edges))

    def get_edge(self, source: Any, target: Any) -> Awaitable[Any]:
        return self._recorder.run("get_edge", 0, self._inner.get_edge(source, target))

    def delete_edge(self, source: Any, target: Any) -> Awaitable[int]:
        return self._recorder.run("delete_edge", 0, self._inner.delete_edge(source, target))

    def expand(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return self._recorder.run("expand", 0, self._inner.expand(*args, **kwargs))

    def edges(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return self._recorder.run("edges", 0, self._inner.edges(*args, **kwargs))
