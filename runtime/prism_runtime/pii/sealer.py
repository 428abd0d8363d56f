"""Encrypted columns at the row level: the one place every SQL backend encrypts, decrypts and audits PII.

The row codec leaves a field's clear value at an encrypted column's position and None at a blind index
column; `seal` turns those into ciphertext and index, `open` turns ciphertext back into the clear value.
A ciphertext's associated data is (message, field number, subject, record key), so one copied to another
row or field does not open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import getitem, itemgetter
from os import urandom
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from prism_runtime.errors import names_entity
from prism_runtime.pii import crypto
from prism_runtime.pii.audit import AuditEvent, Write
from prism_runtime.pii.blind_index import BlindIndex, normalise, purpose
from prism_runtime.pii.errors import DecryptionError, SubjectForgotten
from prism_runtime.pii.keyring import DataKey
from prism_runtime.pii.vault import Vault
from prism_runtime.schema import Abstraction, Column, EntitySpec
from prism_runtime.sql.names import EVENT_ID_COLUMN

Row = Sequence[Any]
FORMAT_V1, OVERHEAD = crypto.FORMAT_V1, crypto.OVERHEAD
_KEY_ID = slice(1, 5)  # the key id's bytes in a ciphertext
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_BIG: Literal["big"] = "big"
_EMPTY = (None, "", b"")


@dataclass(frozen=True)
class _Sealed:
    index: int
    column: Column
    context: bytes
    text: bool  # a string field: stored as UTF-8, given back as str


def record_columns(spec: EntitySpec) -> tuple[str, ...]:
    """Return the columns whose values a ciphertext's associated data binds as its record.

    The record key; for a series, the series key and the event id (a keyed digest of the event, so it
    stands for the event time too, whose stored form differs between backends).
    """
    if spec.abstraction is Abstraction.TIME_SERIES:
        return (spec.key, EVENT_ID_COLUMN)
    return tuple(c.name for c in spec.key_columns)


class ProtectedRows:
    """Seals and opens the PII columns of one entity's rows.

    `columns` names the row's values in order: the entity's columns, then, for a series, its event id.
    """

    def __init__(
        self, spec: EntitySpec, message: type[Message], vault: Vault, columns: Sequence[str]
    ) -> None:
        self.spec = spec
        self.vault = vault
        position = {name: i for i, name in enumerate(columns)}
        fields = message.DESCRIPTOR.fields_by_name
        self._sealed = [
            _Sealed(
                position[c.name],
                c,
                crypto.field_context(spec.message_name, c.number),
                fields[c.name].type == FieldDescriptor.TYPE_STRING,
            )
            for c in spec.columns
            if c.encrypted
        ]
        self._by_field = {s.column.name: s for s in self._sealed}
        self._sealed_at = {s.index: s for s in self._sealed}
        # (position, field associated data, is text) per encrypted column: what the hot loops read.
        self._plan = [(s.index, s.context, s.text) for s in self._sealed]
        self._index_columns = [
            (position[c.name], position[c.blind_index_of], c.blind_index_of)
            for c in spec.columns
            if c.blind_index_of
        ]
        self._audited = [(position[c.name], c) for c in spec.columns if c.audited]
        self._keys = [position[name] for name in record_columns(spec)]
        self._subject = position[spec.subject_column.name]
        self._has_sealed = _any_of([s.index for s in self._sealed])
        self._indexes: dict[str, BlindIndex] = {}
        self._ready = False
        # When the record key is the subject itself (the common case), a row's (ref, associated data tail)
        # depends on the subject alone: cached per subject, bounded like the keyring's pseudonyms.
        self._subject_is_key = self._keys == [self._subject]
        self._row_info: dict[Any, tuple[str, bytes]] = {}

    @names_entity
    async def ready(self) -> None:
        """Load keys, register the entity in the catalog, derive the blind index keys."""
        if self._ready:
            return
        await self.vault.ready()
        await self.vault.catalog.register(self.spec)
        keyring = self.vault.keyring
        for c in self.spec.columns:
            if c.searchable:
                self._indexes[c.name] = BlindIndex(keyring.derive(purpose(self.spec.message_name, c.number)))
        self._ready = True

    def _tail(self, row: Row) -> bytes:
        """Return the row's part of the associated data: (subject, record key), typed and length-prefixed."""
        return crypto.row_context(row[self._subject], self._record_key(row))

    def _refs_and_tails(self, rows: Sequence[Row]) -> tuple[list[str], list[bytes]]:
        """Return each row's subject ref and associated data tail (see `_tail`)."""
        subject_ref, subject = self.vault.keyring.subject_ref, self._subject
        if not self._subject_is_key:
            return [subject_ref(row[subject]) for row in rows], [self._tail(row) for row in rows]
        info, row_context = self._row_info, crypto.row_context
        known_all = list(map(info.get, map(itemgetter(subject), rows)))
        if all(known_all):  # every subject seen before: C-level passes only
            return list(map(_FIRST, known_all)), list(map(_SECOND, known_all))  # type: ignore[arg-type]
        refs: list[str] = []
        tails: list[bytes] = []
        for row in rows:
            value = row[subject]
            known = info.get(value)
            if known is None:
                known = (subject_ref(value), row_context(value, (value,)))
                if len(info) > 100_000:
                    info.clear()
                info[value] = known
            refs.append(known[0])
            tails.append(known[1])
        return refs, tails

    def _record_key(self, row: Row) -> tuple[Any, ...]:
        if len(self._keys) == 1:
            return (row[self._keys[0]],)
        return tuple(row[i] for i in self._keys)

    # -- writing -----------------------------------------------------------------------------------

    @names_entity
    async def seal(self, rows: Sequence[Row]) -> tuple[list[tuple[Any, ...]], list[AuditEvent]]:
        """Return the rows with ciphertext and blind indexes in place, and the write events to audit."""
        await self.ready()
        keyring = self.vault.keyring
        plan = self._plan
        refs, tails = self._refs_and_tails(rows)
        # One key per row that has something to seal (a row with none makes no key for its subject).
        has_sealed = list(self._has_sealed(rows))
        if all(has_sealed):
            row_keys: list[DataKey | None] = list(await keyring.primaries_for(refs))
        else:
            made = iter(await keyring.primaries_for(list(compress(refs, has_sealed))))
            row_keys = [next(made) if there else None for there in has_sealed]
        sealed_rows: list[tuple[Any, ...]] = []
        events: list[AuditEvent] = []
        index_columns, indexes, audited = self._index_columns, self._indexes, self._audited
        # Random nonces for the whole batch from one read of the OS generator, instead of one per field:
        # each field still gets its own fresh 12 bytes.
        pool = urandom(crypto.NONCE_SIZE * len(plan) * len(rows))
        at = 0
        # The loop below is the per-field cost every put pays: crypto.seal inlined, attributes hoisted.
        for ref, tail, key, row in zip(refs, tails, row_keys, rows, strict=True):
            values = list(row)
            if key is not None:
                prefix, encrypt = key.prefix, key.aead.encrypt
            for index, context, text in plan:
                value = values[index]
                if not value:
                    if value is not None:
                        values[index] = b""  # the zero value: nothing personal to hide
                    continue
                nonce = pool[at : at + 12]
                at += 12
                values[index] = (
                    prefix
                    + nonce
                    + encrypt(nonce, value.encode() if text else bytes(value), prefix + context + tail)
                )
            for index, source, name in index_columns:
                value = row[source]
                values[index] = indexes[name](value) if value else None
            if audited:
                events += self._events("write", ref, row, key.key_id if key else 0)
            sealed_rows.append(tuple(values))
        return sealed_rows, events

    def _events(self, action: str, ref: str, row: Row, key_id: int, outcome: str = "ok") -> list[AuditEvent]:
        record = self.vault.keyring.record_ref(self._record_key(row))
        return [
            AuditEvent(
                action="decrypt" if action == "read" and c.encrypted else action,
                message=self.spec.message_name,
                field=c.number,
                pii=c.pii,
                subject_ref=ref,
                record_ref=record,
                outcome=outcome,
                key_id=key_id if c.encrypted else 0,
            )
            for _, c in self._audited
        ]

    @names_entity
    async def record(self, events: Sequence[AuditEvent]) -> None:
        """Append events to the audit log."""
        if events:
            await self.vault.audit.append(events)

    @names_entity
    async def write_audited(self, events: Sequence[AuditEvent], write: Write) -> None:
        """Run the data `write`, storing the audit entries of `events` in its transaction."""
        await self.vault.audit.append_with(events, write)

    # -- reading -----------------------------------------------------------------------------------

    @names_entity
    async def open(
        self, rows: Sequence[Row], *, skip_forgotten: bool = False, action: str = "read"
    ) -> list[Row]:
        """Return the rows with clear values in place of ciphertext; audit the reads.

        A row whose subject was forgotten raises SubjectForgotten, or is left out with `skip_forgotten`.
        """
        await self.ready()
        keyring = self.vault.keyring
        refs, tails = self._refs_and_tails(rows)
        plan = self._plan
        # One key per row is the rule (a row is sealed at once): the key its first ciphertext names, for every
        # row in one lookup; a row mixing keys (re-encrypt in progress) fetches the others as it meets them.
        firsts = list(map(itemgetter(plan[0][0]), rows))
        if all(firsts):  # the usual batch: every row has its first encrypted field set
            key_ids = map(int.from_bytes, map(getitem, firsts, repeat(_KEY_ID)), repeat(_BIG))
            row_keys: list[DataKey | DecryptionError | None] = list(
                await keyring.keys_in_order(list(zip(refs, key_ids, strict=True)))
            )
        else:
            row_keys = await self._first_keys(rows, refs)
        extra: dict[tuple[str, int], DataKey | DecryptionError] = {}
        opened: list[Row] = []
        events: list[AuditEvent] = []
        audited = self._audited
        # The per-field cost every read pays: crypto.open_sealed inlined. A ciphertext whose 5-byte prefix
        # (format, key id) equals the row's current key's prefix needs no further parsing; the row's first
        # needs only the length check against the key looked up for it.
        for ref, tail, first_key, row in zip(refs, tails, row_keys, rows, strict=True):
            values = list(row)
            key: DataKey | None = None
            prefix = b""
            try:
                for index, context, text in plan:
                    blob = row[index]
                    if not blob:
                        if blob is not None:
                            values[index] = "" if text else b""
                        continue
                    if type(blob) is not bytes:
                        blob = bytes(blob)
                    head = blob[:5]
                    if head != prefix:
                        if (
                            not prefix
                            and type(first_key) is DataKey
                            and head == first_key.prefix
                            and len(blob) >= OVERHEAD
                        ):
                            key = first_key
                        else:
                            if not prefix and first_key is not None:  # what the lookup found, kept
                                extra[(ref, int.from_bytes(blob[1:5], "big"))] = first_key
                            key = await self._key_for(ref, row, index, blob, extra)
                        prefix = head
                        decrypt = key.aead.decrypt
                    try:
                        data = decrypt(blob[5:17], blob[17:], head + context + tail)
                    except InvalidTag:
                        await self._fail(
                            ref,
                            row,
                            self._sealed_at[index],
                            DecryptionError("ciphertext does not belong to this row and field"),
                        )
                    values[index] = data.decode() if text else data
            except SubjectForgotten:
                if skip_forgotten:
                    continue
                raise
            if audited:
                events += self._events(action, ref, row, key.key_id if key else 0)
            opened.append(values)
        await self.record(events)
        return opened

    async def _first_keys(
        self, rows: Sequence[Row], refs: list[str]
    ) -> list[DataKey | DecryptionError | None]:
        """Return the key each row's first ciphertext names (None for a row with none), in one lookup."""
        pairs: list[tuple[str, int] | None] = []
        for ref, row in zip(refs, rows, strict=True):
            pair = None
            for index, _, _ in self._plan:
                blob = row[index]
                if blob:
                    pair = (ref, int.from_bytes(blob[1:5], "big"))
                    break
            pairs.append(pair)
        found = iter(await self.vault.keyring.keys_in_order([p for p in pairs if p is not None]))
        return [None if pair is None else next(found) for pair in pairs]

    async def _key_for(
        self,
        ref: str,
        row: Row,
        index: int,
        blob: bytes,
        keys: dict[tuple[str, int], DataKey | DecryptionError],
    ) -> DataKey:
        """Return the key a ciphertext names, fetching it when the batch lookup did not; fail typed."""
        if blob[0] != crypto.FORMAT_V1 or len(blob) < crypto.OVERHEAD:
            await self._fail(ref, row, self._sealed_at[index], DecryptionError("not a Prism ciphertext"))
        pair = (ref, int.from_bytes(blob[1:5], "big"))
        found = keys.get(pair)
        if found is None:
            keys.update(await self.vault.keyring.keys_for([pair]))
            found = keys[pair]
        if isinstance(found, DecryptionError):
            await self._fail(ref, row, self._sealed_at[index], found)
        assert not isinstance(found, DecryptionError)
        return found

    async def _fail(self, ref: str, row: Row, sealed: _Sealed, error: DecryptionError) -> None:
        if sealed.column.audited:
            await self.record(
                [
                    e
                    for e in self._events("read", ref, row, 0, outcome=type(error).__name__)
                    if e.field == sealed.column.number
                ]
            )
        raise type(error)(
            error.reason, namespace=self.spec.namespace, field=sealed.column.name, subject_ref=ref
        ) from None

    # -- blind indexes -----------------------------------------------------------------------------

    @names_entity
    async def index_of(self, field: str, value: str | bytes) -> bytes:
        """Return the blind index of `value` in searchable `field`."""
        await self.ready()
        return self._indexes[field](value)

    def matches(self, field: str, wanted: str | bytes, row: Row) -> bool:
        """Return whether an opened row's `field` equals `wanted` once both are normalised."""
        value = row[self._by_field[field].index]
        return value is not None and normalise(value) == normalise(wanted)


def _any_of(indexes: list[int]) -> Callable[[Sequence[Row]], Iterable[Any]]:
    """Return a fast test of which rows have a value at any of `indexes`: one truthy flag per row.

    Built from C-level itemgetter and any, so no Python frame runs per row.
    """
    if not indexes:
        return lambda rows: (False for _ in rows)
    if len(indexes) == 1:
        return lambda rows: map(itemgetter(indexes[0]), rows)
    values = itemgetter(*indexes)
    return lambda rows: map(any, map(values, rows))
