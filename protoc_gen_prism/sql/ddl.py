"""CREATE TABLE / CREATE INDEX for an entity, built as sqlglot expressions and rendered per dialect."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable

from sqlglot import exp

from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql.names import (
    EVENT_ID_COLUMN,
    SEQUENCE_COLUMN,
    default_partition_name,
    index_name,
    table_name,
)
from protoc_gen_prism.sql.dialects import DdlDialect
from protoc_gen_prism.sql.render_cache import (
    CACHE,
    PLAIN_NAME,
    Frame,
    Line,
    fill,
    frame_length,
    sentinel,
    split_frame,
)


def create_table(spec: EntitySpec, dialect: DdlDialect) -> exp.Create:
    """Return the idempotent CREATE TABLE of an entity."""
    key_names = [c.name for c in spec.key_columns]
    columns: list[exp.Expression] = [_column(c, dialect, primary=c.name in key_names) for c in spec.columns]
    columns.append(exp.PrimaryKey(expressions=[exp.to_identifier(n, quoted=True) for n in key_names]))
    columns.extend(_oneof_checks(spec))
    schema = exp.Schema(
        this=exp.Table(this=exp.to_identifier(table_name(spec), quoted=True)), expressions=columns
    )
    return exp.Create(this=schema, kind="TABLE", exists=True)


# A statement besides the CREATE TABLE, as (builder, params, names): `builder(names, *params)` is its
# expression. Names are what entities differ by; `ddl_statements` splices them into a cached rendering.
_Statement = tuple[Callable[..., exp.Expression], tuple[object, ...], tuple[str, ...]]


def _build(statement: _Statement) -> exp.Expression:
    builder, params, names = statement
    return builder(names, *params)


def _index_statements(spec: EntitySpec, dialect: DdlDialect) -> list[_Statement]:
    table = table_name(spec)
    out: list[_Statement] = [
        (_index, (False,), (table, index_name(table, column.name, dialect), *index_columns(spec, column)))
        for column in spec.columns
        if column.indexed
    ]
    if spec.edge_source is not None and spec.edge_target is not None:
        # The primary key (source, target) serves outgoing hops; this serves incoming ones.
        reverse = index_name(table, f"{spec.edge_target}__{spec.edge_source}", dialect)
        out.append((_index, (False,), (table, reverse, spec.edge_target, spec.edge_source)))
    return out


def index_columns(spec: EntitySpec, column: Column) -> tuple[str, ...]:
    """Return the columns of the index of an indexed column: on a KeyValue field, the field then the key.

    A finder reads `field = value` in key order from a key: with the key in the index, each page is a range
    of the index, however many items have the value (docs/keyvalue.md). The blind index (an unpaged lookup)
    and the expiry column (read by the purge) are indexed alone.
    """
    if spec.abstraction is not Abstraction.KEY_VALUE or column.blind_index_of or column.expiry:
        return (column.name,)
    return (column.name, *(c.name for c in spec.key_columns if c.name != column.name))


def _create_index(table: str, name: str, columns: list[str]) -> exp.Create:
    return _index((table, name, *columns), False)


def _index(names: tuple[str, ...], unique: bool) -> exp.Create:
    table, name, *columns = names
    index = exp.Index(
        this=exp.to_identifier(name, quoted=True),
        table=exp.Table(this=exp.to_identifier(table, quoted=True)),
        params=exp.IndexParameters(columns=[exp.column(c, quoted=True) for c in columns]),
    )
    return exp.Create(this=index, kind="INDEX", exists=True, unique=unique)


def _comment_statements(spec: EntitySpec, dialect: DdlDialect) -> list[_Statement]:
    if not dialect.supports_column_comments:
        return []
    table = table_name(spec)
    return [(_comment, (c.pii,), (table, c.name)) for c in spec.columns if c.pii]


def _comment(names: tuple[str, ...], pii: str) -> exp.Comment:
    table, column = names
    return exp.Comment(
        this=exp.column(column, table=table, quoted=True),
        kind="COLUMN",
        expression=exp.Literal.string(f"pii: {pii}"),
    )


def ddl_expressions(spec: EntitySpec, dialect: DdlDialect) -> list[exp.Expression]:
    """Return every DDL statement of an entity: table, indexes, column comments."""
    if spec.abstraction is Abstraction.TIME_SERIES:
        table: exp.Expression = create_series_table(spec, dialect)
    else:
        table = create_table(spec, dialect)
    return [table, *(_build(s) for s in _statements_after_table(spec, dialect))]


def _statements_after_table(spec: EntitySpec, dialect: DdlDialect) -> list[_Statement]:
    # For a series: its DEFAULT partition (where partitioned) and identity index; then indexes, comments.
    out: list[_Statement] = []
    if spec.abstraction is Abstraction.TIME_SERIES:
        if dialect.partitions_series:
            out.append(_default_partition_statement(spec, dialect))
        out.append(_series_identity_statement(spec, dialect))
    return [*out, *_index_statements(spec, dialect), *_comment_statements(spec, dialect)]


def create_series_table(spec: EntitySpec, dialect: DdlDialect) -> exp.Create:
    """Return the idempotent CREATE TABLE of a TimeSeries entity: its columns, event id and sequence.

    Where the dialect partitions series, the table is range-partitioned by event time, and its primary key
    carries the event time too (Postgres requires the partition key in every unique constraint).
    """
    assert spec.event_time is not None
    partitioned = dialect.partitions_series
    # Every event has a time, so the event-time column is NOT NULL (and has no default) whatever its presence.
    columns: list[exp.Expression] = [
        _column(c, dialect, primary=c.name == spec.event_time) for c in spec.columns
    ]
    columns.append(
        exp.ColumnDef(
            this=exp.to_identifier(EVENT_ID_COLUMN, quoted=True),
            kind=exp.DataType.build("TEXT", dialect=dialect.name),
            constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())],
        )
    )
    columns.append(dialect.sequence_column(SEQUENCE_COLUMN, primary=not partitioned))
    if partitioned:
        columns.append(
            exp.PrimaryKey(
                expressions=[exp.to_identifier(n, quoted=True) for n in (SEQUENCE_COLUMN, spec.event_time)]
            )
        )
    columns.extend(_oneof_checks(spec))
    schema = exp.Schema(
        this=exp.Table(this=exp.to_identifier(table_name(spec), quoted=True)), expressions=columns
    )
    properties = None
    if partitioned:
        by_range = exp.Anonymous(this="RANGE", expressions=[exp.column(spec.event_time, quoted=True)])
        properties = exp.Properties(expressions=[exp.PartitionedByProperty(this=by_range)])
    return exp.Create(this=schema, kind="TABLE", exists=True, properties=properties)


def _default_partition_statement(spec: EntitySpec, dialect: DdlDialect) -> _Statement:
    return (_default_partition, (), (table_name(spec), default_partition_name(spec, dialect)))


def _default_partition(names: tuple[str, ...]) -> exp.Create:
    table, name = names
    return _partition_of_table(table, name, exp.var("DEFAULT"))


def _partition_of_table(table: str, name: str, bounds: exp.Expression) -> exp.Create:
    parent = exp.Table(this=exp.to_identifier(table, quoted=True))
    return exp.Create(
        this=exp.Table(this=exp.to_identifier(name, quoted=True)),
        kind="TABLE",
        exists=True,
        properties=exp.Properties(expressions=[exp.PartitionedOfProperty(this=parent, expression=bounds)]),
    )


def _series_identity_statement(spec: EntitySpec, dialect: DdlDialect) -> _Statement:
    assert spec.event_time is not None
    table = table_name(spec)
    names = (table, index_name(table, "identity", dialect), spec.key, spec.event_time, EVENT_ID_COLUMN)
    return (_index, (True,), names)


def ddl_statements(spec: EntitySpec, dialect: DdlDialect, *, pretty: bool = False) -> list[str]:
    """Return the DDL of an entity as SQL text in the dialect (as `ddl_expressions` renders, only faster).

    Where the dialect allows (`DdlDialect.assembles_ddl`), the CREATE TABLE is assembled from pieces sqlglot
    rendered once per column shape (see `_assembled_table`), and the names of each other statement are
    spliced into sqlglot's rendering of the same statement with sentinel names (see `_spliced`).
    """
    if not dialect.assembles_ddl:
        return [
            e.sql(dialect=dialect.name, pretty=pretty, copy=False) for e in ddl_expressions(spec, dialect)
        ]
    table = _assembled_table(spec, dialect, pretty)
    if table is None:
        create = create_series_table if spec.abstraction is Abstraction.TIME_SERIES else create_table
        table = create(spec, dialect).sql(dialect=dialect.name, pretty=pretty, copy=False)
    return [table, *(_spliced(s, dialect, pretty) for s in _statements_after_table(spec, dialect))]


# -- CREATE TABLE assembled from sqlglot-rendered pieces ---------------------------------------------------
#
# Rendering a CREATE TABLE costs about 0.5 ms, nearly all of it in the column definitions, and a schema of a
# thousand tables has only a few dozen column shapes (kind, presence, repeated). So the text is assembled:
#
# - a *frame*: sqlglot renders `create_table` / `create_series_table` of a stand-in spec whose names are
#   sentinels and whose non-key columns are placeholders; primary-key columns keep their real shape there,
#   since a dialect may render them in context (SQLite moves a one-column PRIMARY KEY into the column).
#   One frame serves every table with the same column count, key shapes and positions.
# - a *line* per non-key column: sqlglot renders that column's definition under a sentinel name, once per
#   column shape.
#
# Names are spliced into the sentinels' places, so only plain names (letters, digits, '_'), which no
# dialect escapes, take this path; tables with oneof CHECKs (whose pretty layout depends on the length of
# the names in them) are rendered whole. Any surprise (a sentinel not found where expected) also falls back
# to the whole render. tests/test_sql_ddl.py checks both paths agree. The pieces are kept in render_cache.py.


def _assembled_table(spec: EntitySpec, dialect: DdlDialect, pretty: bool) -> str | None:
    """Return the CREATE TABLE text of `spec` assembled from cached pieces, or None to render it whole."""
    if not PLAIN_NAME.fullmatch(spec.namespace):
        return None
    series = spec.abstraction is Abstraction.TIME_SERIES
    in_frame = {spec.event_time} if series else {c.name for c in spec.key_columns}
    oneofs: set[str] = set()
    shapes: list[tuple[tuple[object, ...], int] | None] = []
    for column in spec.columns:
        if not PLAIN_NAME.fullmatch(column.name):
            return None
        if column.oneof:
            if column.oneof in oneofs:
                return None  # a oneof of two or more members: a CHECK
            oneofs.add(column.oneof)
        shapes.append((_shape(column), frame_length(column.name)) if column.name in in_frame else None)
    names = [c.name for c in spec.columns]
    roles = (
        names.index(spec.key),
        -1 if spec.sort_key is None else names.index(spec.sort_key),
        -1 if spec.event_time is None else names.index(spec.event_time),
    )
    key = (type(dialect), pretty, spec.abstraction, roles, tuple(shapes))
    frame = CACHE.frame(key, lambda: _frame(spec, dialect, pretty))
    if frame is None:
        return None
    out: list[str] = []
    for part in frame:
        if isinstance(part, str):
            out.append(part)
            continue
        role, index = part
        if role == "t":
            out.append(spec.namespace)
        elif role == "n":
            out.append(names[index])
        else:
            line = _line(spec.columns[index], dialect, pretty)
            if line is None:
                return None
            out += (line[0], names[index], line[1])
    return "".join(out)


# What a column's definition may depend on: every field but its name, field number and oneof name.
_SHAPE_FIELDS = operator.attrgetter(
    *(f.name for f in dataclasses.fields(Column) if f.name not in ("name", "number", "oneof"))
)


def _shape(column: Column) -> tuple[object, ...]:
    return (_SHAPE_FIELDS(column), bool(column.oneof))


def _frame(spec: EntitySpec, dialect: DdlDialect, pretty: bool) -> Frame | None:
    series = spec.abstraction is Abstraction.TIME_SERIES
    in_frame = {spec.event_time} if series else {c.name for c in spec.key_columns}
    renamed = {
        c.name: sentinel("n", i, frame_length(c.name) if c.name in in_frame else 0)
        for i, c in enumerate(spec.columns)
    }
    columns = tuple(
        dataclasses.replace(c, name=renamed[c.name], oneof="")
        if c.name in in_frame
        else _placeholder(renamed[c.name])
        for c in spec.columns
    )
    stand_in = dataclasses.replace(
        spec,
        namespace=sentinel("t"),
        columns=columns,
        key=renamed[spec.key],
        sort_key=None if spec.sort_key is None else renamed[spec.sort_key],
        event_time=None if spec.event_time is None else renamed[spec.event_time],
    )
    create = create_series_table(stand_in, dialect) if series else create_table(stand_in, dialect)
    text = create.sql(dialect=dialect.name, pretty=pretty, copy=False)
    # Each placeholder's line must appear whole, exactly once; it then stands for the real column's line.
    for index, column in enumerate(spec.columns):
        if column.name in in_frame:
            continue
        line = _render_column(_placeholder(sentinel("n", index)), dialect, pretty)
        if text.count(line) != 1:
            return None
        text = text.replace(line, sentinel("l", index))
    return split_frame(text)


def _spliced(statement: _Statement, dialect: DdlDialect, pretty: bool) -> str:
    """Return the SQL of `statement`: its names spliced into its rendering with sentinels of their length."""
    builder, params, names = statement
    if not all(PLAIN_NAME.fullmatch(n) for n in names):
        return _build(statement).sql(dialect=dialect.name, pretty=pretty, copy=False)
    lengths = tuple(frame_length(n) for n in names)
    key = (type(dialect), pretty, builder, params, lengths)

    def render() -> Frame:
        sentinels = tuple(sentinel("n", i, length) for i, length in enumerate(lengths))
        return split_frame(builder(sentinels, *params).sql(dialect=dialect.name, pretty=pretty, copy=False))

    return fill(CACHE.splice(key, render), names)


def _placeholder(name: str) -> Column:
    # A column no dialect renders in context: nullable, not in the key, no default.
    return Column(name=name, number=0, kind=ColumnKind.STRING, nullable=True)


def _render_column(column: Column, dialect: DdlDialect, pretty: bool) -> str:
    return _column(column, dialect, primary=False).sql(dialect=dialect.name, pretty=pretty, copy=False)


def _line(column: Column, dialect: DdlDialect, pretty: bool) -> Line | None:
    def render() -> Line | None:
        name = sentinel("n")
        text = _render_column(dataclasses.replace(column, name=name), dialect, pretty)
        parts = text.split(name)
        # A line of several lines would need the frame's indent on each: render such tables whole.
        return (parts[0], parts[1]) if len(parts) == 2 and "\n" not in text else None

    return CACHE.line((type(dialect), pretty, _shape(column)), render)


def _oneof_checks(spec: EntitySpec) -> list[exp.Expression]:
    # At most one member of a oneof is set: the count of non-NULL member columns is 0 or 1.
    groups: dict[str, list[str]] = {}
    for column in spec.columns:
        if column.oneof:
            groups.setdefault(column.oneof, []).append(column.name)
    checks: list[exp.Expression] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        total: exp.Expression | None = None
        for member in members:
            is_set = exp.Not(this=exp.Is(this=exp.column(member, quoted=True), expression=exp.Null()))
            term = exp.Case(
                ifs=[exp.If(this=is_set, true=exp.Literal.number(1))], default=exp.Literal.number(0)
            )
            total = term if total is None else exp.Add(this=total, expression=term)
        checks.append(exp.Check(this=exp.LTE(this=total, expression=exp.Literal.number(1))))
    return checks


def _column(column: Column, dialect: DdlDialect, *, primary: bool) -> exp.ColumnDef:
    constraints = list(dialect.key_constraints(column)) if primary else []
    if not column.nullable or primary:
        constraints.append(exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()))
        if not primary:
            constraints.append(
                exp.ColumnConstraint(kind=exp.DefaultColumnConstraint(this=dialect.default(column)))
            )
    return exp.ColumnDef(
        this=exp.to_identifier(column.name, quoted=True),
        kind=dialect.column_type(column),
        constraints=constraints,
    )


def column_definition(column: Column, dialect: DdlDialect) -> exp.ColumnDef:
    """Return the definition of one stored field's column (not part of the primary key)."""
    return _column(column, dialect, primary=False)
