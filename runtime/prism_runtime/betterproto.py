"""betterproto messages (`--prism_opt=messages=betterproto`): stores that take and return betterproto dataclasses.

The backends store the *_pb2 class generated beside the dataclasses, so a row or payload is the same whichever
style wrote it; `BetterprotoAdapter` converts at the store's edge (prism_runtime.adapted). Two conversions,
chosen per message class once: field by field, written out like the row codec, for a message of scalars,
enums, Timestamps, wrappers, oneofs of scalars and nested messages of the same kinds (repeated, in maps and
proto3 `optional` included), which is most entities; through the wire format (`bytes(message)` parsed by the
other class) for the rest (the other well-known types, proto2 presence, recursive types).
Each follows what betterproto's own encoder and parser do; docs/betterproto.md lists where they differ, and has
the figures.

The blocking stores (`Sync*`, for a database from `connect_sync()`) run the async ones below through
prism_runtime.sync_clients, as the protobuf style's do: the adapter and the conversion are the same objects.

The field-by-field path builds a dataclass without its `__init__` (which runs betterproto's `__setattr__` per
field, the bulk of its cost): it fills the instance's `__dict__` as betterproto 2.0.0b7's `__post_init__` leaves
it, which is why the `betterproto` extra pins that version.
"""

from __future__ import annotations

import datetime
import keyword
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from prism_runtime import adapted, sync_clients
from prism_runtime.errors import WrongType
from prism_runtime.extras import require
from prism_runtime.pii.masking import has_masked_fields, mask_message
from prism_runtime.schema import EntitySpec

if TYPE_CHECKING:
    from prism_runtime.database import Database
    from prism_runtime.sync_database import SyncDatabase

_betterproto: Any = require("betterproto", "a client generated with messages=betterproto")
_PLACEHOLDER = _betterproto.PLACEHOLDER

B = TypeVar("B")
BN = TypeVar("BN")
K = TypeVar("K")
S = TypeVar("S")
GK = TypeVar("GK", str, bytes, int)
GS = TypeVar("GS", str, bytes, int)
GT = TypeVar("GT", str, bytes, int)
EF = TypeVar("EF", bound=Mapping[str, Any])
NF = TypeVar("NF", bound=Mapping[str, Any])
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
        namespace, name = spec.namespace, stored.DESCRIPTOR.full_name
        fields = None if wire else _converters(message, stored, set())
        self.by_fields = fields is not None
        """Whether the conversion goes field by field; else through the wire format (always, with `wire`, which
        the benchmark and the tests use to compare both)."""
        to_fields, from_fields = fields or _wire(message, stored)

        def to_stored(item: B) -> Message:
            if type(item) is not message and not isinstance(item, message):
                raise WrongType(
                    f"expected a {name} betterproto message, got {type(item).__module__}.{type(item).__qualname__}",
                    namespace=namespace,
                )
            try:
                return to_fields(item)
            except Exception:
                # Never the cause's text: protobuf's quotes the value, which may be personal data.
                raise WrongType(
                    f"a field of this {name} has a value of the wrong type", namespace=namespace
                ) from None

        self.to_stored: Callable[[B], Message] = to_stored
        """Return a dataclass as the stored protobuf class; raise WrongType for another class or a bad value."""
        self.from_stored: Callable[[Message], B] = from_fields
        """Return a stored protobuf message as the dataclass."""


def _wire(
    message: type[Any], stored: type[Message]
) -> tuple[Callable[[Any], Message], Callable[[Message], Any]]:
    """Return both conversions through the wire format: each class's own encoder and parser."""

    def to_stored(item: Any) -> Message:
        return stored.FromString(bytes(item))

    def from_stored(item: Message) -> Any:
        return message.FromString(item.SerializeToString())

    return to_stored, from_stored


