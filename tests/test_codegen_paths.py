"""The plugin's fast paths give what the general ones give: deferred locations, escaping, option reading.

The speed itself is bench/bench_plugin.py's (docs/performance.md); these check the behaviour the fast
paths must keep.
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import EXAMPLES
from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from hypothesis import given
from hypothesis import strategies as st
from plugin_requests import answer, capture_request

from prism_runtime.schema import Column, ColumnKind, built_at_once
from protoc_gen_prism import locations, templating
from protoc_gen_prism.diagnostics import Location
from protoc_gen_prism.emitters.python_client import _width, python_string
from protoc_gen_prism.locations import SourceIndex

EXAMPLE_FILES = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.proto"))


def _file_with_locations() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="a/b.proto")
    for path, span, leading in (
        ((4, 0), (2, 0, 6, 1), " The entity.\n"),
        ((4, 0, 2, 0), (3, 2, 20), ""),
        ((4, 0, 2, 0), (9, 9, 9), " a later piece of the same element\n"),
        ((4, 0, 2, 0, 1), (3, 9, 11), ""),
    ):
        location = file.source_code_info.location.add(path=path, span=span)
        location.leading_comments = leading
    return file


def test_deferred_locations_equal_order_and_print_as_plain_ones() -> None:
    index = SourceIndex(_file_with_locations())
    message = index.locate((4, 0))
    field = index.locate((4, 0, 2, 0))
    # An option not located itself falls back to its element, then to the nearest enclosing element.
    option = index.locate((4, 0, 2, 0, 8, 51250), (4, 0, 2, 0))
    nested = index.locate((4, 0, 3, 7))
    unknown = index.locate((4, 5))
    assert message == Location("a/b.proto", 3, 1)
    assert field == Location("a/b.proto", 4, 3)
    assert option == field
    assert nested == message
    assert unknown == Location("a/b.proto")
    assert (str(message), str(unknown)) == ("a/b.proto:3:1", "a/b.proto")
    assert repr(field) == "Location(file='a/b.proto', line=4, col=3)"
    assert hash(field) == hash(Location("a/b.proto", 4, 3))
    assert len({field, Location("a/b.proto", 4, 3), message}) == 2
    ordered = sorted([field, Location("a/b.proto", 4, 0), message, Location("a/a.proto", 99, 9), unknown])
    assert [(x.file, x.line, x.col) for x in ordered] == [
        ("a/a.proto", 99, 9),
        ("a/b.proto", 0, 0),
        ("a/b.proto", 3, 1),
        ("a/b.proto", 4, 0),
        ("a/b.proto", 4, 3),
    ]
    assert message != "a/b.proto:3:1"
    assert index.comment((4, 0)) == "The entity."
    assert index.comment((4, 0, 2, 0)) == "a later piece of the same element"
    assert index.comment((4, 1)) == ""


@pytest.fixture(scope="module")
def examples_request(tmp_path_factory: pytest.TempPathFactory) -> plugin_pb2.CodeGeneratorRequest:
    return capture_request(EXAMPLES, EXAMPLE_FILES, tmp_path_factory.mktemp("request"))


def test_a_compile_without_problems_indexes_no_position(
    examples_request: plugin_pb2.CodeGeneratorRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    index_spans = SourceIndex._span_index

    def counted(self: SourceIndex) -> dict[tuple[int, ...], tuple[int, int]]:
        built.append(self.file_name)
        return index_spans(self)

    monkeypatch.setattr(locations.SourceIndex, "_span_index", counted)
    response = answer(examples_request)
    assert not response.error and response.file
    assert built == []
    # A problem's location is found when the error is written: line and column, not just the file.
    broken = plugin_pb2.CodeGeneratorRequest()
    broken.CopyFrom(examples_request)
    target = next(f for f in broken.source_file_descriptors if f.name == "acme/users/v1/users.proto")
    target.message_type[0].field[0].options.Clear()  # the key's (prism.key) removed
    error = answer(broken).error
    assert built and "acme/users/v1/users.proto:" in error
    line = next(x for x in error.splitlines() if x.startswith("acme/users/v1/users.proto:"))
    assert line.split(":")[1].isdigit() and int(line.split(":")[1]) > 1


@given(st.text())
def test_python_string_is_the_text_as_a_literal(text: str) -> None:
    literal = python_string(text)
    assert ast.literal_eval(literal) == text
    assert literal[0] == ("'" if text.count('"') > text.count("'") else '"')
    assert all(ch.isprintable() for ch in literal)


@given(st.text())
def test_width_counts_wide_characters_twice(text: str) -> None:
    assert _width(text) == sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@dataclasses.dataclass(frozen=True)
class _Plain:
    name: str
    number: int
    comment: str = ""
    tags: tuple[str, ...] = ()


@built_at_once
@dataclasses.dataclass(frozen=True)
class _Quick:
    name: str
    number: int
    comment: str = ""
    tags: tuple[str, ...] = ()


def test_a_dataclass_built_at_once_is_the_dataclass_it_was() -> None:
    # The IR's frozen dataclasses get a quicker __init__; everything else must stay the dataclass's.
    quick, plain = _Quick("a", 1, tags=("x",)), _Plain("a", 1, tags=("x",))
    assert vars(quick) == vars(plain) == {"name": "a", "number": 1, "comment": "", "tags": ("x",)}
    assert sys.getsizeof(vars(quick)) == sys.getsizeof(
        vars(plain)
    )  # its dict shares the keys, as the plain's
    assert quick == _Quick(name="a", number=1, comment="", tags=("x",)) and hash(quick) == hash(
        _Quick("a", 1, "", ("x",))
    )
    assert repr(quick) == repr(plain).replace("_Plain", "_Quick")
    assert dataclasses.replace(quick, number=2) == _Quick("a", 2, tags=("x",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.name = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Quick("a")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick("a", 1, bogus=2)  # type: ignore[call-arg]

    @dataclasses.dataclass(frozen=True)
    class Factory:
        items: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class PostInit:
        n: int

        def __post_init__(self) -> None:
            pass

    # The runtime's Column is one of them.
    assert vars(Column("a", 1, ColumnKind.STRING, pii="email")) == {
        f.name: getattr(Column("a", 1, ColumnKind.STRING, pii="email"), f.name)
        for f in dataclasses.fields(Column)
    }
    assert Column("a", 1, ColumnKind.STRING).pii == "" and Column.__init__.__qualname__ == "Column.__init__"
    for unsupported in (Factory, PostInit):
        with pytest.raises(TypeError):
            built_at_once(unsupported)


# What the plugin process may load on the default path (no sql_dialect beyond postgres and sqlite): the
# runtime's data contract and SQL names, not its stores, drivers or telemetry.
RUNTIME_MODULES_A_COMPILE_READS = {
    "prism_runtime",
    "prism_runtime.backends",
    "prism_runtime.backends.registry",
    "prism_runtime.errors",
    "prism_runtime.schema",
    "prism_runtime.sql",
    "prism_runtime.sql.dialect",
    "prism_runtime.sql.dialects",
    "prism_runtime.sql.names",
    "prism_runtime.stream_plans",
}


@pytest.mark.parametrize("parameter", ["", "sql_dialect=postgres,sql_dialect=sqlite,profile=local"])
def test_a_default_compile_loads_no_sqlglot_jinja2_yaml_telemetry_or_runtime_stores(
    examples_request: plugin_pb2.CodeGeneratorRequest, parameter: str
) -> None:
    request = plugin_pb2.CodeGeneratorRequest()
    request.CopyFrom(examples_request)
    request.parameter = parameter
    # The executable's own entry point in a fresh interpreter, which then lists what it loaded.
    script = (
        "import sys\nfrom protoc_gen_prism.plugin import main\nmain([])\n"
        "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=request.SerializeToString(), capture_output=True, check=True
    )
    response = plugin_pb2.CodeGeneratorResponse.FromString(done.stdout)
    assert not response.error and any(f.name.startswith("sql/sqlite/") for f in response.file)
    loaded = set(done.stderr.decode().split())
    # jinja2 only renders a template whose shipped plain-Python compilation is stale (templating.py).
    assert not {m for m in loaded if m.split(".")[0] in ("sqlglot", "opentelemetry", "jinja2")}
    assert {m for m in loaded if m.split(".")[0] == "prism_runtime"} <= RUNTIME_MODULES_A_COMPILE_READS
    # Only where something goes wrong (or a manifest holds what dump_yaml leaves to PyYAML).
    assert not loaded & {"traceback", "difflib", "yaml"}


def test_compiled_templates_are_current() -> None:
    # The shipped compilation of each template is of its current text (scripts/gen_templates.py).
    done = subprocess.run(
        [sys.executable, "scripts/gen_templates.py", "--check"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_compiled_template_renders_as_the_template_compiled_from_source(
    examples_request: plugin_pb2.CodeGeneratorRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert templating.renderer("client.py.jinja").__module__ == "protoc_gen_prism.client_template"
    shipped = {f.name: f.content for f in answer(examples_request).file}
    templating.renderer.cache_clear()
    monkeypatch.setattr(templating, "COMPILED", {})
    try:
        from_source = {f.name: f.content for f in answer(examples_request).file}
        assert templating.renderer("client.py.jinja").__module__ == "jinja2.environment"
    finally:
        templating.renderer.cache_clear()
    assert shipped == from_source
