"""Forget a data subject (right to be forgotten): crypto-shred its keys, delete its rows, say what was done.

Destroying the subject's data keys makes every copy of its ciphertext unreadable, including those in
stream logs and backups that cannot be edited; the rows Prism can reach are deleted too, in every entity
of the catalog, encrypted or in clear (their blind indexes go with them). Records on a stream are kept:
the receipt says so for each stream namespace, "not erasable: <reason>" when pii fields there are in
clear. The receipt names the subject only by its pseudonymous ref.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prism_runtime.backends.registry import runs_sql
from prism_runtime.pii.audit import AuditEvent
from prism_runtime.pii.catalog import CatalogEntry
from prism_runtime.pii.vault import Vault, vault_for
from prism_runtime.schema import ColumnKind, EntitySpec
from prism_runtime.sql.driver import SqlDriver
from prism_runtime.sql.names import table_name

if TYPE_CHECKING:
    from prism_runtime.database import Database


@dataclass(frozen=True)
class Erasure:
    """What was erased in one namespace's table (its name is the namespace)."""

    namespace: str
    message: str
    rows_deleted: int
    blind_indexes: bool = False


@dataclass(frozen=True)
class Kept:
    """A namespace on a stream backend, whose log Prism cannot edit: its records stay."""

    namespace: str
    message: str
    backend: str
    # The pii fields stored there in clear, and why (the schema's plaintext_reason); none: only ciphertext
    # is kept, unreadable now that the keys are destroyed.
    plaintext_fields: tuple[str, ...] = ()
    reason: str = ""

    @property
    def erasable(self) -> bool:
        """Return whether forget made the kept records unreadable (no pii field is in clear)."""
        return not self.plaintext_fields

    def line(self) -> str:
        """Return the receipt line of the namespace."""
        head = f"  {self.namespace} ({self.message}) on {self.backend}"
        if self.erasable:
            return f"{head}: records kept, their encrypted fields unreadable (keys destroyed)"
        return f"{head}: not erasable: {self.reason} (pii in clear in the log: {', '.join(self.plaintext_fields)})"


@dataclass(frozen=True)
class ForgetReceipt:
    """The record of one `forget`: per namespace, and for the keys."""

    subject_ref: str
    at: str
    backend: str
    keys_destroyed: int
    erasures: tuple[Erasure, ...]
    audit_seqs: tuple[int, ...]
    kept: tuple[Kept, ...] = ()

    @property
    def not_erasable(self) -> tuple[Kept, ...]:
        """Return the stream namespaces still holding the subject's pii in clear."""
        return tuple(k for k in self.kept if not k.erasable)

    def lines(self) -> list[str]:
        """Return the receipt as lines of text for people."""
        out = [f"forgot subject {self.subject_ref} on {self.backend} at {self.at}"]
        out.append(
            f"  keys destroyed: {self.keys_destroyed} (every ciphertext of the subject is now unreadable)"
        )
        for e in self.erasures:
            indexes = ", blind indexes with them" if e.blind_indexes else ""
            out.append(f"  {e.namespace} ({e.message}): {e.rows_deleted} row(s) deleted{indexes}")
        out.extend(k.line() for k in self.kept)
        if self.audit_seqs:
            out.append(f"  audit entries: {', '.join(str(s) for s in self.audit_seqs)}")
        return out


# The values each integer column kind can hold: a subject outside them names no row there.
_INTEGERS = {
    ColumnKind.INT32: range(-(2**31), 2**31),
    ColumnKind.INT64: range(-(2**63), 2**63),
    ColumnKind.UINT64: range(0, 2**64),
}


def subject_value(subject: str | bytes | int, kind: ColumnKind) -> str | bytes | int | None:
    """Return the subject as a column of `kind` holds it, or None when no row of that column can name it.

    Entities keyed by different types share one catalog: `forget 42` reaches an integer subject column
    (the text of an integer is the integer) and a text one alike, and `forget u1` skips integer columns
    instead of failing on a server that types its parameters.
    """
    held = _INTEGERS.get(kind)
    if held is not None:
        if not isinstance(subject, int):
            text = subject.decode("ascii", "replace") if isinstance(subject, bytes) else subject
            if not re.fullmatch(r"-?[0-9]{1,20}", text):
                return None
            subject = int(text)
        return subject if subject in held else None
    if kind is ColumnKind.STRING:
        if not isinstance(subject, bytes):
            return str(subject)
        try:
            return subject.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if kind is ColumnKind.BYTES:
        return subject if isinstance(subject, bytes) else str(subject).encode()
    return None


