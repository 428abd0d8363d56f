"""The Audit page: the chain's verification, its newest entries a page at a time, export, and the admin's own
actions written into it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from prism_runtime.config import BackendUrl
from prism_runtime.pii.audit import AuditEntry, AuditEvent, VerifyResult, actor
from prism_runtime.pii.vault import Vault
from protoc_gen_prism.admin.deployment import Deployment
from protoc_gen_prism.admin.sources.databases import problem
from protoc_gen_prism.cli.ops.audit import export_lines
from protoc_gen_prism.cli.ops.database import open_vault

PAGE = 25
ADMIN_MESSAGE = "prism.admin"
"""What the audit's message column holds for an action taken in the admin."""


@dataclass(frozen=True)
class AuditView:
    """One SQL database's audit log: the verification, a page of entries (newest first) and paging."""

    index: int
    backend: str
    verified: VerifyResult | None = None
    entries: tuple[AuditEntry, ...] = ()
    older: int | None = None  # the `before` of the next page back
    newer: int | None = None
    problem: str = ""


async def audit(deployment: Deployment, before: int | None = None) -> list[AuditView]:
    """Read each database's page of entries just below seq `before`; on the newest page (no `before`), first
    verify the whole chain, which walks every entry (about 50 us each): older pages skip it."""
    views = []
    for index, url in enumerate(deployment.sql_urls):
        try:
            async with open_vault(url.url) as (_, vault):
                verified = await vault.audit.verify() if before is None else None
                # Entries are numbered from 1; a chain with a gap is flagged by the verification above them.
                upto = verified.entries if verified is not None else max(0, (before or 1) - 1)
                low = max(0, upto - PAGE)
                entries = [e async for e in vault.audit.entries(after_seq=low, until_seq=upto)]
        except Exception as error:
            views.append(AuditView(index, url.redacted, problem=problem(error)))
            continue
        views.append(
            AuditView(
                index,
                url.redacted,
                verified,
                tuple(reversed(entries)),
                older=low + 1 if low > 0 else None,
                newer=upto + PAGE + 1 if before is not None else None,
            )
        )
    return views


def url_at(deployment: Deployment, index: int) -> BackendUrl:
    """Return the SQL database number `index` of the deployment; IndexError when there is none."""
    return deployment.sql_urls[index]


async def export(url: BackendUrl) -> AsyncIterator[str]:
    """Yield the JSON lines `prism audit export` prints, each with its newline."""
    async with open_vault(url.url) as (_, vault):
        async for line in export_lines(vault.audit):
            yield line + "\n"


async def record_action(vault: Vault, who: str, action: str, purpose: str) -> AuditEntry:
    """Append one entry for an action taken in the admin, attributed to the admin's actor."""
    with actor(who, purpose):
        entries = await vault.audit.append(
            [AuditEvent(action=action, message=ADMIN_MESSAGE, field=0, pii="", subject_ref="", record_ref="")]
        )
    return entries[0]
