"""What the API accepts from callers, checked once for every backend before anything is written or read.

Three rules, each raising a typed error that names the namespace and field and never quotes the value:
a message must be of the store's type (`WrongType`); a key must have its field's type (`WrongType`) and keep
the one key rule of docs/type-mapping.md (`InvalidKey`); a message may nest no deeper than every backend
reads back (`MessageTooDeep`). Each check is built once per store, and the common case costs a few
comparisons: see bench/bench_inputs.py.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from prism_runtime.errors import InvalidKey, MessageTooDeep, WrongType
from prism_runtime.schema import Column, ColumnKind, EntitySpec

try:
    from prism_runtime import _wire
except ImportError:  # built without a C compiler: the batch check runs its Python loop alone
    _wire = None  # type: ignore[assignment]

M = TypeVar("M", bound=Message)

MAX_KEY_BYTES = 1024
"""The longest key (and sort key, edge end, series key): UTF-8 bytes of a string, or the bytes themselves.

Two of them fit one Postgres B-tree entry (at most about 2,700 bytes), and a base64 series key fits a NATS
subject inside the server's 4 KiB control line.
"""

MAX_MESSAGE_DEPTH = 100
"""The deepest nesting a stored message may have, counting itself, each nested message and each map entry.

Counted as protobuf's binary format nests, which is never shallower than the JSON mapping: the JSON parser of
the SQL backends reads 100 levels of messages, and the binary parser of stream payloads reads 100 below the
top. A message within this depth therefore reads back from every backend.
"""

_INT_RANGES = {
    ColumnKind.INT32: (-(2**31), 2**31 - 1),
    ColumnKind.INT64: (-(2**63), 2**63 - 1),
}
# Key kinds with a length: the ones whose values in a message still need checking (integers are in range).
_SIZED = frozenset({ColumnKind.STRING, ColumnKind.BYTES})
# A string of at most this many characters is at most MAX_KEY_BYTES in UTF-8: no need to encode it to measure.
_SHORT = MAX_KEY_BYTES // 4
_ANY = "google.protobuf.Any"

KeyCheck = Callable[[Any], Any]
"""Returns a key argument as the backend takes it, or raises WrongType or InvalidKey."""


def key_check(namespace: str, column: Column) -> KeyCheck:
    """Return the check of key arguments (get, delete, scan bounds, query, traversals) of a key column."""
    invalid = _Refusal(namespace, column)
    if column.kind is ColumnKind.STRING:

        def text(key: Any) -> Any:
            # The common case in one expression: an ASCII string holds no surrogate and one byte per character.
            if type(key) is str and 0 < len(key) <= MAX_KEY_BYTES and key.isascii() and "\x00" not in key:
                return key
            return invalid.text(key)

        return text
    if column.kind is ColumnKind.BYTES:

        def blob(key: Any) -> Any:
            if type(key) is bytes and 0 < len(key) <= MAX_KEY_BYTES:
                return key
            return invalid.blob(key)

        return blob
    low, high = _INT_RANGES.get(column.kind, (None, None))
    if low is None or high is None:
        raise ValueError(f"namespace {namespace!r}: {column.name} is not a key type ({column.kind})")

    def number(key: Any) -> Any:
        if type(key) is int and low <= key <= high:
            return key
        return invalid.number(key, low, high)

    return number


# The Python types a finder's value may have, by column kind: what the field itself holds (bool is an int to
# Python, but no integer field compares equal to True in every backend, so it is refused there).
_VALUE_TYPES: dict[ColumnKind, tuple[type, ...]] = {
    ColumnKind.STRING: (str,),
    ColumnKind.BYTES: (bytes,),
    ColumnKind.BOOL: (bool,),
    ColumnKind.FLOAT: (float, int),
    ColumnKind.DOUBLE: (float, int),
    **{kind: (int,) for kind in (ColumnKind.INT32, ColumnKind.INT64, ColumnKind.UINT64, ColumnKind.ENUM)},
}


def value_check(namespace: str, column: Column) -> Callable[[Any], Any]:
    """Return the check of a value a finder compares `column` with: its Python type is the field's."""
    allowed = _VALUE_TYPES[column.kind]
    integer = allowed == (int,)

    def check(value: Any) -> Any:
        if isinstance(value, allowed) and not (integer and isinstance(value, bool)):
            return value
        raise WrongType(
            f"find_by_{column.name} takes {allowed[0].__name__}, got {_type_name(value)}",
            namespace=namespace,
            field=column.name,
        )

    return check


class CheckedBatch(list[M]):
    """The items of a batch that passed its input check, as a list.

    `distinct` is True when the check saw every item's key and no two were equal, so a store need not look
    for repeated keys itself; False says nothing either way. `wire`, when the check was asked for it, holds
    each item's SerializeToString bytes, in order: what a native row encoder reads instead of serializing
    the items again (prism_runtime.sql.wire_rows).
    """

    distinct = False
    wire: list[bytes] | None = None


