"""betterproto messages (`--prism_opt=messages=betterproto`): stores that take and return betterproto dataclasses.

The backends store the *_pb2 class generated beside the dataclasses, so a row or payload is the same whichever
style wrote it; `BetterprotoAdapter` converts at the store's edge (prism_runtime.adapted). Two conversions,
chosen per message class once: field by field, written out like the row codec, for a message of plain scalars
(and repeated scalars, maps of scalars, proto3 `optional` scalars), which is most entities; through the wire
format (`bytes(message)` parsed by the other class) for everything else. docs/betterproto.md has the figures.

The field-by-field path builds a dataclass without its `__init__` (which runs betterproto's `__setattr__` per
field, the bulk of its cost): it fills the instance's `__dict__` as betterproto 2.0.0b7's `__post_init__` leaves
it, which is why the `betterproto` extra pins that version.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from prism_runtime import adapted
from prism_runtime.errors import WrongType
from prism_runtime.extras import require
from prism_runtime.pii.masking import has_masked_fields, mask_message
from prism_runtime.schema import EntitySpec

if TYPE_CHECKING:
    from prism_runtime.database import Database

_betterproto: Any = require("betterproto", "a client generated with messages=betterproto")
_PLACEHOLDER = _betterproto.PLACEHOLDER

B = TypeVar("B")
K = TypeVar("K")
S = TypeVar("S")
_FD = FieldDescriptor
# Scalars whose Python value is the same in both classes (enums are IntEnums in betterproto, ints in protobuf).
_SAME_SCALARS = frozenset(
    {
        _FD.TYPE_DOUBLE,
        _FD.TYPE_FLOAT,
        _FD.TYPE_INT64,
        _FD.TYPE_UINT64,
        _FD.TYPE_INT32,
        _FD.TYPE_FIXED64,
        _FD.TYPE_FIXED32,
        _FD.TYPE_BOOL,
        _FD.TYPE_STRING,
        _FD.TYPE_BYTES,
        _FD.TYPE_UINT32,
        _FD.TYPE_SFIXED32,
        _FD.TYPE_SFIXED64,
        _FD.TYPE_SINT32,
        _FD.TYPE_SINT64,
    }
)


class BetterprotoAdapter(Generic[B]):
    """Converts one betterproto dataclass to the *_pb2 class of the same message, and back."""

    def __init__(
        self, spec: EntitySpec, message: type[B], stored: type[Message], *, wire: bool = False
    ) -> None:
        self.message = message
        self.stored = stored
        self.by_fields = not wire and _field_by_field(message, stored.DESCRIPTOR)
        """Whether the conversion goes field by field; else through the wire format (always, with `wire`, which
        the benchmark and the tests use to compare both)."""
        namespace, name = spec.namespace, stored.DESCRIPTOR.full_name

        def wrong(item: Any) -> WrongType:
            return WrongType(
                f"expected a {name} betterproto message, got {type(item).__module__}.{type(item).__qualname__}",
                namespace=namespace,
            )

        def bad_value(item: Any) -> WrongType:
            # Never the cause's text: protobuf's quotes the value, which may be personal data.
            return WrongType(f"a field of this {name} has a value of the wrong type", namespace=namespace)

        env: dict[str, Any] = {
            "_B": message,
            "_P": stored,
            "_PH": _PLACEHOLDER,
            "_new": object.__new__,
            "_wrong": wrong,
            "_bad": bad_value,
        }
        to_source, from_source = (
            _field_sources(message, stored.DESCRIPTOR) if self.by_fields else _wire_sources()
        )
        exec(compile(to_source + from_source, f"<prism betterproto adapter of {name}>", "exec"), env)
        self.to_stored: Callable[[B], Message] = env["to_stored"]
        """Return a dataclass as the stored protobuf class; raise WrongType for another class or a bad value."""
        self.from_stored: Callable[[Message], B] = env["from_stored"]
        """Return a stored protobuf message as the dataclass."""


def _wire_sources() -> tuple[str, str]:
    to_stored = (
        "def to_stored(_b):\n"
        "    if type(_b) is not _B and not isinstance(_b, _B):\n"
        "        raise _wrong(_b)\n"
        "    try:\n"
        "        return _P.FromString(bytes(_b))\n"
        "    except Exception:\n"
        "        raise _bad(_b) from None\n"
    )
    from_stored = "def from_stored(_p):\n    return _B.FromString(_p.SerializeToString())\n"
    return to_stored, from_stored


def _field_by_field(message: type[Any], descriptor: Any) -> bool:
    """Whether every field of the message converts as a plain value (see the module's docstring)."""
    meta = message._betterproto.meta_by_field_name
    names = message._betterproto.field_name_by_number
    for field in descriptor.fields:
        name = names.get(field.number)
        if name is None or meta[name].group:
            return False  # a field betterproto does not know, or a real oneof
        if _is_map(field):
            entry = field.message_type
            if not all(entry.fields_by_name[n].type in _SAME_SCALARS for n in ("key", "value")):
                return False
        elif field.type not in _SAME_SCALARS:
            return False
        elif field.has_presence and not _repeated(field) and not meta[name].optional:
            return False  # proto2 presence: betterproto drops a zero value that protobuf would keep
    return True


def _field_sources(message: type[Any], descriptor: Any) -> tuple[str, str]:
    """Return the source of both conversions of a message of plain values, written out for its fields."""
    names = message._betterproto.field_name_by_number
    meta = message._betterproto.meta_by_field_name
    reads: list[str] = []
    arguments: list[tuple[str, str]] = []  # (protobuf field, expression)
    entries: list[str] = []  # the dataclass's __dict__ entries
    for i, field in enumerate(descriptor.fields):
        attribute = names[field.number]
        # An unset dataclass field holds betterproto's placeholder: the field's default, unset to protobuf.
        reads.append(f"    _x{i} = _d[{attribute!r}]")
        arguments.append((field.name, f"None if _x{i} is _PH else _x{i}"))
        value = f"_p.{field.name}" if _is_name(field.name) else f"getattr(_p, {field.name!r})"
        if _is_map(field):
            value = f"dict({value})"
        elif _repeated(field):
            value = f"list({value})"
        elif meta[attribute].optional:
            value = f"{value} if _p.HasField({field.name!r}) else None"
        entries.append(f"{attribute!r}: {value}")
    plain = [f"{name}={value}" for name, value in arguments if _is_name(name)]
    quoted = [f"{name!r}: {value}" for name, value in arguments if not _is_name(name)]
    if quoted:
        plain.append("**{" + ", ".join(quoted) + "}")
    to_stored = "\n".join(
        [
            "def to_stored(_b):",
            "    if type(_b) is not _B and not isinstance(_b, _B):",
            "        raise _wrong(_b)",
            "    _d = _b.__dict__",
            *reads,
            "    try:",
            f"        return _P({', '.join(plain)})",
            "    except Exception:",
            "        raise _bad(_b) from None",
            "",
        ]
    )
    state = "'_serialized_on_wire': True, '_unknown_fields': b'', '_group_current': {}"
    from_stored = "\n".join(
        [
            "def from_stored(_p):",
            "    _m = _new(_B)",
            f"    _m.__dict__.update({{{', '.join([*entries, state])}}})",
            "    return _m",
            "",
        ]
    )
    return to_stored, from_stored


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _repeated(field: Any) -> bool:
    # is_repeated arrived in protobuf 5.x/6.x; older runtimes only have label.
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == _FD.LABEL_REPEATED


def _is_name(field: str) -> bool:
    return field.isidentifier() and not keyword.iskeyword(field)


class KeyValueStore(adapted.KeyValueStore[B, K]):
    """A map from key to betterproto message (generated `<Message>Store` classes subclass it)."""

    def __init__(self, db: Database, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, BetterprotoAdapter(spec, message, stored), stored)


class SortedKeyValueStore(adapted.SortedKeyValueStore[B, K, S]):
    """A map from key to a sorted map of betterproto messages."""

    def __init__(self, db: Database, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, BetterprotoAdapter(spec, message, stored), stored)


class TimeSeries(adapted.TimeSeries[B, K]):
    """A series of betterproto events per key (generated `<Message>Series` classes subclass it)."""

    def __init__(self, db: Database, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, BetterprotoAdapter(spec, message, stored), stored)


# -- masking ---------------------------------------------------------------------------------------


def redact_reprs(*pairs: tuple[type[Any], type[Message]]) -> None:
    """Make str() and repr() of these dataclasses (and the nested ones they hold) mask PII.

    Each pair is a dataclass and its *_pb2 class, whose descriptor says which fields are masked; the masked
    text is the *_pb2 class's (prism_runtime.pii.masking), so both styles mask alike.
    """
    seen: set[type[Any]] = set()
    for message, stored in pairs:
        _redact(message, stored.DESCRIPTOR, seen)


def _redact(message: type[Any], descriptor: Any, seen: set[type[Any]]) -> None:
    if message in seen:
        return
    seen.add(message)
    stored = message_factory.GetMessageClass(descriptor)
    if has_masked_fields(stored):
        masked = _masked_repr(stored)
        message.__repr__ = masked  # type: ignore[assignment]
        message.__str__ = masked  # type: ignore[assignment]
    classes = message._betterproto.cls_by_field
    names = message._betterproto.field_name_by_number
    for field in descriptor.fields:
        name = names.get(field.number)
        nested = classes.get(name)
        if field.message_type is None or _is_map(field) or nested is None:
            continue
        if isinstance(nested, type) and issubclass(nested, _betterproto.Message):
            _redact(nested, field.message_type, seen)


def _masked_repr(stored: type[Message]) -> Callable[[Any], str]:
    def masked(self: Any) -> str:
        try:
            text = mask_message(stored.FromString(bytes(self)), as_one_line=True)
        except Exception:
            text = "[REDACTED]"  # a value betterproto cannot encode: show none of them
        return f"{type(self).__name__}({text})"

    return masked
