"""The `prism_entities` table: which entities on a backend hold PII, with their storage contract.

Every entity with a pii field is listed, encrypted or in clear. Stores register themselves when they first
touch the backend, so `forget` and the key sweep can reach every namespace from the command line, with no
generated code at hand. An entity served by a stream backend (Kafka, NATS) is listed on its keys' SQL
backend, marked with the stream's kind: it has no table there, and its log cannot be edited.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from prism_runtime.pii import tables
from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql.driver import SqlDriver


@dataclass(frozen=True)
class CatalogEntry:
    """One registered entity: its contract, and the stream kind serving it ("" when on this SQL backend)."""

    spec: EntitySpec
    stored_on: str = ""


def spec_to_json(spec: EntitySpec, stored_on: str = "") -> str:
    """Serialise the parts of a spec the PII layer needs, deterministically."""
    body: dict[str, Any] = {
        "namespace": spec.namespace,
        "message_name": spec.message_name,
        "abstraction": spec.abstraction.value,
        "key": spec.key,
        "sort_key": spec.sort_key,
        "event_time": spec.event_time,
        "subject": spec.subject,
        "columns": [asdict(c) for c in spec.columns],
    }
    if stored_on:
        body["stored_on"] = stored_on
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def entry_from_json(text: str) -> CatalogEntry:
    """Rebuild an entry written by `spec_to_json` (entries written before streams were listed have no kind)."""
    body: dict[str, Any] = json.loads(text)
    return CatalogEntry(_spec(body), str(body.get("stored_on", "")))


def spec_from_json(text: str) -> EntitySpec:
    """Rebuild a spec written by `spec_to_json`."""
    return entry_from_json(text).spec


_COLUMN_FIELDS = frozenset(f.name for f in fields(Column))


def _spec(body: dict[str, Any]) -> EntitySpec:
    # Column attributes a newer Prism wrote and this one does not know are left out, not an error: one
    # catalog serves every version of the processes sharing the database.
    columns = tuple(
        Column(
            **{k: v for k, v in c.items() if k in _COLUMN_FIELDS and k != "kind"}, kind=ColumnKind(c["kind"])
        )
        for c in body["columns"]
    )
    return EntitySpec(
        namespace=body["namespace"],
        message_name=body["message_name"],
        abstraction=Abstraction(body["abstraction"]),
        key=body["key"],
        sort_key=body["sort_key"],
        event_time=body.get("event_time"),
        subject=body["subject"],
        columns=columns,
    )


class Catalog:
    """The entities with PII on one SQL backend."""

    def __init__(self, driver: SqlDriver) -> None:
        self.driver = driver
        self._ready = False
        self._known: dict[str, str] = {}

    async def _prepare(self) -> None:
        if not self._ready:
            await tables.prepare(self.driver, tables.ENTITIES)
            self._ready = True

    async def register(self, spec: EntitySpec, stored_on: str = "") -> None:
        """Record (or update) `spec`, served by the stream kind `stored_on` or else by this backend.

        A no-op when this process already did.
        """
        text = spec_to_json(spec, stored_on)
        if self._known.get(spec.namespace) == text:
            return
        await self._prepare()
        q, ph = self.driver.dialect.quote, self.driver.dialect.placeholder
        await self.driver.execute(
            f"INSERT INTO {q(tables.ENTITIES.namespace)} ({q('namespace')}, {q('message_name')}, {q('spec')}) "
            f"VALUES ({ph(1)}, {ph(2)}, {ph(3)}) ON CONFLICT ({q('namespace')}) DO UPDATE SET "
            f"{q('message_name')} = excluded.{q('message_name')}, {q('spec')} = excluded.{q('spec')}",
            (spec.namespace, spec.message_name, text),
            namespace=spec.namespace,
        )
        self._known[spec.namespace] = text

    async def entities(self) -> list[EntitySpec]:
        """Return the registered specs whose rows live on this backend, by namespace."""
        return [e.spec for e in await self.entries() if not e.stored_on]

    async def entries(self) -> list[CatalogEntry]:
        """Return every registered entity, stream ones included, by namespace."""
        await self._prepare()
        q = self.driver.dialect.quote
        rows = await self.driver.fetch(
            f"SELECT {q('spec')} FROM {q(tables.ENTITIES.namespace)} ORDER BY {q('namespace')}",
            (),
            namespace="prism_entities",
        )
        return [entry_from_json(str(r[0])) for r in rows]
