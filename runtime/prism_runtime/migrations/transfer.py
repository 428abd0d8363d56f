"""Backfill: copy a namespace's rows from its migration's source to its target while the service writes.

The service must be dual-writing first (phase dual_write or shadow_read): from then on every write reaches
both sides, and the backfill only has to bring over what was there before. The rules that make that safe:

- Insert-if-absent: a backfill never overwrites a row the target has, since the target's row was written by
  the service after the source row was read (dual writes reach the target at least as late as the source).
- Tombstones: a delete while a backfill may run leaves (namespace, key) in `prism_tombstones` on the target,
  in the delete's transaction; a backfill skips a tombstoned key (or a key under a tombstoned prefix).
- Claims: a page claims each key it copies with a row in the same table (state `claim`), inserted before the
  copy and deleted before the commit. A delete's tombstone and a page's claim of one key cannot both be
  inserted at once: whichever comes second waits for the first transaction. So either the delete comes after
  the copy and deletes the copied row, or the copy sees the tombstone and skips the key. SQLite runs one
  writer at a time and gets the same order from its write lock.

The checkpoint (the last key offered, and the counts) is written in the page's transaction: after a kill -9
a new run resumes after the last committed page; a page in flight is rolled back and copied again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from prism_runtime.backends.contract import ServesTimeSeries
from prism_runtime.backends.registry import runs_sql
from prism_runtime.config import Migration
from prism_runtime.errors import ConfigError, Contention
from prism_runtime.migrations.control import control_driver, now, read_rows, sql_end
from prism_runtime.migrations.rows import Layout, RowCopier, comparable, layout_of, many_rows, select_sql
from prism_runtime.migrations.tables import CHECKPOINTS, CLAIM, TOMBSTONES, key_of_text, key_text
from prism_runtime.pii.catalog import spec_from_json
from prism_runtime.pii.tables import insert_sql, prepare
from prism_runtime.schema import Abstraction, EntitySpec, registered
from prism_runtime.sql.driver import Chained, Row, SqlDriver, Statement
from prism_runtime.sql.names import table_name
from prism_runtime.telemetry import migration_event
from prism_runtime.timeseries import TimeSeriesBackend

if TYPE_CHECKING:
    from prism_runtime.database import Database

DEFAULT_PAGE = 500
_ATTEMPTS = 5


@dataclass(frozen=True)
class Progress:
    """A backfill's checkpoint: how far it got, and what it counted."""

    namespace: str
    after: str = ""
    """The last key offered to the target (prism_runtime.migrations.tables.key_text), "" before any."""
    copied: int = 0
    """Rows offered to the target insert-if-absent (a row the service wrote there already is kept)."""
    skipped: int = 0
    """Rows not copied because their key was deleted during the migration (tombstoned)."""
    total: int = 0
    """The source's row count when the backfill started."""
    state: str = ""
    """"running" or "done"; "" when no backfill has started."""
    started_at: str = ""
    updated_at: str = ""

    @property
    def rows(self) -> int:
        """Return the rows read from the source so far."""
        return self.copied + self.skipped


@dataclass(frozen=True)
class Differences:
    """What a full comparison of the two sides found: counts, and keys only for entities without PII."""

    namespace: str
    compared: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    keys: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Return the number of differences."""
        return self.missing + self.extra + self.different


@dataclass(frozen=True)
class Ends:
    """Everything a backfill or a verify needs about one migration."""

    migration: Migration
    spec: EntitySpec
    source: SqlDriver
    target: SqlDriver | None
    """The target when it runs SQL; None for a stream (Kafka, NATS)."""
    phase: str
    stream: TimeSeriesBackend[Any] | None = None
    """A stream target's series, when the target is one."""

    @property
    def checkpoints(self) -> SqlDriver:
        """Return the backend holding the backfill's checkpoint: the target, else (a stream) the source."""
        return self.target if self.target is not None else self.source


