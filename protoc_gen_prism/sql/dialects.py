"""DDL dialects: a runtime dialect plus what rendering DDL with sqlglot needs (types, defaults, constraints).

The neutral base speaks any sqlglot dialect (that is how `sql_dialect=mysql` works); SQLite and Postgres add
only what they store differently. Their types, limits and capabilities are the runtime dialects' own
(prism_runtime.sql.dialects), so each fact about a dialect is written once.
"""

from __future__ import annotations

import functools

from sqlglot import exp

from prism_runtime.schema import Column, ColumnKind
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.dialects import DIALECTS, PostgresDialect, SqliteDialect


@functools.cache
def _parsed_type(text: str, dialect: str) -> exp.DataType:
    # Parsing a type name costs about 100 us; a schema of a thousand messages names the same few types.
    return exp.DataType.build(text, dialect=dialect)


class DdlDialect(SqlDialect):
    """Any sqlglot dialect as Prism's DDL uses it; subclasses override only what differs."""

    def quote(self, identifier: str) -> str:
        """Return `identifier` quoted for this dialect."""
        return exp.to_identifier(identifier, quoted=True).sql(self.name)

    def column_type(self, column: Column) -> exp.DataType:
        """Return the SQL type of a column."""
        base = self.types[column.kind]
        if column.repeated:
            base = f"{base}[]" if self.supports_arrays else self.types[ColumnKind.JSON]
        return _parsed_type(base, self.type_dialect).copy()

    def key_constraints(self, column: Column) -> list[exp.ColumnConstraint]:
        """Return extra constraints of a primary key column."""
        return []

    def default(self, column: Column) -> exp.Expression:
        """Return the DEFAULT of a NOT NULL column: the proto3 zero value, stored as this dialect stores it."""
        kind = column.kind
        if column.repeated:
            return exp.Literal.string("{}") if self.supports_arrays else exp.Literal.string("[]")
        if kind in (ColumnKind.STRING, ColumnKind.BYTES):
            return exp.Literal.string("")
        if kind is ColumnKind.JSON:
            return exp.Literal.string("null")
        if kind is ColumnKind.BOOL:
            return exp.false()
        if kind is ColumnKind.TIMESTAMP:
            return exp.Literal.string("1970-01-01T00:00:00Z")
        return exp.Literal.number(0)

    def sequence_column(self, name: str, *, primary: bool = True) -> exp.ColumnDef:
        """Return an auto-numbered column (the primary key unless told otherwise): insertion order."""
        constraints = [exp.ColumnConstraint(kind=exp.GeneratedAsIdentityColumnConstraint(this=False))]
        if primary:
            constraints.append(exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint()))
        return exp.ColumnDef(
            this=exp.to_identifier(name, quoted=True),
            kind=exp.DataType.build("BIGINT", dialect=self.name),
            constraints=constraints,
        )


class SqliteDdl(DdlDialect, SqliteDialect):
    """SQLite: bools are integers, bytes are blobs, and an INTEGER PRIMARY KEY numbers itself."""

    def sequence_column(self, name: str, *, primary: bool = True) -> exp.ColumnDef:
        """Return an INTEGER PRIMARY KEY: SQLite numbers it as the rowid."""
        return exp.ColumnDef(
            this=exp.to_identifier(name, quoted=True),
            kind=exp.DataType.build("INTEGER", dialect=self.name),
            constraints=[exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint())],
        )

    def default(self, column: Column) -> exp.Expression:
        """Return the zero value as SQLite stores it (bools are integers, bytes are blobs)."""
        if column.kind is ColumnKind.BOOL:
            return exp.Literal.number(0)
        if column.kind is ColumnKind.BYTES and not column.repeated:
            return exp.HexString(this="")
        if column.kind is ColumnKind.TIMESTAMP:
            return exp.Literal.string("1970-01-01T00:00:00.000000000Z")
        return super().default(column)


class PostgresDdl(DdlDialect, PostgresDialect):
    """Postgres: text keys sort bytewise."""

    def key_constraints(self, column: Column) -> list[exp.ColumnConstraint]:
        """Sort text keys bytewise (COLLATE "C") so scans order keys the same as SQLite and Python."""
        if column.kind is ColumnKind.STRING:
            return [
                exp.ColumnConstraint(
                    kind=exp.CollateColumnConstraint(this=exp.to_identifier("C", quoted=True))
                )
            ]
        return []


# What rendering DDL adds to a runtime dialect (prism_runtime.sql.dialects.DIALECTS), where it adds anything.
_DDL_DELTAS: dict[str, type[DdlDialect]] = {d.name: d for d in (SqliteDdl, PostgresDdl)}


def ddl_dialect_for(name: str) -> DdlDialect:
    """Return the DDL dialect named `name`: a runtime dialect's (with its DDL delta, if any), else the neutral
    base for that sqlglot name."""
    known = _DDL_DELTAS.get(name)
    if known is not None:
        return known()
    runtime = DIALECTS.get(name)
    bases: tuple[type, ...] = (DdlDialect,) if runtime is None else (DdlDialect, runtime)
    made: DdlDialect = type(f"{name.title()}Ddl", bases, {"name": name})()
    return made
