"""Prism's metrics on a Prometheus /metrics endpoint: the standard OpenTelemetry recipe (docs/observability.md).

Needs the runtime's `otel` extra plus the SDK and the Prometheus exporter:

    pip install 'prism-runtime[otel]' opentelemetry-sdk opentelemetry-exporter-prometheus
    prism generate examples/proto -o examples/gen
    python examples/otel_prometheus.py        # then: curl http://127.0.0.1:9464/metrics

It serves users until stopped (Ctrl-C, SIGTERM), reading and writing one every 100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server

# The generated packages live in examples/gen (or anywhere on PYTHONPATH).
sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

from acme.users.v1 import users_pb2, users_prism

import prism_runtime


def serve_metrics(port: int) -> None:
    """Set the global meter provider, read by Prometheus at http://127.0.0.1:`port`/metrics.

    Set it before creating Prism's stores: each store decides once whether to record.
    """
    start_http_server(port, addr="127.0.0.1")
    resource = Resource.create({"service.name": "prism-example"})
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()]))


async def main() -> None:
    """Write and read users until stopped."""
    serve_metrics(int(os.environ.get("METRICS_PORT", "9464")))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with prism_runtime.connect() as db:  # ./prism.db, or $PRISM_URL
        users = users_prism.UserProfileStore(db)
        n = 0
        while not stop.is_set():
            user_id = f"u-{n % 100}"
            await users.put(users_pb2.UserProfile(user_id=user_id, display_name="Example"))
            await users.get(user_id)
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)


if __name__ == "__main__":
    asyncio.run(main())