async def ends_of(db: Database, namespace: str) -> Ends:
    """Return a migration's backends, current phase and entity spec (from the control row, which the service
    wrote at its first write, else from a generated module imported in this process)."""
    migration = migration_of(db, namespace)
    row = (await read_rows(control_driver(db, migration), [namespace]))[namespace]
    spec = spec_from_json(row.spec) if row.spec else registered().get(namespace)
    if spec is None:
        raise ConfigError(
            f"migration {namespace!r}: no entity spec yet; it is recorded by the service's first write in "
            "phase dual_write (start the service first)"
        )
    source = sql_end(db, migration.source, namespace)
    backend = db.serving(spec, migration.target)
    if runs_sql(backend):
        return Ends(migration, spec, source, backend, row.phase)
    from prism_runtime.migrations.streams import message_class

    series = cast(ServesTimeSeries, backend).timeseries(spec, message_class(spec))
    return Ends(migration, spec, source, None, row.phase, series)


def migration_of(db: Database, namespace: str) -> Migration:
    """Return the configured migration of `namespace`, or say which namespaces have one."""
    found = db.config.migrations.get(namespace)
    if found is None:
        known = ", ".join(sorted(db.config.migrations)) or "none"
        raise ConfigError(f"namespace {namespace!r} has no migration in the config; migrations: {known}")
    return found


def page_sql(layout: Layout, driver: SqlDriver, after: bool) -> str:
    """Return one keyset page of a whole table, in identity order, after a given identity."""
    ph = driver.dialect.placeholder
    order = ", ".join(driver.dialect.quote(layout.names[i]) for i in layout.order)
    n = len(layout.order)
    where = f" WHERE ({order}) > ({', '.join(ph(i + 1) for i in range(n))})" if after else ""
    return f"{select_sql(driver, layout)}{where} ORDER BY {order} LIMIT {ph(n + 1 if after else 1)}"


async def read_page(
    layout: Layout, driver: SqlDriver, after: tuple[Any, ...] | None, limit: int
) -> list[Row]:
    """Return up to `limit` stored rows of the table after identity `after` (from the start when None)."""
    args = [*(after or ()), limit]
    return await driver.fetch(
        page_sql(layout, driver, after is not None), args, namespace=layout.spec.namespace
    )


async def progress(db: Database, namespace: str) -> Progress:
    """Return the checkpoint of a namespace's backfill (an empty Progress when none has run)."""
    migration = migration_of(db, namespace)
    target = db.named_backend(migration.target)
    return await read_checkpoint(target if runs_sql(target) else control_driver(db, migration), namespace)


async def read_checkpoint(target: SqlDriver, namespace: str) -> Progress:
    """Return the checkpoint stored on the target."""
    await prepare(target, CHECKPOINTS)
    q, ph = target.dialect.quote, target.dialect.placeholder
    names = ", ".join(q(c.name) for c in CHECKPOINTS.columns)
    rows = await target.fetch(
        f"SELECT {names} FROM {q(CHECKPOINTS.namespace)} WHERE {q('namespace')} = {ph(1)}",
        (namespace,),
        namespace=CHECKPOINTS.namespace,
    )
    if not rows:
        return Progress(namespace)
    r = rows[0]
    return Progress(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), str(r[5]), str(r[6]), str(r[7]))


