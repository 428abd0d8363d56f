"""Forget a data subject (right to be forgotten): crypto-shred its keys, delete its rows, say what was done.

Destroying the subject's data keys makes every copy of its ciphertext unreadable, including those in
stream logs and backups that cannot be edited; the rows Prism can reach are deleted too (their blind
indexes go with them). The receipt names the subject only by its pseudonymous ref.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prism_runtime.pii.audit import AuditEvent
from prism_runtime.pii.vault import Vault, vault_for
from prism_runtime.sql.driver import SqlDriver

if TYPE_CHECKING:
    from prism_runtime.database import Database


@dataclass(frozen=True)
class Erasure:
    """What was erased in one namespace."""

    namespace: str
    message: str
    rows_deleted: int


@dataclass(frozen=True)
class ForgetReceipt:
    """The record of one `forget`: per namespace, and for the keys."""

    subject_ref: str
    at: str
    backend: str
    keys_destroyed: int
    erasures: tuple[Erasure, ...]
    audit_seqs: tuple[int, ...]

    def lines(self) -> list[str]:
        """Return the receipt as lines of text for people."""
        out = [f"forgot subject {self.subject_ref} on {self.backend} at {self.at}"]
        out.append(
            f"  keys destroyed: {self.keys_destroyed} (every ciphertext of the subject is now unreadable)"
        )
        for e in self.erasures:
            out.append(
                f"  {e.namespace} ({e.message}): {e.rows_deleted} row(s) deleted, blind indexes with them"
            )
        if self.audit_seqs:
            out.append(f"  audit entries: {', '.join(str(s) for s in self.audit_seqs)}")
        return out


def sql_drivers(db: Database) -> list[SqlDriver]:
    """Return the open backends of `db` that speak SQL (where keys, audit and catalog live)."""
    found: list[Any] = [b for b in db.backends() if hasattr(b, "dialect") and hasattr(b, "fetch")]
    return found


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
    )


async def forget_on(vault: Vault, subject: str | bytes | int) -> ForgetReceipt:
    """Forget `subject` on one backend."""
    await vault.ready()
    driver, keyring = vault.driver, vault.keyring
    ref = keyring.subject_ref(subject)
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    erasures = []
    events = []
    for spec in await vault.catalog.entities():
        column = spec.subject_column.name
        deleted = await driver.execute(
            f"DELETE FROM {q(spec.namespace)} WHERE {q(column)} = {ph(1)}",
            (subject,),
            namespace=spec.namespace,
        )
        erasures.append(Erasure(spec.namespace, spec.message_name, deleted))
        events.append(AuditEvent("erase", spec.message_name, 0, "", ref, "", outcome="ok"))
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
    )
