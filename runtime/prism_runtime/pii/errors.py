"""Typed errors of the PII layer. They name the namespace, field and a pseudonymous subject ref, never a value."""

from __future__ import annotations

from prism_runtime.errors import BackendUnavailable, PrismError


class PiiError(PrismError):
    """Base of the PII layer's errors."""


class DecryptionError(PiiError):
    """A ciphertext does not open: tampered, copied from another row or field, or under an unknown key."""

    def __init__(self, message: str, *, namespace: str = "", field: str = "", subject_ref: str = "") -> None:
        self.reason = message
        self.namespace = namespace
        self.field = field
        self.subject_ref = subject_ref
        where = ", ".join(
            part
            for part in (
                f"namespace {namespace!r}" if namespace else "",
                f"field {field!r}" if field else "",
                f"subject {subject_ref}" if subject_ref else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class SubjectForgotten(DecryptionError):
    """The data subject was forgotten: its keys are destroyed, so its ciphertexts never open again."""


class KeyRetired(DecryptionError):
    """The ciphertext's key is below the minimum decryption version: re-encrypt before retiring keys."""


class KeyWrapperUnavailable(BackendUnavailable):
    """The key-encryption key cannot be used: master key file unreadable, KMS down or refusing."""


class AuditTampered(PiiError):
    """The audit log's authenticated head checkpoint does not hold: Prism will not extend a chain that may
    have been cut or forged; `prism audit verify` says where."""
