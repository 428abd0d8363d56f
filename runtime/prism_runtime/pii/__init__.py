"""PII handling driven by field options: encryption at rest, masking, access audit, forget, blind indexes.

See docs/pii.md. The SQL KeyValue store applies all of it through `sealer.ProtectedRows`; stream backends
use `payload.seal_payload` / `payload.open_payload`.
"""

from prism_runtime.pii.audit import Actor, actor, current_actor
from prism_runtime.pii.errors import (
    AuditTampered,
    DecryptionError,
    KeyRetired,
    KeyWrapperUnavailable,
    PiiError,
    SubjectForgotten,
)
from prism_runtime.pii.forget import ForgetReceipt, forget
from prism_runtime.pii.key_cache import KeyLimits
from prism_runtime.pii.masking import (
    MaskingFilter,
    install_log_masking,
    mask_message,
    mask_value,
    redact_reprs,
    structlog_processor,
)
from prism_runtime.pii.wrappers import KeyWrapper, KmsKeyWrapper, LocalKeyWrapper

__all__ = [
    "Actor",
    "AuditTampered",
    "DecryptionError",
    "ForgetReceipt",
    "KeyLimits",
    "KeyRetired",
    "KeyWrapper",
    "KeyWrapperUnavailable",
    "KmsKeyWrapper",
    "LocalKeyWrapper",
    "MaskingFilter",
    "PiiError",
    "SubjectForgotten",
    "actor",
    "current_actor",
    "forget",
    "install_log_masking",
    "mask_message",
    "mask_value",
    "redact_reprs",
    "structlog_processor",
]
