"""The access audit log: a SHA-256 hash chain of who touched which PII field of which record, and why.

Each entry's hash covers the previous entry's hash and a canonical JSON of the entry, so changing, removing
or reordering any row breaks the chain from there on; `verify` names the first entry that does not hold.
Entries carry pseudonymous subject and record refs, never plaintext or ciphertext.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from prism_runtime.errors import BackendError
from prism_runtime.pii import tables
from prism_runtime.sql.driver import SqlDriver, Statement

GENESIS = "0" * 64
ACTOR_ENV = "PRISM_ACTOR"
_RETRIES = 8

Write = Callable[[Sequence[Statement]], Awaitable[None]]
"""A data write that runs the statements it is given after its own, in its transaction."""
_PAGE = 1000


@dataclass(frozen=True)
class Actor:
    """Who is acting and for what purpose."""

    name: str
    purpose: str = ""


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("prism_actor", default=None)


@contextlib.contextmanager
def actor(name: str, purpose: str = "") -> Iterator[Actor]:
    """Attribute every PII access inside the block to `name`, for `purpose`."""
    token = _actor.set(Actor(name, purpose))
    try:
        yield _actor.get() or Actor(name, purpose)
    finally:
        _actor.reset(token)


def current_actor() -> Actor:
    """Return the actor set by `actor(...)`, else $PRISM_ACTOR, else "unattributed"."""
    return _actor.get() or Actor(os.environ.get(ACTOR_ENV, "unattributed"))


@dataclass(frozen=True)
class AuditEvent:
    """What happened, before it is placed in the chain."""

    action: str  # read, write, decrypt, erase, find
    message: str
    field: int
    pii: str
    subject_ref: str
    record_ref: str
    outcome: str = "ok"
    key_id: int = 0


@dataclass(frozen=True)
class AuditEntry:
    """One stored audit record, in chain order."""

    seq: int
    at: str
    event_id: str
    actor: str
    purpose: str
    action: str
    message: str
    field: int
    pii: str
    subject_ref: str
    record_ref: str
    outcome: str
    key_id: int
    prev_hash: str
    entry_hash: str

    def canonical(self) -> bytes:
        """Return the bytes the entry hash covers: every column but entry_hash, as sorted JSON."""
        body = {k: v for k, v in asdict(self).items() if k != "entry_hash"}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    def expected_hash(self) -> str:
        """Return SHA-256(prev_hash || canonical entry) as hex."""
        return hashlib.sha256(bytes.fromhex(self.prev_hash) + self.canonical()).hexdigest()


_COLUMNS = [f.name for f in fields(AuditEntry)]


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of walking the chain."""

    entries: int
    first_bad_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Return whether the whole chain holds."""
        return self.first_bad_seq is None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """The `prism_audit` table of one SQL backend."""

    def __init__(self, driver: SqlDriver) -> None:
        self.driver = driver
        self._lock = asyncio.Lock()
        self._ready = False
        self._head: tuple[int, str] | None = None
        q = driver.dialect.quote
        self._table = q(tables.AUDIT.namespace)
        self._insert = tables.insert_sql(driver, tables.AUDIT)
        self._select = f"SELECT {', '.join(q(c) for c in _COLUMNS)} FROM {self._table}"

    async def ready(self) -> None:
        """Create the table (and, where the dialect can, the triggers that make it append-only)."""
        if not self._ready:
            guard = self.driver.dialect.append_only(tables.AUDIT.namespace)
            await tables.prepare(self.driver, tables.AUDIT, guard)
            self._ready = True

    async def _read_head(self) -> tuple[int, str]:
        q = self.driver.dialect.quote
        rows = await self.driver.fetch(
            f"SELECT {q('seq')}, {q('entry_hash')} FROM {self._table} ORDER BY {q('seq')} DESC LIMIT 1",
            (),
            namespace="prism_audit",
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)

    async def append(self, events: Sequence[AuditEvent]) -> list[AuditEntry]:
        """Chain and store `events` atomically; retry when another process appended first."""
        return await self.append_with(events, None)

    async def append_with(self, events: Sequence[AuditEvent], write: Write | None) -> list[AuditEntry]:
        """Chain `events` and store them in the same transaction as the data `write` makes, or by themselves.

        `write(after)` must run its own statements and then `after` in one transaction, so a write of an
        audited field and its audit entries are stored together or not at all. When the transaction fails
        because another process appended first (the chain's head moved), the whole write is tried again
        on the new head; any other failure is raised as it is.
        """
        if not events:
            if write is not None:
                await write(())
            return []
        await self.ready()
        who = current_actor()
        async with self._lock:
            for attempt in range(_RETRIES):
                if self._head is None:
                    self._head = await self._read_head()
                head = self._head
                entries = self._chain(events, who, head)
                rows = [tuple(getattr(e, c) for c in _COLUMNS) for e in entries]
                try:
                    if write is None:
                        await self.driver.execute_many(self._insert, rows, namespace="prism_audit")
                    else:
                        await write([(self._insert, rows)])
                except BackendError:
                    self._head = await self._read_head()
                    if self._head == head or attempt == _RETRIES - 1:
                        raise
                    continue
                self._head = (entries[-1].seq, entries[-1].entry_hash)
                return entries
        raise AssertionError("unreachable")

    @staticmethod
    def _chain(events: Sequence[AuditEvent], who: Actor, head: tuple[int, str]) -> list[AuditEntry]:
        """Return `events` as entries following `head` (seq, hash), each hashing the one before."""
        seq, prev = head
        entries = []
        for event in events:
            seq += 1
            draft = AuditEntry(
                seq=seq,
                at=_now(),
                event_id=uuid.uuid4().hex,
                actor=who.name,
                purpose=who.purpose,
                prev_hash=prev,
                entry_hash="",
                **asdict(event),
            )
            prev = draft.expected_hash()
            entries.append(AuditEntry(**{**asdict(draft), "entry_hash": prev}))
        return entries

    async def entries(self, *, after_seq: int = 0, since: str | None = None) -> AsyncIterator[AuditEntry]:
        """Yield stored entries in chain order, after `after_seq` and at or after time `since`."""
        await self.ready()
        q, ph = self.driver.dialect.quote, self.driver.dialect.placeholder
        last = after_seq
        while True:
            rows = await self.driver.fetch(
                f"{self._select} WHERE {q('seq')} > {ph(1)} ORDER BY {q('seq')} LIMIT {_PAGE}",
                (last,),
                namespace="prism_audit",
            )
            for row in rows:
                entry = AuditEntry(**{c: _typed(c, v) for c, v in zip(_COLUMNS, row, strict=True)})
                last = entry.seq
                if since is None or entry.at >= since:
                    yield entry
            if len(rows) < _PAGE:
                return

    async def verify(self) -> VerifyResult:
        """Walk the chain from the start; report the first entry that is missing, moved or altered."""
        expected_seq, prev, count = 1, GENESIS, 0
        async for entry in self.entries():
            count += 1
            if entry.seq != expected_seq:
                return VerifyResult(
                    count, expected_seq, f"entry {expected_seq} is missing (next is {entry.seq})"
                )
            if entry.prev_hash != prev:
                return VerifyResult(count, entry.seq, "prev_hash does not match the previous entry's hash")
            if entry.expected_hash() != entry.entry_hash:
                return VerifyResult(count, entry.seq, "entry_hash does not match the entry's contents")
            prev, expected_seq = entry.entry_hash, expected_seq + 1
        return VerifyResult(count)


def _typed(column: str, value: Any) -> Any:
    if column in ("seq", "field", "key_id"):
        return int(value)
    return str(value)
