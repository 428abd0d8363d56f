"""How an event travels on a stream (Kafka, NATS): its payload bytes, key bytes and header names.

The payload codec is the one seam for what goes on the wire: the PII layer wraps it to encrypt fields
inside payloads without touching any backend (prism_runtime.payload_codecs chooses which codec an entity
gets, so this module never imports the PII layer that builds on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError, Message

from prism_runtime.corrupt import corrupt_row
from prism_runtime.schema import ColumnKind, EntitySpec
from prism_runtime.timeseries import Event

M = TypeVar("M", bound=Message)

EVENT_ID_HEADER = "prism-event-id"
"""Kafka record header carrying the event id (NATS uses its own Nats-Msg-Id)."""
NATS_MSG_ID_HEADER = "Nats-Msg-Id"
"""JetStream drops a message whose id it stored within the stream's duplicate window."""


class PayloadCodec(Generic[M]):
    """Message <-> payload bytes: the serialized protobuf, deterministic so equal events give equal bytes."""

    def __init__(self, spec: EntitySpec, message: type[M]) -> None:
        self.spec = spec
        self.message = message

    def encode(self, message: M) -> bytes:
        """Return the payload of a message."""
        return message.SerializeToString(deterministic=True)

    def encode_event(self, event: Event[M]) -> bytes:
        """Return the payload of an event, reusing the encoding its id was computed from."""
        return event.serialized or self.encode(event.message)

    def decode(self, payload: bytes) -> M:
        """Return the message of a payload."""
        return self.message.FromString(payload)

    def decode_record(self, payload: bytes, key: bytes | None, backend: str) -> M | None:
        """Return the message of a stored record as `decode_readable` does; raise CorruptRow naming the record's
        key when its payload does not parse (another producer wrote it)."""
        try:
            return self.decode_readable(payload)
        except DecodeError as error:
            raise corrupt_row(
                self.spec, () if key is None else (key_value(self.spec, key),), backend, error
            ) from None

    def decode_readable(self, payload: bytes) -> M | None:
        """Return the message of a payload, or None when it cannot be read any more (a forgotten subject).

        Reads that walk a series (query, tail) skip such records, as the SQL backends do.
        """
        return self.decode(payload)

    async def prepare_encode(self, events: Sequence[Event[M]]) -> None:
        """Get ready to encode `events` (a sealing codec fetches their keys here); plain payloads need nothing."""

    async def prepare_decode(self, payloads: Sequence[bytes]) -> None:
        """Get ready to decode `payloads` (a sealing codec fetches their keys here); plain payloads need nothing."""


def key_value(spec: EntitySpec, raw: bytes) -> object:
    """Return the series key `key_bytes` made `raw` from, or None when it is no key of this entity."""
    kind = spec.column(spec.key).kind
    if kind is ColumnKind.BYTES:
        return raw
    try:
        text = raw.decode()
        return text if kind is ColumnKind.STRING else int(text)
    except ValueError:  # UnicodeDecodeError is one
        return None


def key_bytes(key: object) -> bytes:
    """Return a series key as bytes: UTF-8 text, raw bytes, or an integer's decimal digits."""
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key).encode()
    raise TypeError(f"a series key is str, bytes or int, not {type(key).__name__}")
