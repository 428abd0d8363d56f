"""The Streams page: each planned Kafka topic and NATS stream against what its broker has."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prism_runtime.provision_streams import survey_streams
from protoc_gen_prism.admin.deployment import Deployment
from protoc_gen_prism.admin.sources.databases import problem
from protoc_gen_prism.cli.compile.plan import summary

BROKER_SECONDS = 15.0
"""How long a page waits for the brokers before saying they did not answer."""


@dataclass(frozen=True)
class StreamRow:
    """One planned topic or stream: its plan, and what provisioning would do about the broker's copy."""

    backend: str
    name: str
    namespace: str
    planned: str
    action: str  # create, update, unchanged
    records: int | None  # None: not on the broker yet
    details: tuple[str, ...]
    refused: tuple[str, ...]


@dataclass(frozen=True)
class StreamsView:
    """The page: its rows, and what could not be read."""

    rows: list[StreamRow]
    problem: str = ""


async def streams(deployment: Deployment) -> StreamsView:
    """Compare the plan's topics and streams with the brokers of the config."""
    plan = deployment.plan
    if plan is None:
        return StreamsView([], deployment.plan_problem)
    if not plan.streams:
        return StreamsView([], "the plan has no Kafka topic and no NATS stream")
    settings = {e["namespace"]: summary(e["settings"]) for e in plan.document["entities"]}
    namespace_of = {s.settings.name: s.namespace for s in plan.streams}
    try:
        surveyed = await asyncio.wait_for(survey_streams(plan.streams, deployment.config), BROKER_SECONDS)
    except TimeoutError:
        return StreamsView([], f"the brokers did not answer within {BROKER_SECONDS:g} s")
    except Exception as error:
        return StreamsView([], problem(error))
    rows = []
    for found in surveyed:
        c = found.change
        namespace = namespace_of.get(c.name, c.name)
        rows.append(
            StreamRow(
                c.backend,
                c.name,
                namespace,
                settings.get(namespace, ""),
                c.action,
                found.records,
                c.details,
                c.refused,
            )
        )
    return StreamsView(rows)
