"""Emit `<file>_prism.py`: typed async stores for every entity of a .proto file."""

from __future__ import annotations

import dataclasses
import functools
import keyword
import operator
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from prism_runtime.schema import DEFAULT_FIND_LIMIT, Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql.dialects import SqliteDialect
from protoc_gen_prism import __version__
from protoc_gen_prism.betterproto_messages import betterproto_class_name
from protoc_gen_prism.emitters import GeneratedFile
from protoc_gen_prism.model import Entity, Field, ProtoFile, Schema
from protoc_gen_prism.naming import SYNC, class_name, python_module, spec_constant
from protoc_gen_prism.planner import Plans
from protoc_gen_prism.settings import MessageStyle, Settings
from protoc_gen_prism.sql.ddl import ddl_statements
from protoc_gen_prism.templating import render
from protoc_gen_prism.vocabulary import AccessPattern


@dataclass(frozen=True)
class _Store:
    """What the template needs to write one store class."""

    entity: Entity
    class_name: str
    sync_class_name: str
    base: str
    type_args: str
    spec_name: str
    docstring: str
    finders: list[Field]  # encrypted, searchable fields: found through their blind index
    message: str
    """The message class callers give and get: the *_pb2 class, or the betterproto dataclass."""
    init_args: str
    """What the generated __init__ passes to the base class after the spec."""
    index_finders: list[_IndexFinder] = dataclasses.field(default_factory=list)
    ttl_seconds: int = 0  # a KeyValue entity with a TTL: its put and put_many take `ttl`
    # Then the `def` lines of put and put_many, by client ("async", "sync").
    put_signatures: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)

    @property
    def header(self) -> str:
        """Return the `class ...:` line."""
        return _class_header(self.class_name, self.base, self.type_args)

    @property
    def init_call(self) -> str:
        """Return the __init__'s call of the base class's."""
        return _init_call(self.init_args)

    @property
    def sync_header(self) -> str:
        """Return the `class ...:` line of the blocking twin."""
        return _class_header(self.sync_class_name, _sync_base(self.base), self.type_args)

    @property
    def has_extras(self) -> bool:
        """Return whether the store has methods of its own beyond the base class's: a TTL's put and
        put_many, finders of indexed fields (the template writes them only then)."""
        return bool(self.ttl_seconds or self.index_finders)


@dataclass(frozen=True)
class _IndexFinder:
    """One `find_by_<field>` of an indexed field, its signature laid out as ruff formats it, by client."""

    field: Field
    signatures: Mapping[str, str]


@dataclass(frozen=True)
class _GraphClass:
    """What the template needs to write one graph class, its spec and its filter type."""

    entity: Entity
    class_name: str
    sync_class_name: str
    base: str
    type_args: str
    init_args: str
    spec_name: str
    filter_name: str
    filter_fields: list[tuple[str, str, str]]  # name, Python type, the field's comment
    docstring: str

    @property
    def functional_filter(self) -> bool:
        """Whether a filter field is named by a Python keyword, which no class attribute can be."""
        return any(keyword.iskeyword(name) for name, _, _ in self.filter_fields)

    @property
    def header(self) -> str:
        """Return the `class ...:` line."""
        return _class_header(self.class_name, self.base, self.type_args)

    @property
    def init_call(self) -> str:
        """Return the __init__'s call of the base class's."""
        return _init_call(self.init_args)

    @property
    def sync_header(self) -> str:
        """Return the `class ...:` line of the blocking twin."""
        return _class_header(self.sync_class_name, _sync_base(self.base), self.type_args)


def _init_call(arguments: str) -> str:
    """Return the generated `super().__init__(db, ...)` call at 8 spaces, split as ruff's formatter splits it."""
    line = f"        super().__init__(db, {arguments})"
    if len(line) <= LINE_LENGTH:
        return line
    inner = f"            db, {arguments}"
    if len(inner) <= LINE_LENGTH:
        return f"        super().__init__(\n{inner}\n        )"
    each = "".join(f"            {a},\n" for a in ["db", *arguments.split(", ")])
    return f"        super().__init__(\n{each}        )"


