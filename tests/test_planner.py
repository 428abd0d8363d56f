"""The capacity planner, one test per rule row of docs/planner.md, through real protoc and prism.plan.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_protoc, write_proto
from hypothesis import given, settings
from hypothesis import strategies as st

from prism_runtime.schema import Abstraction
from protoc_gen_prism.emitters.plan_file import dump_json

HEADER = 'syntax = "proto3";\npackage acme.plan.v1;\nimport "prism/options.proto";\nimport "google/protobuf/timestamp.proto";\n'


def series(name: str, *options: str, fields: str = "") -> str:
    """Return an append_heavy message with a key, an event time and the given options."""
    opts = "".join(f"  option (prism.{o};\n" for o in ('access_pattern) = "append_heavy"', *options))
    return (
        f"message {name} {{\n{opts}  string id = 1 [(prism.key) = true];\n"
        f"  int64 at = 2 [(prism.event_time) = true];\n{fields}}}\n"
    )


def entity(name: str, pattern: str, *options: str) -> str:
    """Return a keyed message of `pattern` with the given options."""
    opts = "".join(f"  option (prism.{o};\n" for o in (f'access_pattern) = "{pattern}"', *options))
    return f"message {name} {{\n{opts}  string id = 1 [(prism.key) = true];\n}}\n"


SCHEMA = HEADER + "".join(
    [
        series("Seed", 'estimated_write_rps) = "10000"', 'retention_days) = "90"'),
        series("Override", 'estimated_write_rps) = "10000"', 'backend) = "nats"'),
        entity("Kv", "key_value", 'estimated_write_rps) = "50000"'),
        entity("ReadHeavy", "read_heavy"),
        entity("WriteHeavy", "write_heavy", 'estimated_write_rps) = "90000"'),
        entity("Node", "graph_node"),
        series("Fast", 'estimated_write_rps) = "1000"', 'retention_days) = "1"'),
        series("LongKept", 'estimated_write_rps) = "10"', 'retention_days) = "30"'),
        series(
            "QueryHeavy",
            'estimated_write_rps) = "100"',
            'estimated_read_rps) = "500"',
            'retention_days) = "14"',
        ),
        series("Slow", 'estimated_write_rps) = "999"', 'retention_days) = "29"'),
        series("Big", 'estimated_write_rps) = "1000"', 'estimated_message_bytes) = "100000"'),
        series("Parallel", 'estimated_write_rps) = "1000"', 'consumer_parallelism) = "64"'),
        series("Huge", 'estimated_write_rps) = "10000000"'),
        series("Forever", 'estimated_write_rps) = "5000"'),
        series(
            "Sized",
            'estimated_write_rps) = "100"',
            'retention_days) = "2"',
            'estimated_message_bytes) = "200"',
        ),
        series("Unsized", 'retention_days) = "2"'),
        series(
            "Fields",
            fields=(
                "  bool b = 3;\n  int32 i = 4;\n  double d = 5;\n  string s = 6;\n  bytes y = 7;\n"
                "  google.protobuf.Timestamp t = 8;\n  repeated int64 r = 16;\n"
            ),
        ),
    ]
)


def plan_of(tmp: Path, parameter: str = "") -> dict[str, dict[str, Any]]:
    proto = write_proto(tmp / "src", "acme/plan/v1/plan.proto", SCHEMA)
    run = run_protoc(tmp / "src", [proto], tmp / "out", parameter=parameter)
    assert run.returncode == 0, run.stderr
    document = json.loads((tmp / "out" / "prism.plan.json").read_text())
    return {e["message"].rsplit(".", 1)[1]: e for e in document["entities"]}


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return plan_of(tmp_path_factory.mktemp("plan"))


def test_seed_example_holds_exactly(plan: dict[str, dict[str, Any]]) -> None:
    seed = plan["Seed"]
    assert seed["backend"] == "kafka"
    assert seed["settings"]["partitions"] == 20
    assert seed["settings"]["config"]["retention.ms"] == "7776000000"


def test_explicit_backend_overrides_the_planner(plan: dict[str, dict[str, Any]]) -> None:
    assert plan["Override"]["backend"] == "nats"
    assert plan["Override"]["rationale"][0] == "backend nats: set explicitly by (prism.backend)"


@pytest.mark.parametrize("name", ["Kv", "ReadHeavy", "WriteHeavy", "Node"])
def test_key_value_and_graph_go_to_postgres(plan: dict[str, dict[str, Any]], name: str) -> None:
    assert plan[name]["backend"] == "postgres"
    assert plan[name]["settings"] == {"table": f"acme_plan_v1_{plan[name]['namespace'].split('_v1_')[1]}"}


def test_high_write_rate_goes_to_kafka(plan: dict[str, dict[str, Any]]) -> None:
    assert plan["Fast"]["backend"] == "kafka"
    assert plan["Fast"]["rationale"][0] == "append_heavy at 1000 writes/s (>= 1000): kafka, partitioned"


def test_long_retention_goes_to_kafka(plan: dict[str, dict[str, Any]]) -> None:
    assert plan["LongKept"]["backend"] == "kafka"
    assert plan["LongKept"]["settings"]["partitions"] == 1


def test_query_heavy_series_goes_to_postgres_with_daily_partitions(plan: dict[str, dict[str, Any]]) -> None:
    q = plan["QueryHeavy"]
    assert q["backend"] == "postgres"
    assert q["settings"] == {
        "table": "acme_plan_v1_query_heavy",
        "partition_by": "day",
        "drop_after_days": 14,
    }


def test_lower_rates_go_to_nats(plan: dict[str, dict[str, Any]]) -> None:
    assert plan["Slow"]["backend"] == "nats"
    assert plan["Slow"]["settings"]["max_age_ns"] == 29 * 86_400 * 10**9


def test_partitions_by_bytes(plan: dict[str, dict[str, Any]]) -> None:
    # 1000 x 100000 B/s over 5 MiB/s per partition = 19.07 -> 20, more than ceil(1000 / 500) = 2.
    assert plan["Big"]["settings"]["partitions"] == 20


def test_partitions_by_consumer_parallelism(plan: dict[str, dict[str, Any]]) -> None:
    assert plan["Parallel"]["settings"]["partitions"] == 64


def test_partitions_are_clamped(plan: dict[str, dict[str, Any]]) -> None:
    assert plan["Huge"]["settings"]["partitions"] == 1000


def test_no_retention_keeps_forever(plan: dict[str, dict[str, Any]]) -> None:
    assert plan["Forever"]["settings"]["config"]["retention.ms"] == "-1"
    assert plan["Unsized"]["settings"]["max_age_ns"] == 2 * 86_400 * 10**9
    assert plan["Unsized"]["settings"]["max_bytes"] == -1


def test_storage_is_rate_times_size_times_retention_with_headroom(plan: dict[str, dict[str, Any]]) -> None:
    sized = plan["Sized"]
    expected = 100 * 200 * 2 * 86_400 * 5 // 4
    assert sized["estimates"]["storage_bytes"] == expected
    assert sized["settings"]["max_bytes"] == expected
    assert (
        "storage: 100 writes/s x 200 B x 2 days x 1.25 headroom = 4.0 GiB per replica" in sized["rationale"]
    )


def test_message_size_is_estimated_from_field_types(plan: dict[str, dict[str, Any]]) -> None:
    # id string 1+25, at int64 1+6, bool 1+1, int32 1+3, double 1+8, string 1+25, bytes 1+33,
    # Timestamp 1+12, repeated int64 (field 16: 2-byte tag) 4 x (2+6).
    assert plan["Fields"]["estimates"]["message_bytes"] == 26 + 7 + 2 + 4 + 9 + 26 + 34 + 13 + 32


def test_production_profile_replicates(plan: dict[str, dict[str, Any]]) -> None:
    assert plan["Seed"]["settings"]["replicas"] == 3
    assert plan["Seed"]["settings"]["config"]["min.insync.replicas"] == "2"
    assert plan["Slow"]["settings"]["replicas"] == 3


def test_local_profile_has_one_replica(tmp_path: Path) -> None:
    local = plan_of(tmp_path, "profile=local")
    assert local["Seed"]["profile"] == "local"
    assert local["Seed"]["settings"]["replicas"] == 1
    assert local["Seed"]["settings"]["config"]["min.insync.replicas"] == "1"
    assert local["Seed"]["settings"]["partitions"] == 20
    assert local["Slow"]["settings"]["replicas"] == 1


def test_unknown_profile_names_the_allowed_ones(tmp_path: Path) -> None:
    proto = write_proto(tmp_path / "src", "acme/plan/v1/plan.proto", SCHEMA)
    run = run_protoc(tmp_path / "src", [proto], tmp_path / "out", parameter="profile=prod")
    assert run.returncode != 0
    assert "profile='prod' is not supported; allowed: local, production" in run.errors


def test_plan_file_is_deterministic(tmp_path: Path) -> None:
    assert plan_of(tmp_path / "a") == plan_of(tmp_path / "b")


# -- prism.plan.json written by plan_file.dump_json, as json.dumps(indent=2) writes it ----------------------

_JSON_SCALARS = (
    st.text(max_size=8)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.booleans()
    | st.none()
    | st.sampled_from([Abstraction.GRAPH, 3.0, -0.0])
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5) | st.integers(max_value=9), inner, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.text(max_size=5), _JSON, max_size=4))
def test_plan_json_is_json_dumps_with_indent(document: dict[str, Any]) -> None:
    assert dump_json(document) == json.dumps(document, indent=2)
