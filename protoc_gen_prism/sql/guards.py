"""When a migration statement still has work to do: the idempotency SQLite's ALTER TABLE cannot say in SQL.

Provisioning asks `guard_of(statement)` and runs the statement only if the guard holds on the live database:
the table it changes exists (a fresh database gets the whole table from the generated DDL instead), and the
column it adds is absent, or the column it renames, alters or drops is present.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp


@dataclass(frozen=True)
class Guard:
    """The state a statement needs: `table` exists and `column` is present (True) or absent (False)."""

    table: str
    column: str = ""
    column_present: bool = True


def guard_of(statement: exp.Expression) -> Guard | None:
    """Return the guard of an ALTER TABLE or CREATE INDEX statement, None for statements that need none."""
    if isinstance(statement, exp.Create) and str(statement.args.get("kind", "")).upper() == "INDEX":
        index = statement.this
        table = index.args.get("table") if isinstance(index, exp.Index) else None
        return Guard(table.name) if isinstance(table, exp.Table) else None
    if not isinstance(statement, exp.Alter) or not isinstance(statement.this, exp.Table):
        return None
    table = statement.this.name
    actions = statement.args.get("actions") or []
    if len(actions) != 1:
        return Guard(table)
    action = actions[0]
    if isinstance(action, exp.ColumnDef):
        return Guard(table, action.name, column_present=False)
    if isinstance(action, exp.RenameColumn | exp.AlterColumn):
        return Guard(table, action.this.name)
    if isinstance(action, exp.Drop) and str(action.args.get("kind", "")).upper() == "COLUMN":
        columns = action.args.get("tables") or []
        return Guard(table, columns[0].name if columns else "")
    return Guard(table)


def outside_transaction(statement: exp.Expression) -> bool:
    """Return whether a statement must run on its own, outside a transaction (CREATE/DROP INDEX CONCURRENTLY)."""
    return isinstance(statement, exp.Create | exp.Drop) and bool(statement.args.get("concurrently"))
