"""Masking: PII never shows in clear in reprs, log lines, structlog events or Prism's own output.

Python's protobuf ignores `debug_redact`, so Prism redacts itself, driven by the `(prism.pii)` and
`(prism.mask_in_logs)` options read from the message descriptors (nested messages included):
`redact_reprs` makes `str()`/`repr()` of a message class masked (generated modules call it on import, so
f-strings and tracebacks are covered), `install_log_masking` adds a logging filter for messages passed as
log arguments, and `structlog_processor` does the same for structlog event dicts.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import MutableMapping
from functools import cache
from typing import Any

from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from prism import options_pb2
from prism_runtime.schema import masked_in_logs

REDACTED = "[REDACTED]"
_NON_DIGIT = re.compile(r"\D")
_COUNTRY_CODE = re.compile(r"^\+(\d{1,3})[\s\-.(]")


def mask_value(kind: str, value: str | bytes) -> str:
    """Return the masked form of one value of PII `kind` (see docs/pii.md for the table)."""
    if isinstance(value, bytes):
        return REDACTED
    masker = _MASKS.get(kind)
    return masker(value) if masker else REDACTED


def _ssn(value: str) -> str:
    return "***-**-****"


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not domain:
        return REDACTED
    return f"{local[:1]}***@{domain}"


def _phone(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    if len(digits) < 7:
        return REDACTED
    text = value.strip()
    code = ""
    if text.startswith("+"):
        found = _COUNTRY_CODE.match(text)
        # Unseparated numbers: NANP (+1) and +7 are one digit; keep two otherwise (masks more, never less).
        code = found.group(1) if found else digits[: 1 if digits[0] in "17" else 2]
    rest = digits[len(code) :]
    prefix = f"+{code} " if code else ""
    return f"{prefix}{'*' * (len(rest) - 4)}{rest[-4:]}"


def _credit_card(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    return f"**** **** **** {digits[-4:]}" if len(digits) >= 12 else REDACTED


def _ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return REDACTED
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


_MASKS = {"ssn": _ssn, "email": _email, "phone": _phone, "credit_card": _credit_card, "ip": _ip}


# -- messages --------------------------------------------------------------------------------------


@cache
def _plan(descriptor: Descriptor) -> tuple[tuple[FieldDescriptor, str], ...]:
    """Return the fields to mask (with their PII kind) and message fields to look into, of one type."""
    plan: list[tuple[FieldDescriptor, str]] = []
    for field in descriptor.fields:
        kind, masked = _masked(field)
        if masked:
            plan.append((field, kind or "generic"))
        elif field.message_type is not None and _has_masked(field.message_type, frozenset()):
            plan.append((field, ""))
    return tuple(plan)


def _has_masked(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}
    for field in descriptor.fields:
        if _masked(field)[1]:
            return True
        if field.message_type is not None and _has_masked(field.message_type, seen):
            return True
    return False


def _masked(field: FieldDescriptor) -> tuple[str, bool]:
    """Return a field's pii kind and whether the mask rule (`schema.masked_in_logs`) masks it."""
    options = field.GetOptions()
    kind: str = options.Extensions[options_pb2.pii]
    explicit = (
        options.Extensions[options_pb2.mask_in_logs]
        if options.HasExtension(options_pb2.mask_in_logs)
        else None
    )
    return kind, masked_in_logs(kind, explicit)


