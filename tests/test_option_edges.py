"""Option values at the edges: a located error, or output every backend accepts, never a traceback.

Hypothesis writes option values (numbers in every digit system, huge numbers, unicode strings,
long names, trailing newlines) into a request captured once from protoc, and the plugin answers it
in-process through `plugin.respond`, the function the executable runs.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import nats
import nats.js.errors
import pytest
from conftest import run_protoc, write_proto
from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from plugin_requests import answer, capture_request, problems_with

import prism_runtime
from prism import options_pb2
from prism_runtime.pii import LocalKeyWrapper
from protoc_gen_prism.limits import INT64_MAX, MAX_IDENTIFIER_BYTES, NATS_MAX_PAYLOAD_BYTES
from protoc_gen_prism.protoc_runner import tool

PROTO = "acme/edge/v1/edge.proto"
SOURCE = (
    'syntax = "proto3";\npackage acme.edge.v1;\nimport "prism/options.proto";\n'
    'import "google/protobuf/timestamp.proto";\n\n'
    "// What a user did.\n"
    "message Event {\n"
    '  option (prism.access_pattern) = "append_heavy";\n'
    '  option (prism.estimated_write_rps) = "10";\n'
    '  option (prism.retention_days) = "7";\n'
    "  string user_id = 1 [(prism.key) = true];\n"
    "  google.protobuf.Timestamp at = 2 [(prism.event_time) = true];\n"
    "  string body = 3;\n"
    "}\n\n"
    "message Profile {\n"
    '  option (prism.access_pattern) = "key_value";\n'
    "  string id = 1 [(prism.key) = true];\n"
    '  string email = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true, (prism.searchable) = true];\n'
    "}\n"
)
COUNTS = (
    "estimated_write_rps",
    "estimated_read_rps",
    "retention_days",
    "estimated_message_bytes",
    "consumer_parallelism",
)
LOCATED = re.compile(r"acme/edge/v1/edge\.proto:\d+:\d+: acme\.edge\.v1\.\w+(\.\w+)?: \S")
NAMESPACE = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Digits of several scripts (all pass str.isdigit), signs, separators, whitespace.
_DIGITISH = "0123456789" + "\uff10\uff11\uff12\uff13\uff19" + "٠١٢٣٩" + "۰۱۹" + "²³¹" + "_-+ \n\t.e"
numbers = st.one_of(
    st.integers(min_value=0, max_value=2**70).map(str),
    st.integers(min_value=0, max_value=10**12).map(lambda n: f"{n:_}"),
    st.sampled_from(["0", "1", "106751", "106752", "700000", "700001", "1073741823", "1073741824"]),
    st.sampled_from([str(INT64_MAX), str(INT64_MAX + 1), "9" * 5000]),
    st.text(alphabet=_DIGITISH, min_size=1, max_size=24),
)
words = st.one_of(
    st.sampled_from(["sqlite", "postgres", "kafka", "nats", "append_heavy", "key_value", "email"]),
    st.text(max_size=40),
)
identifier = st.from_regex(r"[a-z_][a-z0-9_]{0,80}", fullmatch=True)
namespaces = st.one_of(identifier, identifier.map(lambda n: n + "\n"), st.text(max_size=70))
message_names = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,90}", fullmatch=True)


@pytest.fixture(scope="module")
def edge_request(tmp_path_factory: pytest.TempPathFactory) -> plugin_pb2.CodeGeneratorRequest:
    root = tmp_path_factory.mktemp("edge")
    write_proto(root / "src", PROTO, SOURCE)
    return capture_request(root / "src", [PROTO], root)


def _targets(request: plugin_pb2.CodeGeneratorRequest) -> list[descriptor_pb2.FileDescriptorProto]:
    return [f for f in (*request.proto_file, *request.source_file_descriptors) if f.name == PROTO]


def _with(
    base: plugin_pb2.CodeGeneratorRequest,
    message: int,
    options: dict[str, str],
    *,
    rename: str = "",
    field_rename: str = "",
    comment: str = "",
) -> plugin_pb2.CodeGeneratorRequest:
    request = plugin_pb2.CodeGeneratorRequest()
    request.CopyFrom(base)
    for file in _targets(request):
        proto = file.message_type[message]
        for name, value in options.items():
            proto.options.Extensions[getattr(options_pb2, name)] = value
        if rename:
            proto.name = rename
        if field_rename:
            proto.field[-1].name = field_rename
        if comment:
            for location in file.source_code_info.location:
                if list(location.path) == [4, message]:
                    location.leading_comments = comment
    return request


def _invariants(response: plugin_pb2.CodeGeneratorResponse) -> list[str]:
    """Return every planned value no backend would take; [] for an error or a valid plan."""
    files = {f.name: f.content for f in response.file}
    if response.error or "prism.plan.json" not in files:
        return []
    found = []
    for plan in json.loads(files["prism.plan.json"])["entities"]:
        settings_: dict[str, Any] = plan["settings"]
        if not NAMESPACE.fullmatch(plan["namespace"]):
            found.append(f"namespace {plan['namespace']!r}")
        numbers_ = [*plan["estimates"].values()]
        numbers_ += [v for v in settings_.values() if isinstance(v, int)]
        if "config" in settings_:
            numbers_ += [int(settings_["config"]["retention.ms"])]
            if int(settings_["config"]["max.message.bytes"]) >= 2**31:
                found.append("max.message.bytes beyond a Kafka INT")
        if plan["backend"] == "nats" and plan["estimates"]["message_bytes"] > NATS_MAX_PAYLOAD_BYTES:
            found.append("a NATS record beyond max_payload")
        found += [f"{n} beyond int64" for n in numbers_ if not -1 <= n <= INT64_MAX]
    return found


def _check(response: plugin_pb2.CodeGeneratorResponse) -> None:
    assert not problems_with(response), problems_with(response)
    assert not _invariants(response), _invariants(response)
    for line in response.error.splitlines():
        assert LOCATED.match(line), line


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    message=st.sampled_from([0, 1]),
    counts=st.dictionaries(st.sampled_from(COUNTS), numbers, max_size=4),
    backend=st.one_of(st.none(), words),
)
@example(message=0, counts={"retention_days": "²"}, backend=None)
@example(message=0, counts={"retention_days": "\uff11\uff10"}, backend=None)
@example(message=0, counts={"retention_days": "106752"}, backend="nats")
@example(message=0, counts={"estimated_write_rps": "9" * 400, "retention_days": "1"}, backend=None)
def test_numbers_get_a_located_error_or_valid_output(
    edge_request: plugin_pb2.CodeGeneratorRequest, message: int, counts: dict[str, str], backend: str | None
) -> None:
    options = dict(counts)
    if backend is not None:
        options["backend"] = backend
    _check(answer(_with(edge_request, message, options)))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    message=st.sampled_from([0, 1]),
    namespace=st.one_of(st.none(), namespaces),
    rename=st.one_of(st.just(""), message_names, st.sampled_from(["None", "True", "class"])),
    field_rename=st.one_of(
        st.just(""),
        identifier,
        st.sampled_from(
            ["prism_seq", "prism_event_id", "email__bidx", "ID", "User_Id", "class", "None", "from"]
        ),
    ),
    comment=st.text(max_size=60),
)
@example(message=1, namespace="profiles\n", rename="", field_rename="", comment="")
@example(message=0, namespace=None, rename="", field_rename="", comment="a NUL \x00 and a form feed \x0c")
@example(message=1, namespace=None, rename="P" * 60, field_rename="", comment="")
@example(message=1, namespace=None, rename="", field_rename="e" * 60, comment="")
def test_names_and_strings_get_a_located_error_or_valid_output(
    edge_request: plugin_pb2.CodeGeneratorRequest,
    message: int,
    namespace: str | None,
    rename: str,
    field_rename: str,
    comment: str,
) -> None:
    options = {} if namespace is None else {"namespace": namespace}
    request = _with(edge_request, message, options, rename=rename, field_rename=field_rename, comment=comment)
    _check(answer(request))


# -- the edges found, each as one exact located line ---------------------------------------------


def _error(base: plugin_pb2.CodeGeneratorRequest, message: int, **options: str) -> str:
    return answer(_with(base, message, options)).error


@pytest.mark.parametrize("written", ["\uff11\uff10", "٣", "²", "10\n"])
def test_numbers_take_ascii_digits_only(edge_request: plugin_pb2.CodeGeneratorRequest, written: str) -> None:
    digits = "digits" if written == "10\n" else "ASCII digits 0-9"
    assert _error(edge_request, 0, retention_days=written) == (
        f"acme/edge/v1/edge.proto:10:3: acme.edge.v1.Event: retention_days must be a non-negative whole "
        f'number, got {written!r}; allowed: {digits}, e.g. "10000"'
    )


def test_a_number_beyond_int64_is_out_of_range(edge_request: plugin_pb2.CodeGeneratorRequest) -> None:
    assert _error(edge_request, 0, estimated_write_rps="9" * 5000) == (
        "acme/edge/v1/edge.proto:9:3: acme.edge.v1.Event: estimated_write_rps 99999999999999999999...(5000 "
        "digits) is out of range; allowed: 0 to 9223372036854775807"
    )


def test_nats_retention_must_fit_a_go_duration(edge_request: plugin_pb2.CodeGeneratorRequest) -> None:
    assert not _error(edge_request, 0, retention_days="106751", backend="nats")
    assert _error(edge_request, 0, retention_days="106752", backend="nats") == (
        "acme/edge/v1/edge.proto:10:3: acme.edge.v1.Event: retention_days 106752 is 9223372800000000000 ns, "
        "more than a NATS max_age (a 64-bit Go duration) holds; allowed on nats: 0 to 106751"
    )


def test_kafka_max_message_bytes_must_fit_an_int(edge_request: plugin_pb2.CodeGeneratorRequest) -> None:
    error = _error(edge_request, 0, estimated_message_bytes="1073741824", backend="kafka")
    assert error.endswith(
        "acme.edge.v1.Event: a record of 1073741824 bytes needs max.message.bytes 2147483648, more than "
        "Kafka's 2147483647 (a 32-bit config); allowed on kafka: records of at most 1073741823 bytes"
    )


def test_sql_partition_cutoff_must_be_a_date(edge_request: plugin_pb2.CodeGeneratorRequest) -> None:
    assert _error(edge_request, 0, retention_days="700001", backend="postgres") == (
        "acme/edge/v1/edge.proto:10:3: acme.edge.v1.Event: retention_days 700001 puts the partition cutoff "
        "before year 1, a date postgres partitions cannot be dropped by; allowed on postgres: 0 to 700000"
    )


def test_a_namespace_with_a_trailing_newline_is_refused(
    edge_request: plugin_pb2.CodeGeneratorRequest,
) -> None:
    error = _error(edge_request, 1, namespace="profiles\n")
    assert error.startswith(
        "acme/edge/v1/edge.proto:16:1: acme.edge.v1.Profile: namespace 'profiles\\n' is not"
    )


def test_a_derived_namespace_is_held_to_the_identifier_limit(
    edge_request: plugin_pb2.CodeGeneratorRequest,
) -> None:
    name = "P" * 60
    error = answer(_with(edge_request, 1, {}, rename=name)).error
    derived = "acme_edge_v1_" + "p" * 60
    assert error == (
        f"acme/edge/v1/edge.proto:16:1: acme.edge.v1.{name}: the namespace derived from the message's full "
        f"name, {derived!r}, is 73 bytes, more than the {MAX_IDENTIFIER_BYTES} a Postgres table name may "
        f"have; allowed: set (prism.namespace) to lowercase letters, digits and '_', at most 63 characters"
    )


def test_a_searchable_field_name_leaves_room_for_its_blind_index(
    edge_request: plugin_pb2.CodeGeneratorRequest,
) -> None:
    ok = answer(_with(edge_request, 1, {}, field_rename="e" * 57))
    assert not ok.error
    error = answer(_with(edge_request, 1, {}, field_rename="e" * 58)).error
    assert error == (
        f"acme/edge/v1/edge.proto:19:76: acme.edge.v1.Profile.{'e' * 58}: its blind index column "
        f"'{'e' * 58}__bidx' is 64 bytes, more than the 63 a Postgres column name may have; allowed: "
        f"searchable fields named in at most 57 bytes"
    )


def test_the_captured_request_generates(edge_request: plugin_pb2.CodeGeneratorRequest) -> None:
    response = answer(edge_request)
    assert not response.error
    assert not problems_with(response)
    assert not _invariants(response)


def test_plan_file_is_read_back(edge_request: plugin_pb2.CodeGeneratorRequest) -> None:
    files = {f.name: f.content for f in answer(edge_request).file}
    plans = {p["namespace"]: p["backend"] for p in json.loads(files["prism.plan.json"])["entities"]}
    assert plans == {"acme_edge_v1_event": "nats", "acme_edge_v1_profile": "postgres"}


# -- the limits are the backends' own: the largest accepted value works on the real server --------


def _provision_schema(ns: str, days: int) -> str:
    return (
        'syntax = "proto3";\npackage acme.edgeprov.v1;\nimport "prism/options.proto";\n'
        "message Tick {\n"
        '  option (prism.access_pattern) = "append_heavy";\n'
        '  option (prism.backend) = "nats";\n'
        f'  option (prism.namespace) = "{ns}";\n'
        f'  option (prism.retention_days) = "{days}";\n'
        "  string id = 1 [(prism.key) = true];\n  int64 at = 2 [(prism.event_time) = true];\n}\n"
    )


async def test_the_largest_nats_retention_is_a_stream_the_server_takes(tmp_path: Path, nats_url: str) -> None:
    ns = f"edge_{uuid.uuid4().hex[:10]}"
    proto = tmp_path / "proto"
    write_proto(proto, "acme/edgeprov/v1/edgeprov.proto", _provision_schema(ns, 106_751))
    config = tmp_path / "prism.yaml"
    config.write_text(f"backends:\n  nats: {nats_url}\n")
    done = await asyncio.to_thread(
        subprocess.run,
        [tool("prism"), "provision", str(proto), "--config", str(config), "--profile", "local"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        assert (await js.stream_info(ns)).config.max_age == 106_751 * 86_400
        # One day more is what the plugin refuses: the server cannot hold it either.
        with pytest.raises(nats.js.errors.APIError):
            await js.add_stream(name=f"{ns}_over", subjects=[f"prism.{ns}_over.>"], max_age=106_752 * 86_400)
        await js.delete_stream(ns)
    finally:
        await nc.close()


async def test_the_longest_names_are_kept_whole_by_postgres(
    edge_request: plugin_pb2.CodeGeneratorRequest, postgres_dsn: str
) -> None:
    stem = f"edge_{uuid.uuid4().hex[:10]}_"
    table = stem.ljust(MAX_IDENTIFIER_BYTES, "p")
    series = stem.ljust(MAX_IDENTIFIER_BYTES, "e")
    request = _with(edge_request, 1, {"namespace": table}, field_rename="m" * 57)
    request = _with(request, 0, {"namespace": series})
    response = answer(request)
    assert not response.error
    ddl = {f.name: f.content for f in response.file}["sql/postgres/acme/edge/v1/edge.sql"]
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(ddl)
        columns = await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0", f'"{table}"'
        )
        assert {r["attname"] for r in columns} >= {"id", "m" * 57, "m" * 57 + "__bidx"}
        # The limit is Postgres' own: one byte more and the name is cut, so two tables could collide.
        assert await conn.fetchval("SELECT $1::text::name::text", table + "x") == table
    finally:
        await conn.execute(f'DROP TABLE IF EXISTS "{table}", "{series}" CASCADE')
        await conn.close()


@pytest.mark.parametrize(
    ("message", "field", "expected"),
    [
        (
            0,
            "prism_seq",
            "acme/edge/v1/edge.proto:13:3: acme.edge.v1.Event.prism_seq: its column 'prism_seq' clashes with "
            "Prism's own column of a TimeSeries table; allowed: a name no other column of the table has",
        ),
        (
            0,
            "User_Id",
            "acme/edge/v1/edge.proto:13:3: acme.edge.v1.Event.User_Id: its column 'User_Id' clashes with the "
            "column of field 'user_id' ('user_id': SQLite compares column names ignoring case); allowed: a name "
            "no other column of the table has",
        ),
    ],
)
def test_a_column_name_is_never_used_twice(
    edge_request: plugin_pb2.CodeGeneratorRequest, message: int, field: str, expected: str
) -> None:
    assert answer(_with(edge_request, message, {}, field_rename=field)).error == expected


def test_a_field_cannot_take_a_blind_index_column_name(edge_request: plugin_pb2.CodeGeneratorRequest) -> None:
    request = _with(edge_request, 1, {})
    for file in _targets(request):
        file.message_type[1].field.add(
            name="email__bidx", number=3, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
        )
    assert answer(request).error == (
        "acme/edge/v1/edge.proto:16:1: acme.edge.v1.Profile.email__bidx: its column 'email__bidx' clashes with "
        "the blind index column of field 'email'; allowed: a name no other column of the table has"
    )


def test_sqlite_refuses_columns_that_differ_only_in_case(tmp_path: Path) -> None:
    # Why the check ignores case: the real SQLite the generated DDL runs on does.
    with (
        sqlite3.connect(tmp_path / "case.db") as db,
        pytest.raises(sqlite3.OperationalError, match="duplicate"),
    ):
        db.execute('CREATE TABLE t ("user_id" TEXT, "User_Id" TEXT)')


def test_two_namespaces_never_share_a_manifest_name(tmp_path: Path) -> None:
    def series(name: str, namespace: str) -> str:
        return (
            f'message {name} {{\n  option (prism.access_pattern) = "append_heavy";\n'
            f'  option (prism.namespace) = "{namespace}";\n'
            "  string id = 1 [(prism.key) = true];\n  int64 at = 2 [(prism.event_time) = true];\n}\n"
        )

    text = 'syntax = "proto3";\npackage acme.k8s.v1;\nimport "prism/options.proto";\n'
    name = write_proto(
        tmp_path / "src", "acme/k8s/v1/k8s.proto", text + series("A", "ticks") + series("B", "_ticks_")
    )
    response = answer(capture_request(tmp_path / "src", [name], tmp_path))
    assert response.error == (
        "acme/k8s/v1/k8s.proto:12:3: acme.k8s.v1.B: namespace '_ticks_' gives the NATS Stream manifest name "
        "'ticks', which namespace 'ticks' already has (Kubernetes names hold no '_' and start and end "
        "alphanumeric); allowed: namespaces that differ in more than leading, trailing or doubled '_'"
    )


KEYWORDS = (
    'syntax = "proto3";\npackage prismkw.v1;\nimport "prism/options.proto";\n'
    "message Account {\n"
    '  option (prism.access_pattern) = "key_value";\n'
    "  string id = 1 [(prism.key) = true];\n"
    '  string class = 2 [(prism.pii) = "generic", (prism.encrypt_at_rest) = true, (prism.searchable) = true];\n'
    "}\n"
    "message Town {\n"
    '  option (prism.access_pattern) = "graph_node";\n'
    "  string id = 1 [(prism.key) = true];\n"
    "  int32 class = 2;\n"
    "}\n"
    "message Road {\n"
    '  option (prism.access_pattern) = "graph_edge";\n'
    '  option (prism.edge_source_type) = "prismkw.v1.Town";\n'
    '  option (prism.edge_target_type) = "prismkw.v1.Town";\n'
    "  string from = 1 [(prism.edge_source) = true];\n"
    "  string to = 2 [(prism.edge_target) = true];\n"
    "  bool lambda = 3;\n"
    "}\n"
)


async def test_fields_named_by_python_keywords_work_on_sqlite(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "gen"
    write_proto(src, "prismkw/v1/kw.proto", KEYWORDS)
    run = run_protoc(src, ["prismkw/v1/kw.proto"], out, python=True)
    assert run.returncode == 0, run.stderr
    sys.path.insert(0, str(out))
    try:
        importlib.invalidate_caches()
        pb2 = importlib.import_module("prismkw.v1.kw_pb2")
        client = importlib.import_module("prismkw.v1.kw_prism")
        async with prism_runtime.connect(
            f"sqlite:///{tmp_path / 'kw.db'}", key_wrapper=LocalKeyWrapper(tmp_path / "master.key")
        ) as db:
            accounts = client.AccountStore(db)
            await accounts.put(pb2.Account(id="a1", **{"class": "gold"}))
            assert [a.id for a in await accounts.find_by_class(class_="gold")] == ["a1"]
            roads = client.RoadGraph(db)
            await roads.add_nodes([pb2.Town(id="t1", **{"class": 1}), pb2.Town(id="t2", **{"class": 2})])
            await roads.add_edge(pb2.Road(**{"from": "t1", "to": "t2", "lambda": True}))
            assert await roads.neighbors("t1", node_filter={"class": 2}, edge_filter={"lambda": True}) == [
                "t2"
            ]
    finally:
        sys.path.remove(str(out))


def test_a_message_named_by_a_python_keyword_is_refused(
    edge_request: plugin_pb2.CodeGeneratorRequest,
) -> None:
    assert answer(_with(edge_request, 1, {}, rename="None")).error == (
        "acme/edge/v1/edge.proto:16:1: acme.edge.v1.None: the generated client names this message as 'None', "
        "but 'None' is a Python keyword; allowed: a message name that is not one"
    )


def test_a_proto_path_python_cannot_import_is_refused(tmp_path: Path) -> None:
    name = write_proto(
        tmp_path / "src", "acme/class/v1/x.proto", KEYWORDS.replace("prismkw.v1", "acme.kw.v1")
    )
    assert answer(capture_request(tmp_path / "src", [name], tmp_path)).error == (
        "acme/class/v1/x.proto: acme.kw.v1: the generated client imports 'acme.class.v1.x_pb2', but 'class' "
        "is a Python keyword; allowed: directories and file names that are Python identifiers"
    )