def _sync_base(base: str) -> str:
    """Return the blocking twin of a base class: prism_runtime.KeyValueStore -> prism_runtime.SyncKeyValueStore."""
    module, _, name = base.rpartition(".")
    return f"{module}.{SYNC}{name}"


def _class_header(name: str, base: str, type_args: str) -> str:
    """Return a generated `class ...:` line, split as ruff's formatter splits it when too long."""
    line = f"class {name}({base}[{type_args}]):"
    if len(line) <= LINE_LENGTH:
        return line
    return f"class {name}(\n    {base}[{type_args}]\n):"


# Python types of the fields an equality filter accepts; JSON and Timestamp columns are not comparable.
_FILTER_TYPES = {
    ColumnKind.INT32: "int",
    ColumnKind.INT64: "int",
    ColumnKind.UINT64: "int",
    ColumnKind.FLOAT: "float",
    ColumnKind.DOUBLE: "float",
    ColumnKind.BOOL: "bool",
    ColumnKind.STRING: "str",
    ColumnKind.BYTES: "bytes",
    ColumnKind.ENUM: "int",
}


def emit(schema: Schema, plans: Plans, settings: Settings) -> list[GeneratedFile]:
    """Return one client module per file that has entities."""
    # Each spec carries its planned backend kind, so connect(config=...) can bind it without the compiler.
    planned = {p.namespace: str(p.backend) for p in plans}
    betterproto = settings.messages is MessageStyle.BETTERPROTO
    return [_module(f, planned, betterproto) for f in schema.files if f.entities]


def _module(file: ProtoFile, planned: dict[str, str], betterproto: bool) -> GeneratedFile:
    package, _, module = file.python_module.rpartition(".")
    pb2_import = f"from {package} import {module}" if package else f"import {module}"
    names = (
        {e.python_name: betterproto_class_name(e.python_name) for e in file.entities} if betterproto else {}
    )
    style = _Style(module, BETTERPROTO_MODULE if betterproto else "", names)
    stores = [
        _series(e, style) if e.abstraction is Abstraction.TIME_SERIES else _store(e, file, style)
        for e in file.entities
        if e.abstraction in (Abstraction.KEY_VALUE, Abstraction.TIME_SERIES)
    ]
    # Nodes first: an edge class names its node's spec and filter when it is created.
    nodes = [e for e in file.entities if e.options.access_pattern is AccessPattern.GRAPH_NODE]
    edges = [e for e in file.entities if e.options.access_pattern is AccessPattern.GRAPH_EDGE]
    graph = [_node(e, file, style) for e in nodes] + [_edge(e, file, style) for e in edges]
    content = render(
        "client.py.jinja",
        version=__version__,
        source=file.name,
        pb2_import=pb2_import,
        enum_imports=[f"import {m}" for m in _imported_enum_modules(file, betterproto)],
        pb2_module=module,
        betterproto=betterproto,
        betterproto_import=f"import {file.package} as {BETTERPROTO_MODULE}",
        betterproto_module=BETTERPROTO_MODULE,
        betterproto_names=names,
        stores=stores,
        expiring=any(s.ttl_seconds for s in stores),
        graph_classes=graph,
        graph_exports=sorted(
            name for g in graph for name in (g.filter_name, g.class_name, g.sync_class_name)
        ),
        masked=[e.python_name for e in file.entities if _may_hold_masked(e)],
        spec_literal=lambda name, entity: spec_literal(
            name, entity.spec, _generated_arguments(entity, planned.get(entity.namespace, ""))
        ),
        docstring_safe=_docstring_safe,
    )
    return GeneratedFile(f"{file.output_stem}_prism.py", content)


LINE_LENGTH = 110
"""The line length generated clients are formatted to (ruff format --line-length 110)."""


