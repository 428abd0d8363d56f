"""Data-protection rules: changes that expose personal data that was protected before."""

from __future__ import annotations

from collections.abc import Iterator

from protoc_gen_prism.checks.compare import Comparison
from protoc_gen_prism.checks.rules import Category, Hit, Severity, rule
from protoc_gen_prism.vocabulary import PiiKind

_KV = 'option (prism.access_pattern) = "key_value";\n  string id = 1 [(prism.key) = true];'
# How much harm a leak does: a change to a lower rank weakens the protection the kind implies.
SENSITIVITY = {
    PiiKind.SSN: 3,
    PiiKind.CREDIT_CARD: 3,
    PiiKind.DOB: 2,
    PiiKind.ADDRESS: 2,
    PiiKind.PHONE: 2,
    PiiKind.EMAIL: 2,
    PiiKind.NAME: 2,
    PiiKind.IP: 2,
    PiiKind.GENERIC: 1,
}


@rule(
    "PROTECT_ENCRYPTION_REMOVED",
    Category.PROTECTION,
    Severity.ERROR,
    "encrypt_at_rest was removed: new values are stored in clear beside old ciphertext",
    f'message M {{\n  {_KV}\n  string ssn = 2 [(prism.pii) = "ssn", (prism.encrypt_at_rest) = true];\n}}',
    f'message M {{\n  {_KV}\n  string ssn = 2 [(prism.pii) = "ssn", (prism.plaintext_reason) = "x"];\n}}',
)
def encryption_removed(change: Comparison) -> Iterator[Hit]:
    """Find fields no longer encrypted."""
    for owner, old, new in change.field_pairs():
        if old.options.encrypt_at_rest and not new.options.encrypt_at_rest:
            yield Hit(new.location, f"{owner}.{new.name}: (prism.encrypt_at_rest) removed; keep it")


@rule(
    "PROTECT_PII_REMOVED",
    Category.PROTECTION,
    Severity.ERROR,
    "a field lost its pii kind: forget, masking and audit stop covering it",
    f'message M {{\n  {_KV}\n  string phone = 2 [(prism.pii) = "phone", (prism.encrypt_at_rest) = true];\n}}',
    f"message M {{\n  {_KV}\n  string phone = 2;\n}}",
)
def pii_removed(change: Comparison) -> Iterator[Hit]:
    """Find fields no longer marked as personal data."""
    for owner, old, new in change.field_pairs():
        if old.options.pii is not None and new.options.pii is None:
            yield Hit(new.location, f"{owner}.{new.name}: (prism.pii) = '{old.options.pii}' removed; keep it")


@rule(
    "PROTECT_PII_WEAKENED",
    Category.PROTECTION,
    Severity.ERROR,
    "a field's pii kind changed to a less sensitive one (ssn and credit_card > dob, address, ... > generic)",
    f'message M {{\n  {_KV}\n  string ssn = 2 [(prism.pii) = "ssn", (prism.encrypt_at_rest) = true];\n}}',
    f'message M {{\n  {_KV}\n  string ssn = 2 [(prism.pii) = "generic", (prism.encrypt_at_rest) = true];\n}}',
)
def pii_weakened(change: Comparison) -> Iterator[Hit]:
    """Find pii kinds lowered in sensitivity."""
    for owner, old, new in change.field_pairs():
        was, now = old.options.pii, new.options.pii
        if was is not None and now is not None and SENSITIVITY[now] < SENSITIVITY[was]:
            yield Hit(new.location, f"{owner}.{new.name}: pii weakened from '{was}' to '{now}'; keep '{was}'")


@rule(
    "PROTECT_AUDIT_REMOVED",
    Category.PROTECTION,
    Severity.ERROR,
    "access_audit was removed: reads and writes of the field stop being recorded",
    f'message M {{\n  {_KV}\n  string ssn = 2 [(prism.pii) = "ssn", (prism.encrypt_at_rest) = true, (prism.access_audit) = true];\n}}',
    f'message M {{\n  {_KV}\n  string ssn = 2 [(prism.pii) = "ssn", (prism.encrypt_at_rest) = true];\n}}',
)
def audit_removed(change: Comparison) -> Iterator[Hit]:
    """Find fields no longer audited."""
    for owner, old, new in change.field_pairs():
        if old.options.access_audit and not new.options.access_audit:
            yield Hit(new.location, f"{owner}.{new.name}: (prism.access_audit) removed; keep it")


@rule(
    "PROTECT_MASK_OFF",
    Category.PROTECTION,
    Severity.ERROR,
    "mask_in_logs was turned off on a pii field: its values can reach logs and reprs",
    f'message M {{\n  {_KV}\n  string email = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true];\n}}',
    f'message M {{\n  {_KV}\n  string email = 2 [(prism.pii) = "email", (prism.encrypt_at_rest) = true, (prism.mask_in_logs) = false];\n}}',
)
def mask_off(change: Comparison) -> Iterator[Hit]:
    """Find pii fields that stopped being masked (a removed pii kind is reported by PROTECT_PII_REMOVED)."""
    for owner, old, new in change.field_pairs():
        if old.options.mask_in_logs and not new.options.mask_in_logs and new.options.pii is not None:
            yield Hit(new.location, f"{owner}.{new.name}: (prism.mask_in_logs) turned off; remove `= false`")
