"""Stream payloads with their PII fields encrypted: what a Kafka or NATS backend sends and receives.

A sealed payload is ``b"PRS1" | body length (4) | body | (field number (4) | length (4) | ciphertext)*``:
the body is the message serialised with its encrypted fields cleared, and each ciphertext is the field's
value sealed exactly as in SQL columns (same keys, same associated data), so `forget` shreds stream copies
too. Keys live in the `prism_keys` table of the SQL backend whose vault is passed in.
"""

from __future__ import annotations

import struct
from typing import TypeVar

from google.protobuf.message import Message

from prism_runtime.pii import crypto
from prism_runtime.pii.errors import DecryptionError
from prism_runtime.pii.vault import Vault
from prism_runtime.schema import EntitySpec

M = TypeVar("M", bound=Message)
MAGIC = b"PRS1"
_U32 = struct.Struct(">I")
_ENTRY = struct.Struct(">II")


def _contexts(spec: EntitySpec, message: Message) -> tuple[object, bytes]:
    subject = getattr(message, spec.subject_column.name)
    record_key = tuple(getattr(message, c.name) for c in spec.key_columns)
    return subject, crypto.row_context(subject, record_key)


async def seal_payload(vault: Vault, spec: EntitySpec, message: Message) -> bytes:
    """Return `message` as bytes with every encrypted field sealed under its subject's key."""
    await vault.ready()
    subject, row_context = _contexts(spec, message)
    ref = vault.keyring.subject_ref(subject)
    body = type(message)()
    body.CopyFrom(message)
    sealed = bytearray()
    key = None
    for column in (c for c in spec.columns if c.encrypted):
        value = getattr(message, column.name)
        body.ClearField(column.name)
        if not value:
            continue
        key = key or (await vault.keyring.primary_keys([ref]))[ref]
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        context = crypto.field_context(spec.message_name, column.number) + row_context
        blob = crypto.seal(key.aead, key.key_id, data, context)
        sealed += _ENTRY.pack(column.number, len(blob)) + blob
    serialized = body.SerializeToString(deterministic=True)
    return MAGIC + _U32.pack(len(serialized)) + serialized + bytes(sealed)


async def open_payload(vault: Vault, spec: EntitySpec, message_type: type[M], payload: bytes) -> M:
    """Return the message in a payload written by `seal_payload`, its PII fields decrypted."""
    await vault.ready()
    if payload[:4] != MAGIC:
        raise DecryptionError("not a sealed Prism payload", namespace=spec.namespace)
    (length,) = _U32.unpack_from(payload, 4)
    message = message_type.FromString(payload[8 : 8 + length])
    subject, row_context = _contexts(spec, message)
    ref = vault.keyring.subject_ref(subject)
    by_number = {c.number: c for c in spec.columns if c.encrypted}
    offset = 8 + length
    while offset < len(payload):
        number, size = _ENTRY.unpack_from(payload, offset)
        blob = payload[offset + _ENTRY.size : offset + _ENTRY.size + size]
        offset += _ENTRY.size + size
        column = by_number[number]
        try:
            key_id = crypto.key_id_of(blob)
        except crypto.InvalidCiphertext:
            raise DecryptionError(
                "not a Prism ciphertext", namespace=spec.namespace, field=column.name, subject_ref=ref
            ) from None
        key = (await vault.keyring.keys_for([(ref, key_id)]))[(ref, key_id)]
        if isinstance(key, DecryptionError):
            raise type(key)(key.reason, namespace=spec.namespace, field=column.name, subject_ref=ref)
        try:
            data = crypto.open_sealed(
                key.aead, blob, crypto.field_context(spec.message_name, column.number) + row_context
            )
        except crypto.InvalidCiphertext:
            raise DecryptionError(
                "ciphertext does not belong to this record and field",
                namespace=spec.namespace,
                field=column.name,
                subject_ref=ref,
            ) from None
        field = message.DESCRIPTOR.fields_by_number[number]
        setattr(message, column.name, data.decode("utf-8") if field.type == field.TYPE_STRING else data)
    return message