def spec_literal(spec_name: str, spec: EntitySpec, overrides: Mapping[str, object] | None = None) -> str:
    """Return `NAME = EntitySpec(...)`, written from the dataclass's own fields, leaving defaults out.

    `overrides` gives some arguments other values than `spec` has (the generated module's own). One-line
    values come first, in the order the dataclass declares them, then the multi-line ones (the columns and
    the DDL), so that the literal reads top-down like the table it describes.
    """
    short: list[str] = []
    long: list[str] = []
    changed = overrides or {}
    for name, default in _spec_arguments():
        value = changed[name] if name in changed else getattr(spec, name)
        if value == default:
            continue
        if isinstance(value, tuple):
            long.append(
                f"    {name}=(\n" + "".join([f"        {column_call(c)},\n" for c in value]) + "    ),"
            )
        elif not isinstance(value, str | int) and isinstance(value, Mapping):  # str first: Mapping is an ABC
            long.append(_ddl_argument(name, value))
        else:
            short.append(f"    {name}={_python_value(value)},")
    return "\n".join([f"{spec_name} = EntitySpec(", *short, *long, ")"])


@functools.cache
def _spec_arguments() -> tuple[tuple[str, object], ...]:
    """Return (name, default) of each EntitySpec argument in declaration order; MISSING for required ones."""
    out: list[tuple[str, object]] = []
    for f in dataclasses.fields(EntitySpec):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default: object = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING  # a required field: always written
        out.append((f.name, default))
    return tuple(out)


def _python_value(value: object) -> str:
    if isinstance(value, Enum):
        return _enum_literal(value)
    if isinstance(value, str):
        return python_string(value)
    return repr(value)  # bool, int


@functools.cache
def _enum_literal(value: Enum) -> str:
    return f"{type(value).__name__}.{value.name}"


def _ddl_argument(name: str, ddl: Mapping[str, tuple[str, ...]]) -> str:
    """Return the `ddl=` argument of a spec, at 4 spaces: statements by dialect, which the runtime runs.

    Each statement is split after commas into pieces of at most ~90 characters, so the module stays readable.
    """
    lines = [f"    {name}={{"]
    for dialect, statements in ddl.items():
        lines.append(f'        "{dialect}": (')
        for statement in statements:
            *pieces, last = statement.split(", ")  # each piece keeps its ", " (str.split beats re.split)
            chunks: list[str] = [""]
            for piece in (*(p + ", " for p in pieces), last):
                if chunks[-1] and len(chunks[-1]) + len(piece) > 90:
                    chunks.append("")
                chunks[-1] += piece
            lines += [f"            {python_string(chunk)}" for chunk in chunks[:-1]]
            lines.append(f"            {python_string(chunks[-1])},")
        lines.append("        ),")
    lines.append("    },")
    return "\n".join(lines)


def _generated_arguments(entity: Entity, planned: str) -> dict[str, object]:
    """Return what the generated module's spec has that the model's has not: the planned backend and the
    SQLite DDL (which does not depend on the backend, so it is rendered from the model's spec)."""
    return {"planned_backend": planned, "ddl": {"sqlite": tuple(ddl_statements(entity.spec, _SQLITE))}}


_SQLITE = SqliteDialect()


def column_call(c: Column) -> str:
    """Return the `Column(...)` of a spec, at 8 spaces: on one line, or one argument a line when too long.

    The long form ends with a trailing comma, which keeps ruff's formatter from joining it again.
    """
    args = [f'"{c.name}"', str(c.number), _KIND_ARGUMENTS[c.kind], *_flag_arguments(_COLUMN_VALUES(c))]
    if c.plaintext_reason:
        args.append(f"plaintext_reason={python_string(c.plaintext_reason)}")
    one_line = f"Column({', '.join(args)})"
    if _width(one_line) + 9 <= LINE_LENGTH:  # 8 spaces before, a comma after
        return one_line
    return "Column(\n" + "".join(f"            {a},\n" for a in args) + "        )"


@functools.cache
def _flag_arguments(values: tuple[object, ...]) -> tuple[str, ...]:
    """Return the Column arguments for the values of _COLUMN_ORDER; a schema has few distinct sets."""
    return tuple(
        f"{name}=True" if value is True else f'{name}="{value}"'  # a pii kind or an identifier: no escaping
        for name, value in zip(_COLUMN_ORDER, values, strict=True)
        if value
    )