_TIMESTAMP = "google.protobuf.Timestamp"
# The wrapper types, which betterproto reads and writes as an Optional of the wrapped scalar.
_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _to_timestamp(stored: type[Message]) -> Callable[[datetime.datetime], Message]:
    def convert(when: datetime.datetime) -> Message:
        # As betterproto's _Timestamp.from_datetime: whole microseconds from an aware datetime (naive raises).
        offset = when - _EPOCH
        seconds, micros = divmod(
            (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds, 10**6
        )
        return stored(seconds=seconds, nanos=micros * 1000)  # type: ignore[call-arg]

    return convert


def _from_timestamp(value: Any) -> datetime.datetime:
    # As betterproto's _Timestamp.to_datetime: nanoseconds truncated to microseconds.
    return _EPOCH + datetime.timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def _converters(
    message: type[Any], stored: type[Message], visiting: set[type[Any]]
) -> tuple[Callable[[Any], Message], Callable[[Message], Any]] | None:
    """Return both field-by-field conversions of a message, written out for its fields; None when one field has no
    plain conversion (a well-known type but Timestamp and the wrappers, a oneof member that is a message, proto2
    presence, a recursive type), which then goes through the wire format."""
    if message in visiting:
        return None
    visiting = visiting | {message}
    names = message._betterproto.field_name_by_number
    meta = message._betterproto.meta_by_field_name
    classes = message._betterproto.cls_by_field
    # object's own __getattribute__: betterproto's override costs microseconds even for __dict__.
    env: dict[str, Any] = {
        "_B": message,
        "_P": stored,
        "_PH": _PLACEHOLDER,
        "_new": object.__new__,
        "_get": object.__getattribute__,
    }
    reads: list[str] = []
    arguments: list[tuple[str, str]] = []  # (protobuf field, expression) for the *_pb2 constructor
    entries: list[str] = []  # (dataclass attribute: expression) of the dataclass's __dict__
    oneofs: dict[
        str, tuple[int, str, dict[str, str]]
    ] = {}  # oneof -> (its number here, group, member -> attribute)
    descriptor: Any = stored.DESCRIPTOR
    for i, field in enumerate(descriptor.fields):
        attribute = names.get(field.number)
        if attribute is None:
            return None  # a field betterproto does not know
        read = f"_p.{field.name}" if _is_name(field.name) else f"getattr(_p, {field.name!r})"
        present = f"_p.HasField({field.name!r})"
        reads.append(f"    _x{i} = _d[{attribute!r}]")
        # An unset dataclass field holds betterproto's placeholder: the field's default, unset to protobuf.
        to_value = f"None if _x{i} is _PH else _x{i}"
        kind = field.message_type
        group = meta[attribute].group
        if group:
            # A oneof member: betterproto writes the member its `_group_current` names, even at its default.
            if _repeated(field) or (field.type not in _SAME_SCALARS and field.type != _FD.TYPE_ENUM):
                return None
            oneof = field.containing_oneof.name
            k = oneofs.setdefault(oneof, (len(oneofs), group, {}))[0]
            oneofs[oneof][2][field.name] = attribute
            to_value = f"_x{i} if _gc[{group!r}] == {attribute!r} and _x{i} is not _PH else None"
            value = read
            if field.type == _FD.TYPE_ENUM:
                env[f"_e{i}"] = classes[attribute].try_value
                value = f"_e{i}({read})"
            from_value = f"{value} if _w{k} == {field.name!r} else _PH"
        elif kind is not None and kind.full_name in _WRAPPERS and not _repeated(field):
            env[f"_t{i}"] = message_factory.GetMessageClass(kind)
            to_value = f"None if _x{i} is _PH or _x{i} is None else _t{i}(value=_x{i})"
            from_value = f"{read}.value if {present} else _PH"
        elif _is_map(field):
            value_field = kind.fields_by_name["value"]
            if kind.fields_by_name["key"].type not in _SAME_SCALARS:
                return None
            if value_field.type in _SAME_SCALARS:
                from_value = f"dict({read})"
            elif value_field.type == _FD.TYPE_ENUM:
                env[f"_e{i}"] = classes[f"{attribute}.value"].try_value
                from_value = f"{{_k: _e{i}(_v) for _k, _v in {read}.items()}}"
            else:
                nested = classes.get(f"{attribute}.value")
                inner = (
                    None
                    if value_field.message_type.full_name.startswith("google.protobuf.")
                    or not isinstance(nested, type)
                    else _converters(
                        nested, message_factory.GetMessageClass(value_field.message_type), visiting
                    )
                )
                if inner is None:
                    return None
                env[f"_t{i}"], env[f"_f{i}"] = inner
                # Every entry is written: a map value has no presence of its own.
                to_value = f"None if _x{i} is _PH else {{_k: _t{i}(_v) for _k, _v in _x{i}.items()}}"
                from_value = f"{{_k: _f{i}(_v) for _k, _v in {read}.items()}}"
        elif field.type == _FD.TYPE_ENUM:
            env[f"_e{i}"] = classes[
                attribute
            ].try_value  # what betterproto's parser calls: unknown numbers kept
            if _repeated(field):
                from_value = f"[_e{i}(_v) for _v in {read}]"
            elif meta[attribute].optional:
                from_value = f"_e{i}({read}) if {present} else None"
            elif field.has_presence:
                return None
            else:
                from_value = f"_e{i}({read})"
        elif kind is not None and kind.full_name == _TIMESTAMP and not _repeated(field):
            env[f"_t{i}"] = _to_timestamp(message_factory.GetMessageClass(kind))
            env["_ts"] = _from_timestamp
            to_value = f"None if _x{i} is _PH or _x{i} is None else _t{i}(_x{i})"
            from_value = f"_ts({read}) if {present} else _PH"
        elif kind is not None:
            nested = classes.get(attribute)
            inner = (
                None
                if kind.full_name.startswith("google.protobuf.") or not isinstance(nested, type)
                else _converters(nested, message_factory.GetMessageClass(kind), visiting)
            )
            if inner is None:
                return None
            env[f"_t{i}"], env[f"_f{i}"] = inner
            if _repeated(field):
                to_value = f"None if _x{i} is _PH else [_t{i}(_v) for _v in _x{i}]"
                from_value = f"[_f{i}(_v) for _v in {read}]"
            else:
                # betterproto writes a nested message only once it was set (it tracks that per instance).
                to_value = f"None if _x{i} is _PH or not _get(_x{i}, '__dict__')['_serialized_on_wire'] else _t{i}(_x{i})"
                from_value = f"_f{i}({read}) if {present} else _PH"
        elif field.type not in _SAME_SCALARS:
            return None
        elif _repeated(field):
            from_value = f"list({read})"
        elif meta[attribute].optional:
            from_value = f"{read} if {present} else None"
        elif field.has_presence:
            return None  # proto2 presence: betterproto drops a zero value that protobuf would keep
        else:
            from_value = read
        arguments.append((field.name, to_value))
        entries.append(f"{attribute!r}: {from_value}")
    plain = [f"{name}={value}" for name, value in arguments if _is_name(name)]
    quoted = [f"{name!r}: {value}" for name, value in arguments if not _is_name(name)]
    if quoted:
        plain.append("**{" + ", ".join(quoted) + "}")
    current = ", ".join(f"{group!r}: _o{k}.get(_w{k})" for k, group, _ in oneofs.values())
    state = f"'_serialized_on_wire': True, '_unknown_fields': b'', '_group_current': {{{current}}}"
    which: list[str] = []
    for oneof, (k, _, members) in oneofs.items():
        env[f"_o{k}"] = members
        which.append(f"    _w{k} = _p.WhichOneof({oneof!r})")
    source = "\n".join(
        [
            "def to_stored(_b):",
            "    _d = _get(_b, '__dict__')",
            *(["    _gc = _d['_group_current']"] if oneofs else []),
            *reads,
            f"    return _P({', '.join(plain)})",
            "",
            "def from_stored(_p):",
            *which,
            "    _m = _new(_B)",
            f"    _get(_m, '__dict__').update({{{', '.join([*entries, state])}}})",
            "    return _m",
            "",
        ]
    )
    exec(compile(source, f"<prism betterproto conversion of {stored.DESCRIPTOR.full_name}>", "exec"), env)
    return env["to_stored"], env["from_stored"]


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


class NodeStore(adapted.NodeStore[B, GK]):
    """Graph nodes as betterproto messages (generated `<Node>Nodes` classes subclass it)."""

    def __init__(self, db: Database, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, BetterprotoAdapter(spec, message, stored), stored)


class EdgeStore(adapted.EdgeStore[B, GS, GT, EF]):
    """Graph edges as betterproto messages (generated `<Edge>Edges` classes subclass it)."""

    def __init__(self, db: Database, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, BetterprotoAdapter(spec, message, stored), stored)


class Graph(adapted.Graph[B, BN, GK, EF, NF]):
    """Nodes and edges as betterproto messages (generated `<Edge>Graph` classes subclass it)."""

    def __init__(
        self,
        db: Database,
        spec: EntitySpec,
        message: type[B],
        stored: type[Message],
        node_spec: EntitySpec,
        node_message: type[BN],
        node_stored: type[Message],
    ) -> None:
        super().__init__(
            db,
            spec,
            BetterprotoAdapter(spec, message, stored),
            stored,
            node_spec,
            BetterprotoAdapter(node_spec, node_message, node_stored),
            node_stored,
        )


class SyncKeyValueStore(sync_clients.SyncKeyValueStore[B, K]):
    """KeyValueStore for blocking code (generated `<Message>SyncStore` classes subclass it)."""

    def __init__(self, db: SyncDatabase, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, message, KeyValueStore(db.aio, spec, message, stored))


class SyncSortedKeyValueStore(sync_clients.SyncSortedKeyValueStore[B, K, S]):
    """SortedKeyValueStore for blocking code."""

    def __init__(self, db: SyncDatabase, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, message, SortedKeyValueStore(db.aio, spec, message, stored))


class SyncTimeSeries(sync_clients.SyncTimeSeries[B, K]):
    """TimeSeries for blocking code (generated `<Message>SyncSeries` classes subclass it)."""

    def __init__(self, db: SyncDatabase, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, message, TimeSeries(db.aio, spec, message, stored))


class SyncNodeStore(sync_clients.SyncNodeStore[B, GK]):
    """NodeStore for blocking code (generated `<Node>SyncNodes` classes subclass it)."""

    def __init__(self, db: SyncDatabase, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, message, NodeStore(db.aio, spec, message, stored))


class SyncEdgeStore(sync_clients.SyncEdgeStore[B, GS, GT, EF]):
    """EdgeStore for blocking code (generated `<Edge>SyncEdges` classes subclass it)."""

    def __init__(self, db: SyncDatabase, spec: EntitySpec, message: type[B], stored: type[Message]) -> None:
        super().__init__(db, spec, message, EdgeStore(db.aio, spec, message, stored))


class SyncGraph(sync_clients.SyncGraph[B, BN, GK, EF, NF]):
    """Graph for blocking code (generated `<Edge>SyncGraph` classes subclass it)."""

    def __init__(
        self,
        db: SyncDatabase,
        spec: EntitySpec,
        message: type[B],
        stored: type[Message],
        node_spec: EntitySpec,
        node_message: type[BN],
        node_stored: type[Message],
    ) -> None:
        aio: Graph[B, BN, GK, EF, NF] = Graph(
            db.aio, spec, message, stored, node_spec, node_message, node_stored
        )
        # mypy expands the value-restricted node keys of `aio` but not of the base: the same types, unseen.
        super().__init__(db, spec, message, node_spec, node_message, cast(Any, aio))


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
