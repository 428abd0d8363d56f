"""The Keys page: the key wrapper, generations and rotation state, forgotten subjects; and rotation."""

from __future__ import annotations

from dataclasses import dataclass

from prism_runtime.pii import rotation
from prism_runtime.pii.keyring import FORGOTTEN, KeyCensus
from protoc_gen_prism.admin.deployment import Deployment
from protoc_gen_prism.admin.sources.audit import record_action, url_at
from protoc_gen_prism.admin.sources.databases import problem
from protoc_gen_prism.cli.ops.database import open_vault


@dataclass(frozen=True)
class KeysView:
    """One SQL database's keys."""

    index: int
    backend: str
    census: KeyCensus | None = None
    problem: str = ""

    @property
    def forgotten(self) -> int:
        """Return how many data subjects were forgotten (their keys destroyed)."""
        return self.census.subjects_by_state.get(FORGOTTEN, 0) if self.census else 0

    @property
    def behind(self) -> int:
        """Return how many live data keys are of a generation older than the current one."""
        if self.census is None:
            return 0
        return sum(n for g, n in self.census.live_by_generation.items() if g < self.census.generation)


async def keys(deployment: Deployment) -> list[KeysView]:
    """Count the keys of each SQL database."""
    views = []
    for index, url in enumerate(deployment.sql_urls):
        try:
            async with open_vault(url.url) as (_, vault):
                views.append(KeysView(index, url.redacted, await vault.keyring.census()))
        except Exception as error:
            views.append(KeysView(index, url.redacted, problem=problem(error)))
    return views


async def rotate(deployment: Deployment, index: int) -> str:
    """Start a new key generation on database number `index`, as `prism keys rotate` does; audit it."""
    url = url_at(deployment, index)
    async with open_vault(url.url) as (_, vault):
        generation, wrapper = await rotation.rotate(vault)
        await record_action(
            vault, deployment.settings.actor, "admin.keys.rotate", f"rotate keys to {generation}"
        )
    return f"data key generation {generation} is primary; {wrapper}"