# The Column arguments after the first three, in the order the generated specs have always listed them.
_COLUMN_ORDER = (
    "nullable",
    "indexed",
    "pii",
    "repeated",
    "wrapped",
    "oneof",
    "encrypted",
    "masked",
    "audited",
    "searchable",
    "blind_index_of",
    "expiry",
)
_COLUMN_VALUES = operator.attrgetter(*_COLUMN_ORDER)
_KIND_ARGUMENTS = {kind: f"ColumnKind.{kind.name}" for kind in ColumnKind}


def _width(text: str) -> int:
    """Return the columns `text` takes in an editor (East Asian wide characters take two)."""
    if text.isascii():
        return len(text)  # no ASCII character is wide; the usual case, at a fraction of the cost
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def python_string(text: str) -> str:
    """Return free text from a schema (such as a plaintext_reason) as a Python string literal.

    Backslashes, the quote and unprintable characters are escaped, whatever the author wrote; the quote is
    the one ruff's formatter would choose (double, unless the text holds more double quotes than single).
    """
    quote = "'" if text.count('"') > text.count("'") else '"'
    if text.isascii() and text.isprintable():
        # The usual case (every DDL chunk): only the backslash and the quote need escaping.
        return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote
    body = "".join(
        "\\" + ch if ch in ("\\", quote) else ch if ch.isprintable() else repr(ch)[1:-1] for ch in text
    )
    return quote + body + quote


BETTERPROTO_MODULE = "messages"
"""The name a betterproto-style client imports its proto package's dataclass module as."""


@dataclass(frozen=True)
class _Style:
    """Which message classes a module's stores take: the *_pb2 module's, or betterproto's dataclasses."""

    pb2: str
    betterproto: str  # the dataclass module's name in the client, "" for the protobuf style
    names: Mapping[str, str]  # entity python_name -> dataclass name

    @property
    def runtime(self) -> str:
        """Return the module the store base classes come from."""
        return "prism_runtime.betterproto" if self.betterproto else "prism_runtime"

    def message(self, entity: Entity) -> str:
        """Return the class callers give and get for `entity`."""
        if self.betterproto:
            return f"{self.betterproto}.{self.names[entity.python_name]}"
        return f"{self.pb2}.{entity.python_name}"

    def init_args(self, entity: Entity) -> str:
        """Return the base class's arguments after the spec: the message class (and the stored one)."""
        stored = f"{self.pb2}.{entity.python_name}"
        return f"{self.message(entity)}, {stored}" if self.betterproto else stored


def _store(entity: Entity, file: ProtoFile, style: _Style) -> _Store:
    message = style.message(entity)
    key, sort_key = entity.key, entity.sort_key
    assert key is not None  # the model builder guarantees a key on every KeyValue entity
    after_pair = (
        "" if sort_key is None else f"tuple[{key.python_key_type}, {sort_key.python_key_type}] | None"
    )
    if sort_key is None:
        base, type_args = f"{style.runtime}.KeyValueStore", f"{message}, {key.python_key_type}"
    else:
        base = f"{style.runtime}.SortedKeyValueStore"
        type_args = f"{message}, {key.python_key_type}, {sort_key.python_key_type}"
    summary = _docstring_safe(entity.comment) or f"KeyValue store of {entity.full_name}."
    spec_name = _spec_name(entity)
    layout = f"keyed by {key.name}" + (f", sorted by {sort_key.name} within a key" if sort_key else "")
    return _Store(
        entity=entity,
        class_name=_class_name(entity, "Store"),
        sync_class_name=_class_name(entity, SYNC + "Store"),
        base=base,
        type_args=type_args,
        spec_name=spec_name,
        docstring=f"{summary.rstrip('.')}.\n\n    Namespace ``{entity.namespace}``, {layout}.",
        finders=[f for f in entity.fields if f.options.searchable],
        index_finders=[
            _index_finder(
                f, message, f"{key.python_key_type} | None" if sort_key is None else after_pair, file, style
            )
            for f in entity.fields
            if f.options.index and not f.options.encrypt_at_rest
        ],
        ttl_seconds=entity.options.ttl_seconds,
        put_signatures={
            client: (
                def_lines(f"{prefix}def put", ["self", f"item: {message}", "*", _TTL], "None"),
                def_lines(
                    f"{prefix}def put_many", ["self", f"items: Iterable[{message}]", "*", _TTL], "None"
                ),
            )
            for client, prefix in _STYLES.items()
        }
        if entity.options.ttl_seconds
        else {},  # only a store with a TTL has its own put and put_many
        message=message,
        init_args=f"{spec_name}, {style.init_args(entity)}",
    )