def message_check(spec: EntitySpec, message: type[M]) -> Callable[[Any], None]:
    """Return the check of a message given to put, append or add: its type, its key values, its depth."""
    return message_checks(spec, message)[0]


def message_checks(
    spec: EntitySpec, message: type[M], *, distinct: bool = False, wire: bool = False
) -> tuple[Callable[[Any], None], Callable[[Iterable[Any]], CheckedBatch[M]]]:
    """Return the check of one message given to put, append or add (its type, its key values, its depth), and
    of a batch: the batch's items as a CheckedBatch, each checked, so a batch with one bad item writes nothing.

    Written out per entity, as the row codec is, because every write runs it: the key fields are read by name
    and their common case tested in line; anything else goes to the key field's full check. The batch check
    runs the same lines in its own loop, with no call per item. With `distinct`, on an entity whose one key
    field is a string or bytes (which the check reads anyway), it also tells whether the batch's keys are all
    different (CheckedBatch.distinct): a KeyValue put then skips its own search for repeated keys. With
    `wire`, it serializes the checked items right after (CheckedBatch.wire), while they are still in the
    processor's cache: a backend encoding rows from wire bytes then reads each message once, not twice.
    """
    namespace = spec.namespace
    name = message.DESCRIPTOR.full_name

    def wrong(item: Any) -> WrongType:
        return WrongType(f"expected a {name} message, got {_type_name(item)}", namespace=namespace)

    def deep() -> MessageTooDeep:
        return MessageTooDeep(
            f"a {name} nests deeper than {MAX_MESSAGE_DEPTH} levels (messages and map entries), which not "
            "every backend can read back; store the deep part flattened",
            namespace=namespace,
        )

    env: dict[str, Any] = {
        "_M": message,
        "_wrong": wrong,
        "_deep": deep,
        "_too_deep": too_deep,
        "_Batch": CheckedBatch,
        "_serialize": message.SerializeToString,
    }
    body = ["if type(item) is not _M and not isinstance(item, _M):", "    raise _wrong(item)"]
    for i, column in enumerate(spec.key_columns):
        # Integer fields hold only in-range integers: protobuf checks them on assignment.
        if column.kind not in _SIZED:
            continue
        env[f"_k{i}"] = key_check(namespace, column)
        plain = column.name.isidentifier() and not keyword.iskeyword(column.name)
        read = f"item.{column.name}" if plain else f"getattr(item, {column.name!r})"
        # A protobuf string holds no lone surrogate; one of at most _SHORT characters fits the byte limit.
        usual = (
            f'0 < len(_v) <= {_SHORT} and "\\x00" not in _v'
            if column.kind is ColumnKind.STRING
            else f"0 < len(_v) <= {MAX_KEY_BYTES}"
        )
        body += [f"_v = {read}", f"if not ({usual}):", f"    _k{i}(_v)"]
    deep_type = static_depth(message.DESCRIPTOR) > MAX_MESSAGE_DEPTH
    if deep_type:
        body += ["if _too_deep(item):", "    raise _deep()"]
    # The key the check reads (`_v` after the key's lines), when it is the entity's only key field.
    keyed = distinct and len(spec.key_columns) == 1 and spec.key_columns[0].kind in _SIZED
    # With wire bytes wanted, the common case runs in C in one pass (_wire.check_batch); None: the loop decides.
    native = wire and keyed and not deep_type and _wire is not None
    if native:
        key = spec.key_columns[0]
        is_text = key.kind is ColumnKind.STRING
        check_batch = _wire.check_batch
        env["_native"] = lambda batch: check_batch(batch, message, key.number, is_text, MAX_KEY_BYTES)
    source = (
        "def admit(item):\n"
        + "".join(f"    {line}\n" for line in body)
        + "def admit_all(items):\n    batch = _Batch(items)\n"
        + (
            "    _fast = _native(batch)\n    if _fast is not None:\n"
            "        batch.wire, batch.distinct = _fast\n        return batch\n"
            if native
            else ""
        )
        + ("    _keys = set()\n    _add = _keys.add\n" if keyed else "")
        + "    for item in batch:\n"
        + "".join(f"        {line}\n" for line in body)
        + ("        _add(_v)\n    batch.distinct = len(_keys) == len(batch)\n" if keyed else "")
        + ("    batch.wire = list(map(_serialize, batch))\n" if wire else "")
        + "    return batch\n"
    )
    exec(compile(source, f"<prism input check of {name}>", "exec"), env)
    return env["admit"], env["admit_all"]


