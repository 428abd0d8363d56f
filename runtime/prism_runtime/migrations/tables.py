"""The migration layer's own tables, and how a row's key is written into them.

- `prism_migrations` (on the control backend: the source when it runs SQL, else the target): the current
  phase of each migrating namespace, who set it and when, and the entity's spec (so `prism backfill` needs no
  generated code).
- `prism_tombstones` (on the target): the keys (or key prefixes) deleted while a backfill may still copy them;
  a backfill's page also claims the keys it copies there (state `claim`, never committed), so a delete and
  the copy of the same key wait for each other instead of passing (see prism_runtime.migrations.transfer).
- `prism_backfill` (on the target): a backfill's checkpoint, the key it has copied up to and its counts.
"""

from __future__ import annotations

import datetime
import hmac
import json
from collections.abc import Sequence
from typing import Any

from prism_runtime.pii.vault import vault_for
from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql.driver import SqlDriver

_S, _I = ColumnKind.STRING, ColumnKind.INT64


def _table(
    name: str, key: str, columns: Sequence[Column], body: str, sort_key: str | None = None
) -> EntitySpec:
    ddl = {
        dialect: (" ".join(body.format(int=integer, text=text).split()).replace("( ", "("),)
        for dialect, integer, text in (
            ("sqlite", "INTEGER", "TEXT"),
            ("postgres", "BIGINT", 'TEXT COLLATE "C"'),
        )
    }
    return EntitySpec(
        namespace=name,
        message_name=f"prism.internal.{name}",
        abstraction=Abstraction.KEY_VALUE,
        key=key,
        sort_key=sort_key,
        columns=tuple(columns),
        ddl=ddl,
    )


CONTROL = _table(
    "prism_migrations",
    "namespace",
    [
        Column("namespace", 1, _S),
        Column("source", 2, _S),
        Column("target", 3, _S),
        Column("phase", 4, _S),
        Column("updated_at", 5, _S),
        Column("updated_by", 6, _S),
        Column("spec", 7, _S),
    ],
    """
    CREATE TABLE IF NOT EXISTS "prism_migrations" (
      "namespace" {text} NOT NULL PRIMARY KEY, "source" TEXT NOT NULL, "target" TEXT NOT NULL,
      "phase" TEXT NOT NULL, "updated_at" TEXT NOT NULL DEFAULT '', "updated_by" TEXT NOT NULL DEFAULT '',
      "spec" TEXT NOT NULL DEFAULT '')
    """,
)

TOMBSTONES = _table(
    "prism_tombstones",
    "namespace",
    [Column("namespace", 1, _S), Column("key", 2, _S), Column("state", 3, _S), Column("deleted_at", 4, _S)],
    """
    CREATE TABLE IF NOT EXISTS "prism_tombstones" (
      "namespace" {text} NOT NULL, "key" {text} NOT NULL, "state" TEXT NOT NULL DEFAULT 'deleted',
      "deleted_at" TEXT NOT NULL DEFAULT '', PRIMARY KEY ("namespace", "key"))
    """,
    sort_key="key",
)

CHECKPOINTS = _table(
    "prism_backfill",
    "namespace",
    [
        Column("namespace", 1, _S),
        Column("after", 2, _S),
        Column("copied", 3, _I),
        Column("skipped", 4, _I),
        Column("total", 5, _I),
        Column("state", 6, _S),
        Column("started_at", 7, _S),
        Column("updated_at", 8, _S),
    ],
    """
    CREATE TABLE IF NOT EXISTS "prism_backfill" (
      "namespace" {text} NOT NULL PRIMARY KEY, "after" TEXT NOT NULL DEFAULT '',
      "copied" {int} NOT NULL DEFAULT 0, "skipped" {int} NOT NULL DEFAULT 0, "total" {int} NOT NULL DEFAULT 0,
      "state" TEXT NOT NULL DEFAULT '', "started_at" TEXT NOT NULL DEFAULT '', "updated_at" TEXT NOT NULL DEFAULT '')
    """,
)


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def key_text(key: Sequence[Any]) -> str:
    """Return a row identity (strings, bytes, integers, datetimes) as text, equal exactly when they are."""
    return _ENCODE([["s", part] if type(part) is str else _tagged(part) for part in key])


def _tagged(part: Any) -> list[Any]:
    if isinstance(part, bytes | bytearray | memoryview):
        return ["b", bytes(part).hex()]
    if isinstance(part, datetime.datetime):
        return ["t", part.isoformat()]
    return ["i" if isinstance(part, int) else "s", part]


def key_of_text(text: str) -> tuple[Any, ...]:
    """Return the identity `key_text` wrote."""
    readers: dict[str, Any] = {"b": bytes.fromhex, "t": datetime.datetime.fromisoformat, "i": int, "s": str}
    return tuple(readers[tag](value) for tag, value in json.loads(text))


DELETED, CLAIM = "deleted", "claim"
"""The states of a prism_tombstones row: a key deleted during the migration; a key a backfill page copies."""


class KeyNames:
    """How row keys are written into prism_tombstones: as they are, or as keyed pseudonyms for an entity with
    PII, so a forgotten subject's key does not stay behind in clear in a tombstone."""

    def __init__(self, spec: EntitySpec, source: SqlDriver) -> None:
        self.spec = spec
        self.source = source
        self._mac: hmac.HMAC | None = None

    async def of(self, keys: Sequence[Sequence[Any]]) -> list[str]:
        """Return the tombstone name of each key."""
        texts = [key_text(k) for k in keys]
        if not self.spec.holds_pii:
            return texts
        if self._mac is None:
            # The source's keyring: the authority on the index root key, which the target gets a copy of.
            keyring = vault_for(self.source).keyring
            await keyring.ready()
            self._mac = hmac.new(keyring.derive(b"prism migration key name/1"), digestmod="sha256")
        out = []
        for text in texts:
            mac = self._mac.copy()
            mac.update(text.encode())
            out.append("k_" + mac.hexdigest()[:40])
        return out