_TTL = "ttl: timedelta | None = None"
# The two clients of a store (async, blocking), and how their methods are declared.
_STYLES = {"async": "async ", "sync": ""}


def _index_finder(f: Field, message: str, after: str, file: ProtoFile, style: _Style) -> _IndexFinder:
    """Return the finder of an indexed field: typed by the field (an enum by its ValueType), keyset-paged."""
    parameters = [
        "self",
        f"value: {_filter_type(f, file, style)}",
        "*",
        f"limit: int = {DEFAULT_FIND_LIMIT}",
        f"after: {after} = None",
    ]
    return _IndexFinder(
        f,
        {
            client: def_lines(f"{prefix}def find_by_{f.name}", parameters, f"list[{message}]")
            for client, prefix in _STYLES.items()
        },
    )


def def_lines(head: str, parameters: list[str], returns: str, indent: int = 4) -> str:
    """Return a `def` line at `indent` as ruff formats it: on one line, with the parameters on one line of their
    own, or one parameter a line (with a trailing comma) when even that is too long."""
    pad = " " * indent
    joined = ", ".join(parameters)
    one = f"{pad}{head}({joined}) -> {returns}:"
    if _width(one) <= LINE_LENGTH:
        return one
    inner = f"{pad}    {joined}"
    if _width(inner) <= LINE_LENGTH:
        return f"{pad}{head}(\n{inner}\n{pad}) -> {returns}:"
    body = "".join(f"{pad}    {p},\n" for p in parameters)
    return f"{pad}{head}(\n{body}{pad}) -> {returns}:"


def _series(entity: Entity, style: _Style) -> _Store:
    key, event_time = entity.key, entity.event_time
    assert key is not None and event_time is not None  # the model builder guarantees both on TimeSeries
    summary = _docstring_safe(entity.comment) or f"TimeSeries of {entity.full_name}."
    spec_name = _spec_name(entity)
    return _Store(
        entity=entity,
        class_name=_class_name(entity, "Series"),
        sync_class_name=_class_name(entity, SYNC + "Series"),
        base=f"{style.runtime}.TimeSeries",
        type_args=f"{style.message(entity)}, {key.python_key_type}",
        spec_name=spec_name,
        docstring=(
            f"{summary.rstrip('.')}.\n\n    Namespace ``{entity.namespace}``, a series per {key.name}, "
            f"ordered by {event_time.name}."
        ),
        finders=[],
        message=style.message(entity),
        init_args=f"{spec_name}, {style.init_args(entity)}",
    )


def _node(entity: Entity, file: ProtoFile, style: _Style) -> _GraphClass:
    key = entity.key
    assert key is not None  # the model builder guarantees a key on every graph_node
    summary = _docstring_safe(entity.comment) or f"Nodes of {entity.full_name}."
    return _GraphClass(
        entity=entity,
        class_name=_class_name(entity, "Nodes"),
        sync_class_name=_class_name(entity, SYNC + "Nodes"),
        base=f"{style.runtime}.NodeStore",
        type_args=f"{style.message(entity)}, {key.python_key_type}",
        init_args=f"{_spec_name(entity)}, {style.init_args(entity)}",
        spec_name=_spec_name(entity),
        filter_name=_class_name(entity, "Filter"),
        filter_fields=_filter_fields(entity, file, style),
        docstring=f"{summary.rstrip('.')}.\n\n    Graph nodes in namespace ``{entity.namespace}``, keyed by {key.name}.",
    )


