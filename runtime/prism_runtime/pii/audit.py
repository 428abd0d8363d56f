"""The access audit log: a SHA-256 hash chain of who touched which PII field of which record, and why.

Each entry's hash covers the previous entry's hash and a canonical JSON of the entry, so changing, removing
or reordering any row breaks the chain from there on; `verify` names the first entry that does not hold.
Entries carry pseudonymous subject and record refs, never plaintext or ciphertext.

A chain alone cannot show that its newest entries were cut off, so every append also stores the head
(seq, hash) with an HMAC under a key derived from the index root key (which only the master key unwraps) in
the `prism_meta` row `audit_head`, in the same transaction. `verify` holds the chain to that checkpoint.
Appends read the head inside their write transaction, after taking the chain's lock, so writers in any
number of processes never build on the same head.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import hashlib
import hmac
import json
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from prism_runtime.drive import pause
from prism_runtime.errors import Contention
from prism_runtime.pii import tables
from prism_runtime.pii.errors import AuditTampered
from prism_runtime.pii.keyring import Keyring
from prism_runtime.sql.driver import After, Chained, Row, SqlDriver, Statement
from prism_runtime.telemetry import pii_event

GENESIS = "0" * 64
ACTOR_ENV = "PRISM_ACTOR"
CHECKPOINT = "audit_head"
"""The `prism_meta` row holding the authenticated head of the chain."""
_MAC_PURPOSE = b"prism audit head/1"
# Only a lock wait that timed out, a deadlock or a serialisation failure is tried again, after a jittered
# pause that doubles: the head is read under the lock, so losing a race for it is no longer an error.
_ATTEMPTS = 5
_PAUSE = 0.05

Write = Callable[[Sequence[After]], Awaitable[None]]
"""A data write that runs what it is given after its own statements, in its transaction."""
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
class Checkpoint:
    """The chain's head as last appended: seq and entry hash, with an HMAC only the keyring can make."""

    seq: int
    entry_hash: str
    mac: str

    def text(self) -> str:
        """Return the stored form, `seq:entry_hash:mac`."""
        return f"{self.seq}:{self.entry_hash}:{self.mac}"

    @staticmethod
    def parse(text: str) -> Checkpoint | None:
        """Return the checkpoint stored as `text`, or None when it is not one."""
        parts = text.split(":")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        return Checkpoint(int(parts[0]), parts[1], parts[2])


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
    """The `prism_audit` table of one SQL backend, and its authenticated head checkpoint."""

    def __init__(self, driver: SqlDriver, keyring: Keyring) -> None:
        self.driver = driver
        self.keyring = keyring
        self._ready = False
        self._mac_key = b""
        q = driver.dialect.quote
        self._table = q(tables.AUDIT.namespace)
        self._where = f"prism_audit on {driver.name}"
        self._insert = tables.insert_sql(driver, tables.AUDIT)
        self._select = f"SELECT {', '.join(q(c) for c in _COLUMNS)} FROM {self._table}"
        meta, name, value = q(tables.META.namespace), q("name"), q("value")
        self._read_checkpoint = f"SELECT {value} FROM {meta} WHERE {name} = '{CHECKPOINT}'"
        # The checkpoint and the last seq stored, read in one statement under the chain's lock.
        self._head = f"SELECT ({self._read_checkpoint}), (SELECT MAX({q('seq')}) FROM {self._table})"
        self._lock_sql = driver.dialect.serialize_appends(tables.AUDIT.namespace)
        ph = driver.dialect.placeholder
        self._save_checkpoint = (
            f"INSERT INTO {meta} ({name}, {value}) VALUES ({ph(1)}, {ph(2)}) "
            f"ON CONFLICT ({name}) DO UPDATE SET {value} = excluded.{value}"
        )

    async def ready(self) -> None:
        """Create the table (and, where the dialect can, the triggers that make it append-only); load the
        checkpoint key."""
        if not self._ready:
            await self.keyring.ready()
            guard = self.driver.dialect.append_only(tables.AUDIT.namespace)
            await tables.prepare(self.driver, tables.AUDIT, guard)
            self._mac_key = self.keyring.derive(_MAC_PURPOSE)
            self._ready = True

    def _mac(self, seq: int, entry_hash: str) -> str:
        return hmac.new(self._mac_key, f"{seq}:{entry_hash}".encode(), "sha256").hexdigest()

    def _sign(self, seq: int, entry_hash: str) -> Checkpoint:
        return Checkpoint(seq, entry_hash, self._mac(seq, entry_hash))

    def _authentic(self, text: str | None) -> Checkpoint | None:
        """Return the stored checkpoint if its HMAC holds, else None."""
        checkpoint = Checkpoint.parse(text) if text is not None else None
        if checkpoint is None or not hmac.compare_digest(
            checkpoint.mac, self._mac(checkpoint.seq, checkpoint.entry_hash)
        ):
            return None
        return checkpoint

    def _head_of(self, rows: Sequence[Row]) -> tuple[int, str]:
        """Return the (seq, hash) to chain after, from the checkpoint read under the lock; refuse a head
        that does not authenticate, since extending it would sign whatever was done to the chain."""
        text, last = rows[0]
        if text is None:
            if last is None:
                return 0, GENESIS
            raise AuditTampered(
                f"{self._where} holds entries up to seq {last} but no head checkpoint, so a cut-off end "
                "could not be told; run `prism audit verify`, and `prism audit checkpoint` once if the "
                "log was written before checkpoints existed"
            )
        checkpoint = self._authentic(str(text))
        if checkpoint is None:
            raise AuditTampered(
                f"{self._where}: the head checkpoint does not authenticate (forged, or made under another "
                "index root key); no entry is appended to a chain that may have been changed; run "
                "`prism audit verify`"
            )
        if last is not None and int(last) > checkpoint.seq:
            raise AuditTampered(
                f"{self._where} holds entries past the authenticated head (seq {checkpoint.seq}, stored up to "
                f"{last}): written around Prism, or the checkpoint was rolled back; run `prism audit verify`"
            )
        # Entries cut off below the checkpoint stay a gap before the new ones: verify keeps reporting it.
        return checkpoint.seq, checkpoint.entry_hash

    def _extend(
        self, rows: Sequence[Row], events: Sequence[AuditEvent], who: Actor, made: list[AuditEntry]
    ) -> list[Statement]:
        """Chain `events` after the head in `rows`; return the inserts and the new signed checkpoint."""
        entries = self._chain(events, who, self._head_of(rows))
        made[:] = entries
        last = self._sign(entries[-1].seq, entries[-1].entry_hash)
        return [
            (self._insert, [tuple(getattr(e, c) for c in _COLUMNS) for e in entries]),
            (self._save_checkpoint, [(CHECKPOINT, last.text())]),
        ]

    async def append(self, events: Sequence[AuditEvent]) -> list[AuditEntry]:
        """Chain and store `events` atomically."""
        return await self.append_with(events, None)

    async def append_with(self, events: Sequence[AuditEvent], write: Write | None) -> list[AuditEntry]:
        """Chain `events` and store them in the same transaction as the data `write` makes, or by themselves.

        `write(after)` must run its own statements and then `after` in one transaction, so a write of an
        audited field and its audit entries are stored together or not at all. The entries are built in
        that transaction from the head read under the chain's lock, so concurrent writers (in this process
        or others) queue instead of colliding. Only a write that lost to contention (Contention: a lock
        wait timed out, a deadlock) is tried again, a few times after jittered pauses; anything else is
        raised as it is.
        """
        if not events:
            if write is not None:
                await write(())
            return []
        await self.ready()
        who = current_actor()
        made: list[AuditEntry] = []
        chained = Chained(self._lock_sql, self._head, lambda rows: self._extend(rows, events, who, made))
        for attempt in range(_ATTEMPTS):
            try:
                if write is None:
                    await self.driver.execute_many(self._insert, (), namespace="prism_audit", after=[chained])
                else:
                    await write([chained])
            except Contention:
                if attempt == _ATTEMPTS - 1:
                    raise
                await pause(random.uniform(0, _PAUSE * 2**attempt))
                continue
            pii_event("audit_entries", len(made))
            return list(made)
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

    async def entries(
        self, *, after_seq: int = 0, since: str | None = None, until_seq: int | None = None
    ) -> AsyncIterator[AuditEntry]:
        """Yield stored entries in chain order, after `after_seq` (up to `until_seq`), at or after time `since`."""
        await self.ready()
        q, ph = self.driver.dialect.quote, self.driver.dialect.placeholder
        last = after_seq
        upto = f" AND {q('seq')} <= {ph(2)}" if until_seq is not None else ""
        while True:
            rows = await self.driver.fetch(
                f"{self._select} WHERE {q('seq')} > {ph(1)}{upto} ORDER BY {q('seq')} LIMIT {_PAGE}",
                (last,) if until_seq is None else (last, until_seq),
                namespace="prism_audit",
            )
            for row in rows:
                entry = AuditEntry(**{c: _typed(c, v) for c, v in zip(_COLUMNS, row, strict=True)})
                last = entry.seq
                if since is None or entry.at >= since:
                    yield entry
            if len(rows) < _PAGE:
                return

    async def verify(self, known: tuple[int, str] | None = None) -> VerifyResult:
        """Walk the chain from the start; report the first entry that is missing, moved or altered, and a
        chain that does not reach its authenticated head checkpoint (entries cut off the end).

        `known` is a (seq, entry hash) kept outside the database, e.g. the last line of `prism audit export`:
        the chain must still hold it, which also catches both tables put back to an older state together.
        """
        walk = _Walk(known[0] if known else 0)
        bad = await walk.over(self.entries())
        if bad is not None:
            return bad
        # Read after the walk: every entry walked was committed before it, with a checkpoint at least as far.
        rows = await self.driver.fetch(self._read_checkpoint, (), namespace="prism_audit")
        stored = str(rows[0][0]) if rows else None
        checkpoint = self._authentic(stored) if stored is not None else None
        if stored is None and walk.count:
            return walk.result(
                walk.last + 1,
                f"there is no head checkpoint, so entries after {walk.last} may have been removed "
                "(`prism audit checkpoint` signs the head of a log written before checkpoints existed)",
            )
        if stored is not None and checkpoint is None:
            return walk.result(
                walk.last + 1, "the head checkpoint does not authenticate (forged or replaced)"
            )
        if checkpoint is not None:
            if checkpoint.seq < walk.last:
                return walk.result(
                    checkpoint.seq + 1,
                    f"entries {checkpoint.seq + 1}..{walk.last} are past the authenticated head (seq "
                    f"{checkpoint.seq}): the checkpoint was rolled back, or they were written around Prism",
                )
            # Entries appended while the walk ran are read now, as far as the checkpoint.
            bad = await walk.over(self.entries(after_seq=walk.last, until_seq=checkpoint.seq))
            if bad is not None:
                return bad
            if walk.last < checkpoint.seq:
                return walk.result(
                    walk.last + 1,
                    f"the chain ends at entry {walk.last} but its authenticated head is seq {checkpoint.seq}: "
                    f"entries {walk.last + 1}..{checkpoint.seq} were removed",
                )
            if walk.prev != checkpoint.entry_hash:
                return walk.result(
                    checkpoint.seq, "the entry does not match the authenticated head checkpoint"
                )
        if known is not None:
            if walk.last < known[0]:
                return walk.result(
                    walk.last + 1,
                    f"the chain ends at entry {walk.last}, before the checkpoint given (seq {known[0]})",
                )
            if walk.watched != known[1]:
                return walk.result(known[0], "the entry does not match the checkpoint given")
        return VerifyResult(walk.count)

    async def sign_head(self) -> VerifyResult:
        """Verify the whole chain, then store a checkpoint of its head, for a log kept before checkpoints
        existed; refuse when a checkpoint is stored already (verify says whether it holds)."""
        walk = _Walk(0)
        bad = await walk.over(self.entries())
        if bad is not None:
            return bad

        def sign(rows: Sequence[Row]) -> list[Statement]:
            text, last = rows[0]
            if text is not None:
                raise AuditTampered(f"{self._where}: a head checkpoint is stored already; verify checks it")
            if (0 if last is None else int(last)) != walk.last:
                raise AuditTampered(f"{self._where}: entries were appended during the walk; run it again")
            return [(self._save_checkpoint, [(CHECKPOINT, self._sign(walk.last, walk.prev).text())])]

        chained = Chained(self._lock_sql, self._head, sign)
        await self.driver.execute_many(self._insert, (), namespace="prism_audit", after=[chained])
        return VerifyResult(walk.count)


