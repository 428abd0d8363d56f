"""Blind indexes: equality lookups on encrypted fields without decrypting every row.

The index of a value is HMAC-SHA256 of its normalised form under a per-field key, derived with HKDF from
the index root key (never a data key, so forgetting a subject does not change anyone's index), truncated
to `BITS` bits. Truncation is the point: with R rows and L bits, each index value is shared by about
R / 2^L rows (the coincidence count), so the index alone cannot single out a row. CipherSweet's rule of
thumb is to keep that count at 2 or more, i.e. L <= log2(R) - 1. Prism's 16 bits suit tables from about
2^17 rows up; lookups fetch the few coinciding rows and keep those whose decrypted value matches.
"""

from __future__ import annotations

import hmac
import unicodedata

from prism_runtime.pii import crypto

BITS = 16


def normalise(value: str | bytes) -> bytes:
    """Return the form that is indexed: text NFKC-normalised, trimmed and case-folded; bytes as they are."""
    if isinstance(value, bytes):
        return value
    return unicodedata.normalize("NFKC", value).strip().casefold().encode("utf-8")


def purpose(message_name: str, field_number: int) -> bytes:
    """Return the HKDF info naming one field's index key."""
    return b"prism blind index/1" + crypto.canonical((message_name, field_number))


class BlindIndex:
    """The blind index function of one field."""

    def __init__(self, key: bytes, bits: int = BITS) -> None:
        self._key = key
        self._bytes = (bits + 7) // 8
        self._mask = 0xFF & (0xFF << (self._bytes * 8 - bits))

    def __call__(self, value: str | bytes) -> bytes:
        """Return the truncated index of `value`."""
        digest = hmac.digest(self._key, normalise(value), "sha256")[: self._bytes]
        return digest[:-1] + bytes([digest[-1] & self._mask])

    def __repr__(self) -> str:
        return "<BlindIndex>"
