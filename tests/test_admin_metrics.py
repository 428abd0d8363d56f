"""The admin's Metrics page: quantiles from bucket deltas, and charts from a real instrumented process."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_support import MIGRATING, Seeded, admin_server, call, example_service, free_port, prism, seed

from protoc_gen_prism.admin.sources.metrics import MISMATCHES, Histogram, Snapshot, Window, parse, read

ROOT = Path(__file__).resolve().parents[1]
INF = float("inf")


def test_quantiles_interpolate_within_a_bucket_as_histogram_quantile_does() -> None:
    h = Histogram(((0.001, 10.0), (0.005, 60.0), (0.01, 90.0), (INF, 100.0)))
    # p50: the 50th of 100 lies in (0.001, 0.005], 40 of that bucket's 50 in: 0.001 + 0.004 * 40/50.
    assert h.quantile(0.5) == pytest.approx(0.0042)
    # p99 lies in the open bucket: its lower bound is all that is known, as in Prometheus.
    assert h.quantile(0.99) == pytest.approx(0.01)
    assert Histogram(((0.001, 0.0), (INF, 0.0))).quantile(0.5) is None


def test_rates_come_from_the_delta_between_scrapes_and_survive_a_counter_reset() -> None:
    older = Histogram(((0.001, 100.0), (0.01, 150.0), (INF, 150.0)))
    newer = Histogram(((0.001, 110.0), (0.01, 170.0), (INF, 170.0)))
    window = Window(600)
    window.add(Snapshot(10.0, 1000.0, {"ns": older}))
    window.add(Snapshot(12.0, 1002.0, {"ns": newer}))
    (point,) = window.series("ns")
    assert point.ops == pytest.approx(10.0)  # 20 operations in 2 s
    # 10 of the 20 in (0, 0.001], 10 in (0.001, 0.01]: the median is the first bucket's upper bound.
    assert point.p50 == pytest.approx(0.001)
    restarted = Histogram(((0.001, 4.0), (0.01, 4.0), (INF, 4.0)))
    window.add(Snapshot(14.0, 1004.0, {"ns": restarted}))
    assert window.series("ns")[-1].ops == pytest.approx(2.0)


def test_parse_sums_every_label_but_the_namespace() -> None:
    text = "\n".join(
        [
            "# TYPE db_client_operation_duration_seconds histogram",
            *(
                f'db_client_operation_duration_seconds_bucket{{db_collection_name="a",db_operation_name="{op}",le="{le}"}} {n}'
                for op in ("get", "put")
                for le, n in (("0.001", 1), ("+Inf", 3))
            ),
            'db_client_operation_duration_seconds_count{db_collection_name="a",db_operation_name="get"} 3',
            'db_client_operation_duration_seconds_sum{db_collection_name="a",db_operation_name="get"} 0.01',
            "",
        ]
    )
    assert parse(text) == {"a": Histogram(((0.001, 2.0), (INF, 6.0)))}


@pytest.fixture(scope="module")
def service(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with example_service(generated, tmp_path_factory.mktemp("admin-metrics-service")) as url:
        yield url


@pytest.fixture(scope="module")
def seeded(service: str, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(tmp_path_factory.mktemp("admin-metrics"), metrics_url=service)


def test_the_metrics_page_charts_a_running_services_rate_and_latency(seeded: Seeded) -> None:
    with admin_server(seeded) as base:
        assert call("GET", base + "/metrics").status == 200
        deadline = time.monotonic() + 60
        while True:
            live = call("GET", base + "/metrics/live").text
            found = re.search(
                r"<h2>acme_users_v1_user_profile</h2>.*?<strong>([\d.]+) ops/s</strong>,\s*p50 ([\d.]+) ms,\s*"
                r"p99 ([\d.]+) ms",
                live,
                re.S,
            )
            if found and live.count("<polyline") >= 3:
                break
            assert time.monotonic() < deadline, live[-2000:]
            time.sleep(1)
    ops, p50, p99 = (float(g) for g in found.groups())
    # The example puts and gets one user every 100 ms: at most 20 operations a second, fewer on a busy machine.
    assert 1.0 < ops <= 21.0
    assert 0 < p50 <= p99 < 10_000
    assert 'class="p50"' in live and 'class="p99"' in live and 'class="ops"' in live


def test_the_mismatch_rate_is_a_counters_increase_per_second() -> None:
    def exposition(value: float) -> str:
        return (
            "# HELP prism_migration_mismatches_total Shadow reads whose target answer differed\n"
            "# TYPE prism_migration_mismatches_total counter\n"
            f'prism_migration_mismatches_total{{db_collection_name="a",otel_scope_name="prism_runtime"}} {value}\n'
        )

    window = Window(600)
    assert window.rate(MISMATCHES, "a") is None, "no rate before two scrapes"
    for at, value in ((0.0, 3.0), (2.0, 9.0)):
        histograms, counters = read(exposition(value))
        window.add(Snapshot(at, at, histograms, counters))
    assert window.rate(MISMATCHES, "a") == pytest.approx(3.0)
    assert window.rate(MISMATCHES, "b") == 0.0, "a namespace never counted has had no mismatch"


SERVICE = """
import asyncio, importlib, sys
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import start_http_server
import prism_runtime

start_http_server(int(sys.argv[2]), addr="127.0.0.1")
metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))


async def main():
    stores = importlib.import_module("prismtest.pii.v1.pii_prism")
    async with prism_runtime.connect(config=sys.argv[1]) as db:
        subscriptions = stores.SubscriptionStore(db)
        while True:
            await subscriptions.get(7)
            await asyncio.sleep(0.1)


asyncio.run(main())
"""


def test_the_migrations_page_shows_the_mismatch_rate_a_service_reports(
    generated: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    seeded = seed(
        tmp_path_factory.mktemp("admin-mismatch"),
        metrics_url=f"http://127.0.0.1:{port}/metrics",
        migration=True,
    )
    monkeypatch.setenv("PRISM_MASTER_KEY_FILE", str(seeded.key_file))
    assert prism(["migration", "phase", MIGRATING, "shadow_read", "--config", str(seeded.config)]) == 0
    # The target's copy of the one subscription differs: every shadow read of it is a mismatch.
    with sqlite3.connect(seeded.directory / "new.db") as target:
        assert target.execute(f"UPDATE {MIGRATING} SET weekly = 0 WHERE account_id = 7").rowcount == 1
    env = {**os.environ, "PYTHONPATH": str(generated), "PRISM_MASTER_KEY_FILE": str(seeded.key_file)}
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE, str(seeded.config), str(port)],
        env=env,
        cwd=seeded.directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with admin_server(seeded) as base:
            deadline = time.monotonic() + 60
            while True:
                assert service.poll() is None, service.communicate()[1]
                live = call("GET", base + "/migrations/live").text
                found = re.search(r"<td>([\d.]+)/s</td>", live)
                if found and float(found.group(1)) > 0:
                    break
                assert time.monotonic() < deadline, live[-2000:]
                time.sleep(1)
    finally:
        service.terminate()
        service.wait(timeout=30)
    assert "shadow_read" in live
    # One read every 100 ms, each compared: up to 10 mismatches a second, fewer on a busy machine.
    assert 0 < float(found.group(1)) <= 11
