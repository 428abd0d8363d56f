"""Key rotation: a new key generation, the re-encrypt sweep that moves data onto it, retiring old keys.

`rotate` makes a new key-encryption key current (local master keyset; KMS rotates its own material) and
starts a new data key generation: each subject's next write gets a new data key, while every ciphertext
still names its own key, so old data decrypts as before. `reencrypt` moves existing ciphertext onto the
current generation and re-wraps stored data keys under the current key-encryption key. `retire` then sets
the minimum decryption version and destroys older keys; it refuses while ciphertext still needs them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from prism_runtime.pii import crypto
from prism_runtime.pii.errors import DecryptionError
from prism_runtime.pii.sealer import record_columns
from prism_runtime.pii.vault import Vault
from prism_runtime.schema import EntitySpec
from prism_runtime.sql.names import row_identity, table_name

_PAGE = 500


@dataclass(frozen=True)
class SweepReport:
    """What a re-encrypt sweep (or its dry run) found and did."""

    values_seen: int
    values_moved: int
    keys_rewrapped: int
    unreadable: int  # ciphertexts of forgotten subjects or retired keys: left as they are


async def rotate(vault: Vault) -> tuple[int, str]:
    """Start a new key generation; return it and what the key wrapper did."""
    await vault.ready()
    wrapped = await vault.keyring.wrapper.rotate()
    generation = vault.keyring.generation + 1
    await vault.keyring.set_meta("generation", generation)
    return generation, wrapped


async def _pages(
    vault: Vault, spec: EntitySpec, identity: Sequence[str], columns: Sequence[str]
) -> AsyncIterator[list[Any]]:
    """Yield pages of (identity columns..., columns...) of every row, in identity order."""
    driver = vault.driver
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    select = ", ".join(q(c) for c in (*identity, *columns))
    order = ", ".join(q(k) for k in identity)
    after: tuple[Any, ...] | None = None
    while True:
        where = ""
        if after is not None:
            marks = ", ".join(ph(i + 1) for i in range(len(identity)))
            where = f" WHERE ({order}) > ({marks})" if len(identity) > 1 else f" WHERE {order} > {marks}"
        rows = await driver.fetch(
            f"SELECT {select} FROM {q(table_name(spec))}{where} ORDER BY {order} LIMIT {_PAGE}",
            after or (),
            namespace=spec.namespace,
        )
        if rows:
            yield list(rows)
        if len(rows) < _PAGE:
            return
        after = tuple(rows[-1][: len(identity)])


async def reencrypt(vault: Vault, *, dry_run: bool = False, below: int | None = None) -> SweepReport:
    """Move every ciphertext under a key older than `below` (default: the current generation) onto it."""
    await vault.ready()
    keyring, driver = vault.keyring, vault.driver
    target = keyring.generation if below is None else below
    seen = moved = unreadable = 0
    q, ph = driver.dialect.quote, driver.dialect.placeholder
    for spec in await vault.catalog.entities():
        sealed = [c for c in spec.columns if c.encrypted]
        if not sealed:
            continue
        # Each row is read and updated by its own identity (for a series: key, event time and event id;
        # the key alone would be every event of the series), and its ciphertext's associated data names
        # its record as the row sealer does.
        identity = row_identity(spec)
        width = len(identity)
        read = [*identity, spec.subject_column.name, *(c.name for c in sealed)]
        bound = [read.index(name) for name in record_columns(spec)]
        subject_at = width
        update_sets = ", ".join(f"{q(c.name)} = {ph(i + 1)}" for i, c in enumerate(sealed))
        key_where = " AND ".join(f"{q(name)} = {ph(len(sealed) + i + 1)}" for i, name in enumerate(identity))
        update = f"UPDATE {q(table_name(spec))} SET {update_sets} WHERE {key_where}"
        async for rows in _pages(vault, spec, identity, read[width:]):
            refs = [keyring.subject_ref(r[subject_at]) for r in rows]
            wanted = {
                (ref, crypto.key_id_of(bytes(blob)))
                for ref, row in zip(refs, rows, strict=True)
                for blob in row[width + 1 :]
                if blob
            }
            keys = await keyring.keys_for(wanted)
            primaries = {} if dry_run else await keyring.primary_keys(refs)
            for ref, row in zip(refs, rows, strict=True):
                row_context = crypto.row_context(row[subject_at], tuple(row[i] for i in bound))
                values: list[Any] = []
                changed = False
                for column, blob in zip(sealed, row[width + 1 :], strict=True):
                    values.append(blob)
                    if not blob:
                        continue
                    seen += 1
                    key = keys[(ref, crypto.key_id_of(bytes(blob)))]
                    if isinstance(key, DecryptionError):
                        unreadable += 1
                        continue
                    if key.version >= target:
                        continue
                    moved += 1
                    if dry_run:
                        continue
                    context = crypto.field_context(spec.message_name, column.number) + row_context
                    clear = crypto.open_sealed(key.aead, bytes(blob), context)
                    primary = primaries[ref]
                    values[-1] = crypto.seal(primary.aead, primary.key_id, clear, context)
                    changed = True
                if changed:
                    await driver.execute(update, (*values, *row[:width]), namespace=spec.namespace)
    rewrapped = 0 if dry_run else await keyring.rewrap()
    return SweepReport(seen, moved, rewrapped, unreadable)


async def retire(vault: Vault, below: int, *, force: bool = False) -> int:
    """Destroy data keys older than generation `below`; refuse while ciphertext still uses them."""
    await vault.ready()
    if below > vault.keyring.generation:
        raise ValueError(f"generation {below} does not exist yet (current: {vault.keyring.generation})")
    if not force:
        pending = await reencrypt(vault, dry_run=True, below=below)
        if pending.values_moved:
            raise ValueError(
                f"{pending.values_moved} value(s) are still under keys older than generation {below}; "
                f"run `prism keys reencrypt` first (or force, making them unreadable)"
            )
    return await vault.keyring.retire_below(below)
