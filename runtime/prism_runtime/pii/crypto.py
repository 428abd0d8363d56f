"""AES-256-GCM with Tink's ciphertext layout, and the associated data that binds a ciphertext to its place.

Layout: ``0x01 | key id (4 bytes, big endian) | nonce (12) | ciphertext | tag (16)``, as Tink's AES-GCM
keys with a TINK output prefix write it, so data and keys stay portable. A new format gets a new first byte.
The 5-byte prefix is authenticated too (it is prepended to the associated data).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_V1 = 0x01
PREFIX = struct.Struct(">BI")
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
OVERHEAD = PREFIX.size + NONCE_SIZE + TAG_SIZE

_LENGTH = struct.Struct(">I")
_TAGS: dict[type, bytes] = {str: b"s", bytes: b"b", int: b"i", bool: b"t", type(None): b"n"}


class InvalidCiphertext(ValueError):
    """A blob is not a Prism ciphertext of a known format, or does not authenticate."""


def new_key() -> bytes:
    """Return a fresh random AES-256 key."""
    return AESGCM.generate_key(bit_length=KEY_SIZE * 8)


def canonical(values: Iterable[object]) -> bytes:
    """Encode values unambiguously: a type tag and a length before each, so no two tuples collide."""
    parts: list[bytes] = []
    pack = _LENGTH.pack
    for value in values:
        kind = type(value)
        if kind is str:
            data = value.encode("utf-8")  # type: ignore[attr-defined]
        elif kind is bytes:
            data = value
        elif kind is int or kind is bool:
            data = str(int(value)).encode("ascii")  # type: ignore[call-overload]
        elif value is None:
            data = b""
        else:
            raise TypeError(f"cannot bind a {kind.__name__} into associated data")
        parts += (_TAGS[kind], pack(len(data)), data)
    return b"".join(parts)


def field_context(message_name: str, field_number: int) -> bytes:
    """Return the part of the associated data fixed by the field: message full name and field number."""
    return canonical(("prism-field/1", message_name, field_number))


def row_context(subject: object, record_key: tuple[object, ...]) -> bytes:
    """Return the part of the associated data fixed by the row: data subject and record key."""
    if type(subject) is str and len(record_key) == 1 and record_key[0] is subject:
        # The common case (the key is the subject), on the hot path of every row: same bytes, less work.
        data = subject.encode("utf-8")
        one = b"s" + _LENGTH.pack(len(data)) + data
        return one + one
    return canonical((subject, *record_key))


def seal(aead: AESGCM, key_id: int, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt `plaintext` under `aead`, writing Tink's layout with `key_id` in the prefix."""
    prefix = PREFIX.pack(FORMAT_V1, key_id)
    nonce = os.urandom(NONCE_SIZE)
    return prefix + nonce + aead.encrypt(nonce, plaintext, prefix + associated_data)


def key_id_of(blob: bytes) -> int:
    """Return the key id in a ciphertext's prefix, or raise InvalidCiphertext."""
    if len(blob) < OVERHEAD or blob[0] != FORMAT_V1:
        raise InvalidCiphertext("not a Prism v1 ciphertext")
    key_id: int = PREFIX.unpack_from(blob)[1]
    return key_id


def open_sealed(aead: AESGCM, blob: bytes, associated_data: bytes) -> bytes:
    """Decrypt a ciphertext written by `seal`, or raise InvalidCiphertext."""
    key_id_of(blob)
    prefix = blob[: PREFIX.size]
    nonce = blob[PREFIX.size : PREFIX.size + NONCE_SIZE]
    try:
        return aead.decrypt(nonce, blob[PREFIX.size + NONCE_SIZE :], prefix + associated_data)
    except InvalidTag:
        raise InvalidCiphertext("ciphertext does not authenticate in this place") from None