class _Walk:
    """The state of one walk along the chain, which may go on in more than one stretch."""

    def __init__(self, watch: int) -> None:
        self.expected, self.prev, self.count = 1, GENESIS, 0
        self.watch, self.watched = watch, ""

    @property
    def last(self) -> int:
        """Return the seq of the last entry walked (0 before the first)."""
        return self.expected - 1

    def result(self, seq: int, reason: str) -> VerifyResult:
        """Return a failed result at `seq`."""
        return VerifyResult(self.count, seq, reason)

    async def over(self, entries: AsyncIterator[AuditEntry]) -> VerifyResult | None:
        """Check the entries that follow; return the first failure, or None."""
        async for entry in entries:
            self.count += 1
            if entry.seq != self.expected:
                return self.result(self.expected, f"entry {self.expected} is missing (next is {entry.seq})")
            if entry.prev_hash != self.prev:
                return self.result(entry.seq, "prev_hash does not match the previous entry's hash")
            if entry.expected_hash() != entry.entry_hash:
                return self.result(entry.seq, "entry_hash does not match the entry's contents")
            if entry.seq == self.watch:
                self.watched = entry.entry_hash
            self.prev, self.expected = entry.entry_hash, self.expected + 1
        return None


def _typed(column: str, value: Any) -> Any:
    if column in ("seq", "field", "key_id"):
        return int(value)
    return str(value)