def _checkpoint_upsert(target: SqlDriver) -> str:
    q = target.dialect.quote
    updates = ", ".join(f"{q(c.name)} = excluded.{q(c.name)}" for c in CHECKPOINTS.columns[1:])
    return f"{insert_sql(target, CHECKPOINTS)} ON CONFLICT ({q('namespace')}) DO UPDATE SET {updates}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def backfill(
    db: Database,
    namespace: str,
    *,
    rate: float | None = None,
    page_size: int = DEFAULT_PAGE,
    restart: bool = False,
    on_page: Callable[[Progress, float], None] | None = None,
) -> Progress:
    """Copy the source's rows into the target, resuming from the checkpoint; return the final progress.

    `rate` caps the rows read per second; `on_page` is called after each page with the progress and the
    current rows/s. Refused unless the service dual-writes (phase dual_write or shadow_read).
    """
    ends = await ends_of(db, namespace)
    if ends.phase not in ("dual_write", "shadow_read"):
        raise ConfigError(
            f"migration {namespace!r} is in phase {ends.phase}; a backfill runs in dual_write or shadow_read "
            "(before that, writes made during the copy would not reach the target)"
        )
    spec, source, target = ends.spec, ends.source, ends.target
    layout = layout_of(spec)
    copy_page: Callable[[Progress, Sequence[Row]], Awaitable[Progress]]
    if target is not None:
        copier = RowCopier(spec, source, target)
        await target.prepare_table(spec, spec.ddl_for(target.dialect.name))
        for table in (CHECKPOINTS, TOMBSTONES):
            await prepare(target, table)

        async def copy_page(state: Progress, rows: Sequence[Row]) -> Progress:
            return await _copy_page(copier, state, rows)

    else:
        from prism_runtime.migrations.streams import StreamCopy

        assert ends.stream is not None
        stream = StreamCopy.of(spec, source, ends.stream)

        async def copy_page(state: Progress, rows: Sequence[Row]) -> Progress:
            await stream.append(rows)
            moved = _advance(state, key_text(layout_key(layout, rows[-1])), len(rows), 0)
            await source.execute(_checkpoint_upsert(source), _checkpoint_row(moved), namespace=namespace)
            return moved

    checkpoints = ends.checkpoints
    state = await read_checkpoint(checkpoints, namespace)
    if restart or not state.state:
        count = await source.fetch(
            f"SELECT COUNT(*) FROM {source.dialect.quote(table_name(spec))}", (), namespace=namespace
        )
        state = Progress(
            namespace, total=int(count[0][0]), state="running", started_at=now(), updated_at=now()
        )
    if state.state == "done":
        return state
    after = key_of_text(state.after) if state.after else None
    started, read_here = time.monotonic(), 0
    while True:
        rows = await read_page(layout, source, after, page_size)
        if not rows:
            # The last key is not kept once done: it may name a data subject.
            state = replace(state, after="", state="done", updated_at=now())
            await checkpoints.execute(
                _checkpoint_upsert(checkpoints), _checkpoint_row(state), namespace=namespace
            )
            return state
        state = await copy_page(state, rows)
        after = layout_key(layout, rows[-1])
        read_here += len(rows)
        migration_event("backfill_rows", namespace, len(rows))
        elapsed = time.monotonic() - started
        if rate:
            ahead = read_here / rate - elapsed
            if ahead > 0:
                await asyncio.sleep(ahead)
                elapsed += ahead
        if on_page is not None:
            on_page(state, read_here / elapsed if elapsed > 0 else 0.0)


def _advance(state: Progress, after: str, copied: int, skipped: int) -> Progress:
    return replace(
        state, after=after, copied=state.copied + copied, skipped=state.skipped + skipped, updated_at=now()
    )


def _checkpoint_row(p: Progress) -> tuple[Any, ...]:
    return (p.namespace, p.after, p.copied, p.skipped, p.total, p.state, p.started_at, p.updated_at)