def has_masked_fields(message: type[Message] | Message) -> bool:
    """Return whether a message type has any field to mask, itself or in nested messages."""
    return bool(_plan(message.DESCRIPTOR))


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _masked_scalar(field: FieldDescriptor, kind: str, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        return mask_value(kind, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return REDACTED.encode()
    return field.default_value if not _repeated(field) else None


def _repeated(field: FieldDescriptor) -> bool:
    # is_repeated arrived in protobuf 5.x/6.x; older runtimes only have label.
    return bool(
        getattr(field, "is_repeated", None) or getattr(field, "label", 0) == FieldDescriptor.LABEL_REPEATED
    )


def _mask_in_place(message: Message) -> None:
    for field, kind in _plan(message.DESCRIPTOR):
        name = field.name
        if _is_map(field):
            container: Any = getattr(message, name)
            entry: Any = field.message_type
            value_field = entry.fields_by_name["value"]
            for map_key in list(container):
                if value_field.message_type is not None:
                    _mask_in_place(container[map_key]) if not kind else container[map_key].Clear()
                elif kind:
                    container[map_key] = _masked_scalar(value_field, kind, container[map_key])
            continue
        if field.message_type is not None:
            items = (
                getattr(message, name)
                if _repeated(field)
                else ([getattr(message, name)] if message.HasField(name) else [])
            )
            for item in items:
                _mask_in_place(item) if not kind else item.Clear()
            continue
        if _repeated(field):
            values: Any = getattr(message, name)
            masked = [_masked_scalar(field, kind, v) for v in values]
            del values[:]
            values.extend(m for m in masked if m is not None)
        elif field.has_presence and not message.HasField(name):
            continue
        elif getattr(message, name) not in ("", b""):
            setattr(message, name, _masked_scalar(field, kind, getattr(message, name)))


def masked_copy(message: Message) -> Message:
    """Return a copy of `message` with every masked field replaced by its mask."""
    copy = type(message)()
    copy.CopyFrom(message)
    _mask_in_place(copy)
    return copy


def mask_message(message: Message, *, as_one_line: bool = False) -> str:
    """Return the text format of `message` with PII masked."""
    return text_format.MessageToString(masked_copy(message), as_one_line=as_one_line)


def _masked_str(self: Message) -> str:
    return mask_message(self)


def _masked_repr(self: Message) -> str:
    return f"{type(self).__name__}({mask_message(self, as_one_line=True)})"


def redact_reprs(*messages: type[Message]) -> None:
    """Make str() and repr() of these message types (and the nested types they hold) mask PII."""
    for message in messages:
        for cls in _classes_with_pii(message):
            if getattr(cls, "__str__", None) is not _masked_str:
                cls.__str__ = _masked_str  # type: ignore[method-assign, assignment]
                cls.__repr__ = _masked_repr  # type: ignore[method-assign, assignment]


def _classes_with_pii(message: type[Message]) -> list[type[Message]]:
    from google.protobuf import message_factory

    out: list[type[Message]] = []
    seen: set[str] = set()

    def walk(descriptor: Any, cls: type[Message] | None) -> None:
        if descriptor.full_name in seen or not _plan(descriptor):
            return
        seen.add(descriptor.full_name)
        out.append(cls or message_factory.GetMessageClass(descriptor))
        for field in descriptor.fields:
            if field.message_type is not None and not _is_map(field):
                walk(field.message_type, None)

    walk(message.DESCRIPTOR, message)
    return out


# -- logging ---------------------------------------------------------------------------------------


def _masked_arg(value: Any) -> Any:
    return mask_message(value, as_one_line=True) if isinstance(value, Message) else value


class MaskingFilter(logging.Filter):
    """Rewrites log records so protobuf messages in the message or its arguments are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drop it."""
        if isinstance(record.msg, Message):
            record.msg = _masked_arg(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked_arg(a) for a in record.args)
        elif isinstance(record.args, MutableMapping):
            record.args = {k: _masked_arg(v) for k, v in record.args.items()}
        return True


_FILTER = MaskingFilter()


def install_log_masking(*loggers: logging.Logger) -> MaskingFilter:
    """Attach Prism's masking filter to every handler of the root logger (and of `loggers`); idempotent."""
    for logger in (logging.getLogger(), *loggers):
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    return _FILTER


def structlog_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: mask protobuf messages among the event's values. Put it before the renderer."""
    for name, value in list(event_dict.items()):
        if isinstance(value, Message):
            event_dict[name] = mask_message(value, as_one_line=True)
    return event_dict
