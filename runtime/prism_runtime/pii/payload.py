"""Stream payloads with their PII fields encrypted: what the Kafka and NATS backends send and receive.

A sealed payload is ``b"PRS1" | body length (4) | body | (field number (4) | length (4) | ciphertext)*``:
the body is the message serialised with its encrypted fields cleared, and each ciphertext is the field's
value sealed exactly as in SQL columns (same keys, same associated data), so `forget` shreds stream copies
too. Keys live in the `prism_keys` table of an SQL backend of the same database (its "keys home").

`SealedPayloadCodec` is the stream backends' payload codec for entities with encrypted fields: its
`prepare_encode` / `prepare_decode` fetch (or make) the keys a batch needs, so `encode` and `decode`
stay synchronous, as the backends call them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from prism_runtime.errors import names_entity
from prism_runtime.pii import crypto
from prism_runtime.pii.audit import AuditEvent
from prism_runtime.pii.errors import DecryptionError, SubjectForgotten
from prism_runtime.pii.keyring import DataKey
from prism_runtime.pii.vault import Vault
from prism_runtime.schema import EntitySpec
from prism_runtime.stream_codec import PayloadCodec
from prism_runtime.timeseries import Event

M = TypeVar("M", bound=Message)
MAGIC = b"PRS1"
_U32 = struct.Struct(">I")
_ENTRY = struct.Struct(">II")
_CACHE = 10_000  # keys kept between batches; the keyring's LRU keeps the rest


class CataloguedPayloadCodec(PayloadCodec[M]):
    """The plain payload codec of an entity with pii fields in clear: it lists the entity in the catalog.

    `forget` then reports the namespace as not erasable, with the schema's (prism.plaintext_reason).
    """

    def __init__(self, spec: EntitySpec, message: type[M], vault: Vault, stored_on: str) -> None:
        super().__init__(spec, message)
        self.vault = vault
        self.stored_on = stored_on
        self._registered = False

    async def prepare_encode(self, events: Sequence[Event[M]]) -> None:
        """Register the entity before its first write."""
        if not self._registered:
            await self.vault.catalog.register(self.spec, self.stored_on)
            self._registered = True


class SealedPayloadCodec(PayloadCodec[M]):
    """Message <-> payload with the encrypted fields sealed under the subject's data key."""

    def __init__(self, spec: EntitySpec, message: type[M], vault: Vault, stored_on: str = "") -> None:
        super().__init__(spec, message)
        self.vault = vault
        self.stored_on = stored_on
        self._registered = False
        self._sealed = [c for c in spec.columns if c.encrypted]
        self._by_number = {c.number: c for c in self._sealed}
        self._text = {
            c.number: message.DESCRIPTOR.fields_by_name[c.name].type == FieldDescriptor.TYPE_STRING
            for c in self._sealed
        }
        self._audited = [c for c in spec.columns if c.audited]
        self._primary: dict[str, DataKey] = {}
        self._keys: dict[tuple[str, int], DataKey | DecryptionError] = {}

    def _subject(self, message: Message) -> tuple[object, str, bytes]:
        subject = getattr(message, self.spec.subject_column.name)
        record_key = tuple(getattr(message, c.name) for c in self.spec.key_columns)
        return subject, self.vault.keyring.subject_ref(subject), crypto.row_context(subject, record_key)

    def _audit(self, action: str, messages: Sequence[Message]) -> list[AuditEvent]:
        keyring = self.vault.keyring
        out = []
        for message in messages:
            _, ref, _ = self._subject(message)
            record = keyring.record_ref(tuple(getattr(message, c.name) for c in self.spec.key_columns))
            for c in self._audited:
                verb = "decrypt" if action == "read" and c.encrypted else action
                out.append(AuditEvent(verb, self.spec.message_name, c.number, c.pii, ref, record))
        return out

    # -- encoding ----------------------------------------------------------------------------------

    @names_entity
    async def prepare_encode(self, events: Sequence[Event[M]]) -> None:
        """Fetch or make the data key of every subject in the batch; audit the writes."""
        await self.vault.ready()
        if not self._registered and self.stored_on:
            await self.vault.catalog.register(self.spec, self.stored_on)
            self._registered = True
        refs = {self._subject(e.message)[1] for e in events}
        if len(self._primary) > _CACHE:
            self._primary.clear()
        self._primary.update(await self.vault.keyring.primary_keys(refs))
        if self._audited:
            await self.vault.audit.append(self._audit("write", [e.message for e in events]))

    def encode(self, message: M) -> bytes:
        """Return the sealed payload of a message whose keys `prepare_encode` fetched."""
        _, ref, row_context = self._subject(message)
        body = type(message)()
        body.CopyFrom(message)
        sealed = bytearray()
        for column in self._sealed:
            value = getattr(message, column.name)
            body.ClearField(column.name)
            if not value:
                continue
            key = self._primary[ref]
            data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            context = crypto.field_context(self.spec.message_name, column.number) + row_context
            blob = crypto.seal(key.aead, key.key_id, data, context)
            sealed += _ENTRY.pack(column.number, len(blob)) + blob
        serialized = body.SerializeToString(deterministic=True)
        return MAGIC + _U32.pack(len(serialized)) + serialized + bytes(sealed)

    def encode_event(self, event: Event[M]) -> bytes:
        """Return the sealed payload of an event (never its clear serialisation)."""
        return self.encode(event.message)

    # -- decoding ----------------------------------------------------------------------------------

    def _parts(self, payload: bytes) -> tuple[M, list[tuple[int, bytes]]]:
        if payload[:4] != MAGIC:
            raise DecryptionError("not a sealed Prism payload", namespace=self.spec.namespace)
        (length,) = _U32.unpack_from(payload, 4)
        message = self.message.FromString(payload[8 : 8 + length])
        entries = []
        offset = 8 + length
        while offset < len(payload):
            number, size = _ENTRY.unpack_from(payload, offset)
            start = offset + _ENTRY.size
            entries.append((number, payload[start : start + size]))
            offset = start + size
        return message, entries

    @names_entity
    async def prepare_decode(self, payloads: Sequence[bytes]) -> None:
        """Fetch the keys the payloads name; audit the reads."""
        await self.vault.ready()
        wanted = set()
        messages = []
        for payload in payloads:
            message, entries = self._parts(payload)
            messages.append(message)
            _, ref, _ = self._subject(message)
            for _, blob in entries:
                try:
                    wanted.add((ref, crypto.key_id_of(blob)))
                except crypto.InvalidCiphertext:
                    continue  # decode says which field
        if len(self._keys) > _CACHE:
            self._keys.clear()
        if wanted:
            self._keys.update(await self.vault.keyring.keys_for(wanted))
        if self._audited:
            await self.vault.audit.append(self._audit("read", messages))

    def decode_readable(self, payload: bytes) -> M | None:
        """Return the decrypted message, or None when its subject was forgotten (its keys are destroyed)."""
        try:
            return self.decode(payload)
        except SubjectForgotten:
            return None

    def decode(self, payload: bytes) -> M:
        """Return the message of a payload whose keys `prepare_decode` fetched, its PII decrypted."""
        message, entries = self._parts(payload)
        _, ref, row_context = self._subject(message)
        for number, blob in entries:
            column = self._by_number[number]
            where: dict[str, Any] = {
                "namespace": self.spec.namespace,
                "field": column.name,
                "subject_ref": ref,
            }
            try:
                key = self._keys[(ref, crypto.key_id_of(blob))]
            except crypto.InvalidCiphertext:
                raise DecryptionError("not a Prism ciphertext", **where) from None
            except KeyError:
                raise DecryptionError("the key was not fetched: call prepare_decode first", **where) from None
            if isinstance(key, DecryptionError):
                raise type(key)(key.reason, **where)
            context = crypto.field_context(self.spec.message_name, number) + row_context
            try:
                data = crypto.open_sealed(key.aead, blob, context)
            except crypto.InvalidCiphertext:
                raise DecryptionError(
                    "ciphertext does not belong to this record and field", **where
                ) from None
            setattr(message, column.name, data.decode("utf-8") if self._text[number] else data)
        return message


async def seal_payload(vault: Vault, spec: EntitySpec, message: M) -> bytes:
    """Return `message` as bytes with every encrypted field sealed under its subject's key."""
    codec = SealedPayloadCodec(spec, type(message), vault)
    await codec.prepare_encode([Event(None, 0, "", message)])
    return codec.encode(message)


async def open_payload(vault: Vault, spec: EntitySpec, message_type: type[M], payload: bytes) -> M:
    """Return the message in a payload written by `seal_payload`, its PII fields decrypted."""
    codec = SealedPayloadCodec(spec, message_type, vault)
    await codec.prepare_decode([payload])
    return codec.decode(payload)
