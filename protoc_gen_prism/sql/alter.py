"""ALTER statements of migrations, as sqlglot expressions; IF [NOT] EXISTS wherever the dialect has it.

Where a dialect has no such guard (SQLite), `prism_runtime.sql.guards` tells provisioning whether a statement
still has work to do, so every migration file can be applied again without error.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from prism_runtime.schema import Column
from prism_runtime.sql.names import index_name
from protoc_gen_prism.sql.dialects import DdlDialect
from protoc_gen_prism.sql.expressions import column_definition, index_statement


def _table(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def _alter(table: str, action: exp.Expression, dialect: DdlDialect) -> exp.Alter:
    return exp.Alter(
        this=_table(table), kind="TABLE", actions=[action], exists=dialect.supports_alter_if_exists
    )


def add_column(table: str, column: Column, dialect: DdlDialect) -> exp.Alter:
    """Return ALTER TABLE ADD COLUMN with the column's NOT NULL DEFAULT zero value (or NULL when it has presence)."""
    definition = column_definition(column, dialect)
    if dialect.supports_alter_if_exists:
        definition.set("exists", True)
    return _alter(table, definition, dialect)


def rename_column(table: str, old: str, new: str, dialect: DdlDialect) -> exp.Alter:
    """Return ALTER TABLE RENAME COLUMN old TO new."""
    action = exp.RenameColumn(this=exp.column(old, quoted=True), to=exp.column(new, quoted=True))
    return exp.Alter(this=_table(table), kind="TABLE", actions=[action])


def rename_table(old: str, new: str, dialect: DdlDialect) -> exp.Alter:
    """Return ALTER TABLE old RENAME TO new."""
    action = exp.AlterRename(this=exp.Table(this=exp.to_identifier(new, quoted=True)))
    return _alter(old, action, dialect)


def drop_column(table: str, column: str, dialect: DdlDialect) -> exp.Alter:
    """Return ALTER TABLE DROP COLUMN: the contract step, for data no running version reads any more."""
    action = exp.Drop(
        tables=[exp.column(column, quoted=True)], kind="COLUMN", exists=dialect.supports_alter_if_exists
    )
    return _alter(table, action, dialect)


def drop_not_null(table: str, column: str, dialect: DdlDialect) -> exp.Alter:
    """Return ALTER TABLE ALTER COLUMN DROP NOT NULL: the expand step before a column is dropped."""
    action = exp.AlterColumn(this=exp.column(column, quoted=True), drop=True, allow_null=True)
    return _alter(table, action, dialect)


def _concurrently(dialect: DdlDialect, series: bool) -> bool:
    # Postgres cannot build or drop an index on a partitioned table (a partitioned time series) concurrently.
    return dialect.supports_concurrent_index and not (series and dialect.partitions_series)


def create_index(
    table: str, column: str, dialect: DdlDialect, *, series: bool = False, columns: Sequence[str] = ()
) -> exp.Create:
    """Return CREATE INDEX IF NOT EXISTS on `columns` (default: the column alone), CONCURRENTLY where the dialect
    can build it without blocking writes."""
    # The very statement the DDL writes, so both name and shape the index alike.
    statement = index_statement(table, index_name(table, column, dialect), list(columns or (column,)))
    statement.set("concurrently", _concurrently(dialect, series))
    return statement


def drop_index(table: str, column: str, dialect: DdlDialect, *, series: bool = False) -> exp.Drop:
    """Return DROP INDEX IF EXISTS of the index Prism names for (table, column)."""
    name = exp.Table(this=exp.to_identifier(index_name(table, column, dialect), quoted=True))
    return exp.Drop(tables=[name], kind="INDEX", exists=True, concurrently=_concurrently(dialect, series))


def drop_table(table: str) -> exp.Drop:
    """Return DROP TABLE IF EXISTS: the contract step of an entity removed from the schema."""
    return exp.Drop(tables=[_table(table)], kind="TABLE", exists=True)
