"""An entity's DDL as sqlglot expressions: how any dialect beyond Postgres and SQLite is rendered.

`protoc_gen_prism.sql.ddl` writes Postgres and SQLite DDL itself and comes here only for another dialect
(`sql_dialect=mysql`), so a compile that asks for none never imports sqlglot. For Postgres and SQLite these
expressions are the oracle: tests/test_sql_ddl.py renders schemas both ways and compares the text.
"""

from __future__ import annotations

from sqlglot import exp

from prism_runtime.schema import Abstraction, Column, EntitySpec
from prism_runtime.sql.names import (
    EVENT_ID_COLUMN,
    SEQUENCE_COLUMN,
    default_partition_name,
    index_columns,
    index_name,
    table_name,
)
from protoc_gen_prism.sql.dialects import DdlDialect


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


def index_statement(
    table: str, name: str, columns: list[str] | tuple[str, ...], *, unique: bool = False
) -> exp.Create:
    """Return the idempotent CREATE [UNIQUE] INDEX `name` of `table` on `columns`."""
    index = exp.Index(
        this=exp.to_identifier(name, quoted=True),
        table=exp.Table(this=exp.to_identifier(table, quoted=True)),
        params=exp.IndexParameters(columns=[exp.column(c, quoted=True) for c in columns]),
    )
    return exp.Create(this=index, kind="INDEX", exists=True, unique=unique)


def ddl_expressions(spec: EntitySpec, dialect: DdlDialect) -> list[exp.Expression]:
    """Return every DDL statement of an entity: the table; for a series its DEFAULT partition (where
    partitioned) and identity index; then the indexes and column comments."""
    table = table_name(spec)
    out: list[exp.Expression] = []
    if spec.abstraction is Abstraction.TIME_SERIES:
        assert spec.event_time is not None
        out.append(create_series_table(spec, dialect))
        if dialect.partitions_series:
            out.append(_default_partition(table, default_partition_name(spec, dialect)))
        identity = index_name(table, "identity", dialect)
        out.append(
            index_statement(table, identity, (spec.key, spec.event_time, EVENT_ID_COLUMN), unique=True)
        )
    else:
        out.append(create_table(spec, dialect))
    out += (
        index_statement(table, index_name(table, c.name, dialect), index_columns(spec, c))
        for c in spec.columns
        if c.indexed
    )
    if spec.edge_source is not None and spec.edge_target is not None:
        # The primary key (source, target) serves outgoing hops; this serves incoming ones.
        reverse = index_name(table, f"{spec.edge_target}__{spec.edge_source}", dialect)
        out.append(index_statement(table, reverse, (spec.edge_target, spec.edge_source)))
    if dialect.supports_column_comments:
        out += (_comment(table, c.name, c.pii) for c in spec.columns if c.pii)
    return out


def _comment(table: str, column: str, pii: str) -> exp.Comment:
    return exp.Comment(
        this=exp.column(column, table=table, quoted=True),
        kind="COLUMN",
        expression=exp.Literal.string(f"pii: {pii}"),
    )


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


def _default_partition(table: str, name: str) -> exp.Create:
    parent = exp.Table(this=exp.to_identifier(table, quoted=True))
    bounds = exp.PartitionedOfProperty(this=parent, expression=exp.var("DEFAULT"))
    return exp.Create(
        this=exp.Table(this=exp.to_identifier(name, quoted=True)),
        kind="TABLE",
        exists=True,
        properties=exp.Properties(expressions=[bounds]),
    )


def rendered(spec: EntitySpec, dialect: DdlDialect, *, pretty: bool = False) -> list[str]:
    """Return every DDL statement of an entity as sqlglot renders it in the dialect."""
    return [e.sql(dialect=dialect.name, pretty=pretty, copy=False) for e in ddl_expressions(spec, dialect)]


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