class _Refusal:
    """The slow path of a key check: accepts what the fast path did not recognize, or says what is wrong."""

    def __init__(self, namespace: str, column: Column) -> None:
        self.namespace = namespace
        self.field = column.name

    def _wrong(self, expected: str, key: Any) -> WrongType:
        return WrongType(
            f"key field {self.field} takes {expected}, got {_type_name(key)}",
            namespace=self.namespace,
            field=self.field,
        )

    def _invalid(self, what: str) -> InvalidKey:
        return InvalidKey(f"key field {self.field} {what}", namespace=self.namespace, field=self.field)

    def _length(self, size: int) -> None:
        if size == 0:
            raise self._invalid(
                "is empty: a key must be set (an empty value is what protobuf gives an unset field)"
            )
        if size > MAX_KEY_BYTES:
            raise self._invalid(f"is {size} bytes long; the limit is {MAX_KEY_BYTES} bytes")

    def text(self, key: Any) -> str:
        if not isinstance(key, str):
            raise self._wrong("str", key)
        try:
            size = len(key) if len(key) <= _SHORT and key.isascii() else len(key.encode())
        except UnicodeEncodeError:
            raise self._invalid("holds a lone surrogate, which is not valid UTF-8") from None
        self._length(size)
        if "\x00" in key:
            raise self._invalid("holds U+0000, which no key may hold (Postgres text cannot store it)")
        return str(key)

    def blob(self, key: Any) -> bytes:
        if not isinstance(key, bytes):
            raise self._wrong("bytes", key)
        self._length(len(key))
        return bytes(key)

    def number(self, key: Any, low: int, high: int) -> int:
        if not isinstance(key, int) or isinstance(key, bool):
            raise self._wrong("int", key)
        if not low <= key <= high:
            raise self._invalid(f"must be within {low}..{high}")
        return int(key)


def _type_name(value: Any) -> str:
    kind = type(value)
    if isinstance(value, Message):
        return f"a {value.DESCRIPTOR.full_name} message"
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


# How deep a message type can nest: finite for the usual schema, so its messages need no walk at put.
_STATIC: dict[str, float] = {}
_FIELDS: dict[str, tuple[tuple[str, int, float], ...]] = {}
# How a message-typed field holds its messages: one, a list, a map of messages, a map of scalars.
_SINGLE, _REPEATED, _MAP, _SCALAR_MAP = 0, 1, 2, 3


def static_depth(descriptor: Any) -> float:
    """Return the most levels a message of this type can span (itself 1), or inf for a recursive type or Any."""
    return _static_depth(descriptor, set())


def _static_depth(descriptor: Any, open_types: set[str]) -> float:
    name = descriptor.full_name
    known = _STATIC.get(name)
    if known is not None:
        return known
    if name == _ANY or name in open_types:
        # Any holds a message of any type; a type met again on its own path is recursive.
        return math.inf
    open_types.add(name)
    depth = 1 + max(
        (_static_depth(f.message_type, open_types) for f in descriptor.fields if f.message_type is not None),
        default=0,
    )
    open_types.discard(name)
    _STATIC[name] = depth
    return depth


def _message_fields(descriptor: Any) -> tuple[tuple[str, int, float], ...]:
    """Return (name, cardinality, most levels below) of each message-typed field: all a walk needs."""
    fields = _FIELDS.get(descriptor.full_name)
    if fields is None:
        out = []
        for f in descriptor.fields:
            sub = f.message_type
            if sub is None:
                continue
            if sub.GetOptions().map_entry:
                values = _MAP if sub.fields_by_name["value"].message_type is not None else _SCALAR_MAP
                out.append((f.name, values, static_depth(sub)))
            elif _is_repeated(f):
                out.append((f.name, _REPEATED, static_depth(sub)))
            else:
                out.append((f.name, _SINGLE, static_depth(sub)))
        fields = _FIELDS[descriptor.full_name] = tuple(out)
    return fields


def _is_repeated(field: Any) -> bool:
    # protobuf 6+ has is_repeated; older runtimes only the label.
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def too_deep(message: Message, level: int = 1, limit: int = MAX_MESSAGE_DEPTH) -> bool:
    """Return whether `message`, standing at `level`, or anything in it lies deeper than `limit`.

    Walks only the fields whose type can reach past the limit, and stops at the first level beyond it, so
    the walk never nests deeper than `limit` calls.
    """
    if level > limit:
        return True
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == _ANY:
        try:
            inner = _unpack(message)
        except DecodeError:
            return True  # packed deeper than the binary parser reads
        # The JSON mapping inlines the packed message one level below the Any.
        return inner is not None and too_deep(inner, level + 1, limit)
    for name, cardinality, below in _message_fields(descriptor):
        if level + below <= limit:
            continue
        if cardinality == _SINGLE:
            if message.HasField(name) and too_deep(getattr(message, name), level + 1, limit):
                return True
        elif cardinality == _REPEATED:
            if any(too_deep(item, level + 1, limit) for item in getattr(message, name)):
                return True
        else:
            entries = getattr(message, name)
            if not entries:
                continue
            # Each entry is a message of its own (level + 1) holding the value (level + 2).
            if level + 1 > limit:
                return True
            if cardinality == _MAP and any(too_deep(v, level + 2, limit) for v in entries.values()):
                return True
    return False


def _unpack(packed: Any) -> Message | None:
    """Return the message inside an Any, or None when its type is not in the default pool."""
    type_name = str(packed.type_url).rsplit("/", 1)[-1]
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    except KeyError:
        return None
    inner: Message = message_factory.GetMessageClass(descriptor)()
    inner.ParseFromString(packed.value)
    return inner