def sql_drivers(db: Database) -> list[SqlDriver]:
    """Return the open backends of `db` that speak SQL (where keys, audit and catalog live)."""
    return [b for b in db.backends() if runs_sql(b)]


async def forget(db: Database, subject: str | bytes | int) -> ForgetReceipt:
    """Forget `subject` on every backend of `db`; return the receipt (of the last backend, merged)."""
    receipts = [await forget_on(vault_for(driver), subject) for driver in sql_drivers(db)]
    if not receipts:
        raise ValueError("forget needs an open database with an SQL backend")
    first = receipts[0]
    return ForgetReceipt(
        subject_ref=first.subject_ref,
        at=first.at,
        backend=", ".join(r.backend for r in receipts),
        keys_destroyed=sum(r.keys_destroyed for r in receipts),
        erasures=tuple(e for r in receipts for e in r.erasures),
        audit_seqs=tuple(s for r in receipts for s in r.audit_seqs),
        kept=tuple(k for r in receipts for k in r.kept),
    )


async def forget_on(vault: Vault, subject: str | bytes | int) -> ForgetReceipt:
    """Forget `subject` on one backend."""
    await vault.ready()
    driver, keyring = vault.driver, vault.keyring
    ref = keyring.subject_ref(subject)
    erasures: list[Erasure] = []
    kept: list[Kept] = []
    events: list[AuditEvent] = []
    before, after = driver.dialect.erasing()
    for statement in before:
        await driver.execute(statement, (), namespace="prism_entities")
    try:
        for entry in await vault.catalog.entries():
            if entry.stored_on:
                kept.append(_kept(entry))
                outcome = "records kept, keys destroyed" if kept[-1].erasable else "not erasable"
            else:
                erasures.append(await _delete_rows(driver, entry.spec, subject))
                outcome = "ok"
            events.append(AuditEvent("erase", entry.spec.message_name, 0, "", ref, "", outcome=outcome))
    finally:
        for statement in after:
            await driver.execute(statement, (), namespace="prism_entities")
    destroyed = await keyring.destroy(ref)
    events.append(AuditEvent("erase", "prism.keys", 0, "", ref, "", outcome=f"{destroyed} key(s) destroyed"))
    entries = await vault.audit.append(events)
    return ForgetReceipt(
        subject_ref=ref,
        at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        backend=driver.name,
        keys_destroyed=destroyed,
        erasures=tuple(erasures),
        audit_seqs=tuple(e.seq for e in entries),
        kept=tuple(kept),
    )


async def _delete_rows(driver: SqlDriver, spec: EntitySpec, subject: str | bytes | int) -> Erasure:
    """Delete the subject's rows of one table, whether its pii is encrypted or in clear (see docs/pii.md)."""
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    column = spec.subject_column
    value = subject_value(subject, column.kind)
    deleted = 0
    if value is not None:
        deleted = await driver.execute(
            f"DELETE FROM {q(table_name(spec))} WHERE {q(column.name)} = {ph(1)}",
            (driver.dialect.encoder(column)(value),),
            namespace=spec.namespace,
        )
    return Erasure(spec.namespace, spec.message_name, deleted, any(c.blind_index_of for c in spec.columns))


def _kept(entry: CatalogEntry) -> Kept:
    """Describe a stream namespace: its records stay; any pii there in clear is not erasable."""
    spec = entry.spec
    plaintext = tuple(c.name for c in spec.columns if c.pii and not c.encrypted)
    if not plaintext:
        return Kept(spec.namespace, spec.message_name, entry.stored_on)
    reasons = dict.fromkeys(
        c.plaintext_reason for c in spec.columns if c.name in plaintext and c.plaintext_reason
    )
    reason = "; ".join(reasons) or "no (prism.plaintext_reason) recorded"
    return Kept(spec.namespace, spec.message_name, entry.stored_on, plaintext, reason)
