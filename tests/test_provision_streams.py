"""`prism provision` (streams) and `prism plan` as a user runs them, against the real servers."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import nats
import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from conftest import EXAMPLES, write_proto
from nats.js import api

from prism_runtime.config import load_config
from prism_runtime.provision_streams import survey_streams
from protoc_gen_prism.plan_source import load_plan
from protoc_gen_prism.protoc_runner import tool

HEADER = 'syntax = "proto3";\npackage acme.prov.v1;\nimport "prism/options.proto";\n'


def schema(ns: str, *, kafka_rps: int = 10000, nats_days: int = 7) -> str:
    def message(name: str, suffix: str, options: str) -> str:
        return (
            f'message {name} {{\n  option (prism.access_pattern) = "append_heavy";\n'
            f'  option (prism.namespace) = "{ns}_{suffix}";\n{options}'
            "  string id = 1 [(prism.key) = true];\n  int64 at = 2 [(prism.event_time) = true];\n}\n"
        )

    return (
        HEADER
        + message(
            "Clicks",
            "k",
            f'  option (prism.estimated_write_rps) = "{kafka_rps}";\n  option (prism.retention_days) = "90";\n',
        )
        + message(
            "Stock",
            "n",
            f'  option (prism.estimated_write_rps) = "50";\n  option (prism.retention_days) = "{nats_days}";\n',
        )
    )


@pytest.fixture
def project(tmp_path: Path, kafka_bootstrap: str, nats_url: str) -> tuple[Path, Path, str]:
    ns = f"prov_{uuid.uuid4().hex[:10]}"
    write_proto(tmp_path / "proto", "acme/prov/v1/prov.proto", schema(ns))
    config = tmp_path / "prism.yaml"
    config.write_text(f"backends:\n  kafka: kafka://{kafka_bootstrap}\n  nats: {nats_url}\n")
    return tmp_path / "proto", config, ns


def prism(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("prism"), *args], capture_output=True, text=True, timeout=120)


def provision(proto: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return prism("provision", str(proto), "--config", str(config), "--profile", "local", *extra)


def test_dry_run_then_apply_then_nothing_to_do(project: tuple[Path, Path, str]) -> None:
    proto, config, ns = project
    dry = provision(proto, config, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"+ kafka topic {ns}_k: create",
        "    partitions 20, replicas 1",
        "    cleanup.policy=delete",
        "    compression.type=producer",
        "    max.message.bytes=1048588",
        "    min.insync.replicas=1",
        "    retention.ms=7776000000",
        f"+ nats stream {ns}_n: create",
        f"    subjects prism.{ns}_n.>, file storage, replicas 1",
        "    max_age 604800000000000ns, max_bytes 1247400000, duplicate_window 120000000000ns",
        "dry run: nothing was changed",
    ]
    assert provision(proto, config, "--dry-run").stdout == dry.stdout  # the dry run created nothing
    applied = provision(proto, config)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith(f"+ kafka topic {ns}_k: create")
    again = provision(proto, config)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"= kafka topic {ns}_k: unchanged",
        f"= nats stream {ns}_n: unchanged",
    ]


async def test_a_stream_limit_change_is_applied(project: tuple[Path, Path, str], nats_url: str) -> None:
    proto, config, ns = project
    assert provision(proto, config).returncode == 0
    write_proto(proto, "acme/prov/v1/prov.proto", schema(ns, nats_days=14))
    changed = provision(proto, config)
    assert changed.returncode == 0, changed.stderr
    assert (
        f"~ nats stream {ns}_n: update\n    max_age 604800000000000 -> 1209600000000000\n" in changed.stdout
    )
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(f"{ns}_n")
        assert info.config.max_age == 14 * 86400
    finally:
        await nc.close()


async def test_fewer_partitions_are_refused_and_nothing_changes(
    project: tuple[Path, Path, str], nats_url: str
) -> None:
    proto, config, ns = project
    assert (await asyncio.to_thread(provision, proto, config)).returncode == 0
    write_proto(proto, "acme/prov/v1/prov.proto", schema(ns, kafka_rps=1000, nats_days=14))
    refused = await asyncio.to_thread(provision, proto, config)
    assert refused.returncode == 1
    assert refused.stderr == (
        "prism provision: cannot apply the plan, nothing was changed:\n"
        f"  kafka {ns}_k: partitions 20 -> 2: Kafka cannot remove partitions (records would move between keys' "
        "partitions); keep the count or recreate the topic\n"
    )
    # The NATS change in the same run was not applied either.
    nc = await nats.connect(nats_url)
    try:
        assert (await nc.jetstream().stream_info(f"{ns}_n")).config.max_age == 7 * 86400
    finally:
        await nc.close()


async def test_a_survey_counts_records_and_returns_refusals_instead_of_raising(
    project: tuple[Path, Path, str], kafka_bootstrap: str, nats_url: str
) -> None:
    proto, config, ns = project
    assert (await asyncio.to_thread(provision, proto, config)).returncode == 0
    nc = await nats.connect(nats_url)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for n in range(3):
            await nc.jetstream().publish(f"prism.{ns}_n.k{n}", b"x")
        for n in range(2):
            await producer.send_and_wait(f"{ns}_k", b"x", key=f"k{n}".encode())
    finally:
        await producer.stop()
        await nc.close()
    loaded = load_config(None, config)
    surveyed = await survey_streams(load_plan(proto, profile="local").streams, loaded)
    assert {(s.change.name, s.change.action, s.records) for s in surveyed} == {
        (f"{ns}_k", "unchanged", 2),
        (f"{ns}_n", "unchanged", 3),
    }
    write_proto(proto, "acme/prov/v1/prov.proto", schema(ns, kafka_rps=1000))
    refused = await survey_streams(load_plan(proto, profile="local").streams, loaded)
    kafka = next(s for s in refused if s.change.backend == "kafka")
    assert kafka.change.refused and "Kafka cannot remove partitions" in kafka.change.refused[0]
    assert kafka.records == 2


async def test_a_survey_of_a_plan_not_yet_provisioned_counts_nothing(project: tuple[Path, Path, str]) -> None:
    proto, config, ns = project
    surveyed = await survey_streams(load_plan(proto, profile="local").streams, load_config(None, config))
    assert {(s.change.name, s.change.action, s.records) for s in surveyed} == {
        (f"{ns}_k", "create", None),
        (f"{ns}_n", "create", None),
    }


async def test_a_storage_change_is_refused(project: tuple[Path, Path, str], nats_url: str) -> None:
    proto, config, ns = project
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().add_stream(
            name=f"{ns}_n", subjects=[f"prism.{ns}_n.>"], storage=api.StorageType.MEMORY
        )
    finally:
        await nc.close()
    refused = await asyncio.to_thread(provision, proto, config)
    assert refused.returncode == 1
    assert (
        f"nats {ns}_n: storage memory -> file: JetStream cannot change a stream's storage" in refused.stderr
    )


def test_more_partitions_on_a_broker_without_create_partitions_is_a_clear_error(
    project: tuple[Path, Path, str],
) -> None:
    proto, config, ns = project
    write_proto(proto, "acme/prov/v1/prov.proto", schema(ns, kafka_rps=1000))
    assert provision(proto, config).returncode == 0
    write_proto(proto, "acme/prov/v1/prov.proto", schema(ns, kafka_rps=2000))
    grown = provision(proto, config)
    # Real Kafka applies it; Tansu lacks CreatePartitions (docs/backends-notes.md): the error says so.
    if grown.returncode == 0:
        assert f"~ kafka topic {ns}_k: update\n    partitions 2 -> 4" in grown.stdout
    else:
        assert f"namespace '{ns}_k', kafka (" in grown.stderr
        assert "the broker may not support CreatePartitions/AlterConfigs (Tansu does not)" in grown.stderr


def test_a_plan_needing_an_unconfigured_backend_is_an_error(
    project: tuple[Path, Path, str], tmp_path: Path
) -> None:
    proto, _, _ = project
    only_sqlite = tmp_path / "sqlite.yaml"
    only_sqlite.write_text("backends:\n  sqlite: sqlite://\n")
    done = provision(proto, only_sqlite)
    assert done.returncode == 1
    assert "the plan has kafka and nats namespaces but the config names no URL for kafka, nats" in done.stderr


def test_plan_prints_the_table_and_the_binding(tmp_path: Path, kafka_bootstrap: str) -> None:
    config = tmp_path / "prism.yaml"
    config.write_text(f"backends:\n  kafka: kafka://{kafka_bootstrap}\n  sqlite: sqlite:///prism.db\n")
    done = prism("plan", str(EXAMPLES), "--config", str(config))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "ABSTRACTION", "BACKEND", "BOUND", "TO", "SETTINGS", "WHY"]
    click = lines[1].split()
    assert click[:5] == [
        "acme_events_v1_click_event",
        "time_series",
        "kafka",
        "kafka",
        f"(kafka://{kafka_bootstrap})",
    ]
    assert "20 partitions x3, retention.ms=7776000000" in lines[1]
    assert lines[2].split()[:5] == [
        "acme_events_v1_stock_level",
        "time_series",
        "nats",
        "sqlite",
        "(sqlite:///prism.db)",
    ]
    assert "  - retention.ms 7776000000 = 90 days" in lines


def test_plan_of_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    done = prism("plan", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "is neither a directory of .proto files nor a prism.plan.json" in done.stderr


def test_a_generated_directory_provisions_from_its_plan(
    project: tuple[Path, Path, str], tmp_path: Path
) -> None:
    proto, config, ns = project
    gen = prism("generate", str(proto), "-o", str(tmp_path / "gen"), "--opt", "profile=local")
    assert gen.returncode == 0, gen.stderr
    dry = prism("provision", str(tmp_path / "gen"), "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == f"+ kafka topic {ns}_k: create"
    assert "    partitions 20, replicas 1" in dry.stdout
