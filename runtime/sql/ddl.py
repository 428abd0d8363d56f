"""CREATE TABLE / CREATE INDEX for an entity, built as sqlglot expressions and rendered per dialect."""

from __future__ import annotations

import hashlib

from sqlglot import exp

from prism_runtime.schema import Column, EntitySpec
from prism_runtime.sql.dialect import SqlDialect


def table_name(spec: EntitySpec) -> str:
    """Return the table that holds an entity: its namespace."""
    return spec.namespace


def create_table(spec: EntitySpec, dialect: SqlDialect) -> exp.Create:
    """Return the idempotent CREATE TABLE of an entity."""
    key_names = [c.name for c in spec.key_columns]
    columns: list[exp.Expression] = [_column(c, dialect, primary=c.name in key_names) for c in spec.columns]
    columns.append(exp.PrimaryKey(expressions=[exp.to_identifier(n, quoted=True) for n in key_names]))
    schema = exp.Schema(
        this=exp.Table(this=exp.to_identifier(table_name(spec), quoted=True)), expressions=columns
    )
    return exp.Create(this=schema, kind="TABLE", exists=True)


def create_indexes(spec: EntitySpec, dialect: SqlDialect) -> list[exp.Create]:
    """Return the idempotent CREATE INDEX statements of an entity's indexed columns."""
    table = table_name(spec)
    out = []
    for column in spec.columns:
        if not column.indexed:
            continue
        name = index_name(table, column.name, dialect)
        index = exp.Index(
            this=exp.to_identifier(name, quoted=True),
            table=exp.Table(this=exp.to_identifier(table, quoted=True)),
            params=exp.IndexParameters(columns=[exp.column(column.name, quoted=True)]),
        )
        out.append(exp.Create(this=index, kind="INDEX", exists=True))
    return out


def index_name(table: str, column: str, dialect: SqlDialect) -> str:
    """Return a deterministic index name that fits the dialect's identifier limit."""
    name = f"{table}__{column}__idx"
    if len(name) <= dialect.max_identifier_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: dialect.max_identifier_length - 9]}_{digest}"


def ddl_statements(spec: EntitySpec, dialect: SqlDialect) -> list[str]:
    """Return the table and index DDL of an entity as SQL text in the dialect."""
    return [
        e.sql(dialect=dialect.name) for e in (create_table(spec, dialect), *create_indexes(spec, dialect))
    ]


def _column(column: Column, dialect: SqlDialect, *, primary: bool) -> exp.ColumnDef:
    constraints = []
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


def column_definition(column: Column, dialect: SqlDialect) -> exp.ColumnDef:
    """Return the definition of one stored field's column (not part of the primary key)."""
    return _column(column, dialect, primary=False)