def _edge(entity: Entity, file: ProtoFile, style: _Style) -> _GraphClass:
    source, target = entity.edge_source, entity.edge_target
    source_node = file.entity(entity.options.edge_source_type)
    target_node = file.entity(entity.options.edge_target_type)
    # The model builder guarantees both ends and their node types on every graph_edge.
    assert source is not None and target is not None and source_node is not None and target_node is not None
    message = style.message(entity)
    filter_name = _class_name(entity, "Filter")
    summary = _docstring_safe(entity.comment) or f"Edges of {entity.full_name}."
    way = "both ways (bidirectional)" if entity.spec.bidirectional else f"from {source.name} to {target.name}"
    layout = (
        f"Graph edges in namespace ``{entity.namespace}``, {source_node.name} to {target_node.name}, {way}."
    )
    if source_node is target_node:
        base = f"{style.runtime}.Graph"
        type_args = (
            f"{message}, {style.message(source_node)}, {source.python_key_type}, {filter_name}, "
            f"{_class_name(source_node, 'Filter')}"
        )
        init_args = (
            f"{_spec_name(entity)}, {style.init_args(entity)}, {_spec_name(source_node)}, "
            f"{style.init_args(source_node)}"
        )
    else:
        base = f"{style.runtime}.EdgeStore"
        type_args = f"{message}, {source.python_key_type}, {target.python_key_type}, {filter_name}"
        init_args = f"{_spec_name(entity)}, {style.init_args(entity)}"
    return _GraphClass(
        entity=entity,
        class_name=_class_name(entity, "Graph" if base.endswith(".Graph") else "Edges"),
        sync_class_name=_class_name(entity, SYNC + ("Graph" if base.endswith(".Graph") else "Edges")),
        base=base,
        type_args=type_args,
        init_args=init_args,
        spec_name=_spec_name(entity),
        filter_name=filter_name,
        filter_fields=_filter_fields(entity, file, style),
        docstring=f"{summary.rstrip('.')}.\n\n    {layout}",
    )


def _may_hold_masked(entity: Entity) -> bool:
    """Whether str()/repr() of the entity's messages may need masks: a masked field, or a message field whose
    type (perhaps in another file) may have some. The generated module's one `redact_reprs` call then walks
    the descriptors, nested types included."""
    return any(
        f.options.mask_in_logs
        or (f.proto_type == "message" and not f.type_name.startswith("google.protobuf."))
        for f in entity.fields
    )


def _filter_fields(entity: Entity, file: ProtoFile, style: _Style) -> list[tuple[str, str, str]]:
    # Arrays are no single value, and encrypted values differ from what a caller holds: no equality on them.
    return [
        (f.name, _filter_type(f, file, style), _docstring_safe(f.comment))
        for f in entity.fields
        if f.column_kind in _FILTER_TYPES and not f.column_repeated and not f.options.encrypt_at_rest
    ]


def _filter_type(f: Field, file: ProtoFile, style: _Style) -> str:
    """Return the Python type a filter takes for a field: an enum's own ValueType, else by column kind.

    betterproto enums are ints, which is what a filter of the betterproto style takes for them.
    """
    if f.column_kind is ColumnKind.ENUM and f.type_python_name and not style.betterproto:
        module = style.pb2 if f.type_file == file.name else python_module(f.type_file)
        return f"{module}.{f.type_python_name}.ValueType"
    return _FILTER_TYPES[f.column_kind]


def _imported_enum_modules(file: ProtoFile, betterproto: bool) -> list[str]:
    """Return the *_pb2 modules of other files whose enums type a graph filter field or a KeyValue finder."""
    if betterproto:
        return []  # its filters and finders take ints for enums
    graph = (AccessPattern.GRAPH_NODE, AccessPattern.GRAPH_EDGE)
    return sorted(
        {
            python_module(f.type_file)
            for e in file.entities
            for f in e.fields
            if (
                e.options.access_pattern in graph
                or (e.abstraction is Abstraction.KEY_VALUE and f.options.index)
            )
            and f.column_kind is ColumnKind.ENUM
            and f.type_file
            and f.type_file != file.name
        }
    )


def _class_name(entity: Entity, suffix: str) -> str:
    return class_name(entity.python_name, suffix)


def _spec_name(entity: Entity) -> str:
    return spec_constant(entity.python_name)


def _docstring_safe(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    # Control characters (a NUL makes the module unparseable) are written as escapes.
    return text.translate(_CONTROL_ESCAPES)


_CONTROL_ESCAPES = {n: f"\\x{n:02x}" for n in (*range(32), 127) if chr(n) not in "\n\t"}