async def _copy_page(copier: RowCopier, state: Progress, rows: Sequence[Row]) -> Progress:
    spec, target = copier.spec, copier.target
    ns = spec.namespace
    staged = await copier.staged(rows)
    keys = [copier.key_of(r) for r in rows]
    last = key_text(keys[-1])
    if spec.abstraction is Abstraction.TIME_SERIES:
        # Events are never updated and deletes are not dual-written: insert-if-absent by event identity.
        moved = _advance(state, last, len(rows), 0)
        (sql, first), *more = copier.inserts(staged)
        checkpoint: Statement = (_checkpoint_upsert(target), [_checkpoint_row(moved)])
        await target.execute_many(sql, first, namespace=ns, after=[*more, checkpoint])
        return moved
    names = copier.names
    full = await names.of(keys)
    # A sorted map's key also claims its prefix: a delete_all(key) tombstones the prefix.
    prefixes = await names.of([k[:1] for k in keys]) if len(spec.key_columns) > 1 else full
    claims = [(ns, text, CLAIM, "") for text in dict.fromkeys([*full, *prefixes])]
    q = target.dialect.quote
    names_sql = ", ".join(q(c.name) for c in TOMBSTONES.columns)
    (claim_sql, claim_rows), *more_claims = many_rows(
        target,
        f"INSERT INTO {q(TOMBSTONES.namespace)} ({names_sql})",
        len(TOMBSTONES.columns),
        f"ON CONFLICT ({q('namespace')}, {q('key')}) DO NOTHING",
        claims,
    )
    head = (
        f"SELECT {q('key')} FROM {q(TOMBSTONES.namespace)} WHERE {q('namespace')} = {_literal(ns)} "
        f"AND {q('state')} = {_literal(CLAIM)}"
    )
    release = (
        f"DELETE FROM {q(TOMBSTONES.namespace)} WHERE {q('namespace')} = {target.dialect.placeholder(1)} "
        f"AND {q('state')} = {target.dialect.placeholder(2)}"
    )
    done: list[Progress] = []

    def build(claimed_rows: Sequence[Row]) -> list[Statement]:
        claimed = {str(r[0]) for r in claimed_rows}
        keep = [
            row for row, f, p in zip(staged, full, prefixes, strict=True) if f in claimed and p in claimed
        ]
        after = _advance(state, last, len(keep), len(rows) - len(keep))
        done.append(after)
        return [
            *copier.inserts(keep),
            (release, [(ns, CLAIM)]),
            (_checkpoint_upsert(target), [_checkpoint_row(after)]),
        ]

    for attempt in range(_ATTEMPTS):
        done.clear()
        try:
            await target.execute_many(
                claim_sql, claim_rows, namespace=ns, after=[*more_claims, Chained(None, head, build)]
            )
            return done[-1]
        except Contention:
            if attempt == _ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


async def verify(
    db: Database, namespace: str, *, page_size: int = DEFAULT_PAGE, max_keys: int = 20
) -> Differences:
    """Compare every row of the source with the target, in pages; keys are listed only without PII."""
    ends = await ends_of(db, namespace)
    spec = ends.spec
    if ends.target is None:
        from prism_runtime.migrations.streams import StreamCopy, compare

        assert ends.stream is not None
        compared, listed, counted = await compare(StreamCopy.of(spec, ends.source, ends.stream), max_keys)
        return Differences(namespace, compared, counted["missing"], counted["extra"], 0, listed)
    copier = RowCopier(spec, ends.source, ends.target)
    back = RowCopier(spec, ends.target, ends.source)
    layout = copier.layout
    key_of = _identity_of(layout)
    on_source, on_target = comparable(layout, ends.source.dialect), comparable(layout, ends.target.dialect)
    identity = list(layout.order)
    show = not spec.holds_pii
    found: dict[str, list[tuple[Any, ...]]] = {"missing": [], "extra": [], "different": []}
    counts = dict.fromkeys(found, 0)
    compared = 0

    def note(kind: str, values: tuple[Any, ...]) -> None:
        counts[kind] += 1
        if show and len(found[kind]) < max_keys:
            found[kind].append(tuple(values[i] for i in identity))

    after: tuple[Any, ...] | None = None
    while rows := await read_page(layout, ends.source, after, page_size):
        theirs = {key_of(v): v for v in map(on_target, await copier.fetch_target(rows))}
        for row in rows:
            compared += 1
            mine = on_source(row)
            other = theirs.get(key_of(mine))
            if other is None:
                note("missing", mine)
            elif other != mine:
                note("different", mine)
        after = copier.key_of(rows[-1])
    after = None
    while rows := await read_page(layout, ends.target, after, page_size):
        present = {key_of(on_source(r)) for r in await back.fetch_target(rows)}
        for row in rows:
            values = on_target(row)
            if key_of(values) not in present:
                note("extra", values)
        after = back.key_of(rows[-1])
    return Differences(
        namespace, compared, counts["missing"], counts["extra"], counts["different"], found if show else {}
    )


def layout_key(layout: Layout, row: Row) -> tuple[Any, ...]:
    """Return the identity of a stored row, in page order."""
    return tuple(row[i] for i in layout.order)


def _identity_of(layout: Layout) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    order = layout.order
    return lambda values: tuple(values[i] for i in order)
