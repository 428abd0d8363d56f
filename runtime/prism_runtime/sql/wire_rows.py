"""The native row encoder: an entity's bind values read from its messages' wire bytes, in C.

A put spends most of its Python time reading fields out of messages: each attribute read of a upb message
looks the field up by name and builds a Python object, and a repeated field builds a container to copy from.
`SerializeToString` writes every set field in one C call, and the extension (`runtime/native/rows.c`) reads
those bytes in one pass, so the same row costs a third as much (bench/bench_sqlite_kv.py, the "encode" side).

The plan is made from the Python encoder's own column list (prism_runtime.sql.codec), and the Python encoder
stays the reference: the extension gives exactly its values (tests/test_wire_rows.py, every field type on
both SQL dialects), and hands back to it what it does not read itself: a column's conversion by the dialect,
a message-typed field's JSON, and any message whose bytes hold something unexpected (a group, a field of
another wire type). Where the extension is not built (no C compiler at install), or PRISM_NATIVE_ROWS=0,
`native_encoders` returns None and the codec uses the Python encoder alone.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from prism_runtime.schema import Column, ColumnKind
from prism_runtime.sql.dialect import SqlDialect, identity, json_integer_list, json_string_list

try:
    from prism_runtime import _wire
except ImportError:  # built without a C compiler: the Python encoder serves alone
    _wire = None  # type: ignore[assignment]

_FD = FieldDescriptor
_TIMESTAMP = "google.protobuf.Timestamp"


class Mode(enum.IntEnum):
    """How the extension makes a column's value (the MODE_* of runtime/native/rows.c)."""

    ABSENT = 0  # no field: the value of an empty message (a blind index column: None)
    EXPIRES = 1  # no field: the expiry the call is given
    SCALAR = 2  # a singular scalar, through the dialect's encoder unless that is the identity
    JSON_STRINGS = 3  # a repeated string as JSON text (json_string_list)
    JSON_INTS = 4  # a repeated integer or enum as JSON text (json_integer_list)
    LIST = 5  # a repeated scalar as a list, through the dialect's encoder unless the array takes it as is
    TIMESTAMP = 6  # a Timestamp, given to the dialect's encoder as (seconds, nanos)
    PRESENT = 7  # anything else: the Python encoder's expression, run when the field is on the wire


Encoders = tuple[
    Callable[..., tuple[Any, ...]], Callable[..., list[tuple[Any, ...]]], Callable[..., list[Any]]
]
"""encode(message, expires=None), and encode_rows and encode_flat(messages, expires=None, wires=None)."""


def available() -> bool:
    """Whether the native encoder is built and not switched off (PRISM_NATIVE_ROWS=0)."""
    return _wire is not None and os.environ.get("PRISM_NATIVE_ROWS", "1") != "0"


def native_encoders(
    columns: Sequence[Column],
    dialect: SqlDialect,
    message: type[Message],
    expressions: Sequence[str],
    env: dict[str, Any],
    fallback: Callable[..., tuple[Any, ...]],
) -> Encoders | None:
    """Return the native encode, encode_rows and encode_flat of these columns, or None where none applies.

    `expressions` and `env` are the Python encoder's, column by column (codec._column_value): a column the
    extension does not read itself runs its expression on the message; `fallback` is the Python encode,
    for the messages the extension hands back.
    """
    if not available() or not _readable(message.DESCRIPTOR):
        return None
    empty = fallback(message(), None)  # every column's value when its field is not on the wire
    fields = message.DESCRIPTOR.fields_by_name
    plan: list[tuple[int, int, int, Any, Callable[[Any], Any] | None]] = []
    for i, column in enumerate(columns):
        if column.blind_index_of:
            plan.append((0, 0, Mode.ABSENT, empty[i], None))
        elif column.expiry:
            plan.append((0, 0, Mode.EXPIRES, None, None))
        else:
            field = fields[column.name]
            mode, convert = _mode(column, field, dialect)
            if mode is Mode.PRESENT:
                # The Python encoder's own expression for the column, run only when the field is on the wire.
                convert = eval(f"lambda _m: {expressions[i]}", env)
            plan.append((field.number, field.type, mode, empty[i], convert))
    encoder = _wire.Plan(plan, fallback, message.SerializeToString)
    return encoder.row, encoder.rows, encoder.flat


def _mode(column: Column, field: Any, dialect: SqlDialect) -> tuple[Mode, Callable[[Any], Any] | None]:
    encode = dialect.encoder(column)
    if column.kind is ColumnKind.JSON or column.wrapped:
        return Mode.PRESENT, None
    if column.repeated:
        if encode is json_string_list and field.type == _FD.TYPE_STRING:
            return Mode.JSON_STRINGS, None
        if encode is json_integer_list and field.type not in (_FD.TYPE_BOOL, _FD.TYPE_MESSAGE):
            return Mode.JSON_INTS, None
        if field.message_type is not None:
            return Mode.PRESENT, None
        if dialect.supports_arrays and dialect.scalar_encoder(column.kind) is identity:
            return Mode.LIST, None
        return Mode.LIST, encode
    if column.kind is ColumnKind.TIMESTAMP and field.message_type is not None:
        if field.message_type.full_name == _TIMESTAMP:
            return Mode.TIMESTAMP, encode
        return Mode.PRESENT, None
    if field.message_type is not None:
        return Mode.PRESENT, None
    return Mode.SCALAR, None if encode is identity else encode


def _readable(descriptor: Any) -> bool:
    """Whether every field's wire bytes say what its Python value is: not so for a closed enum, whose
    unknown numbers the message keeps as unknown fields under the field's own number."""
    for field in descriptor.fields:
        kind = field.enum_type
        if kind is not None and getattr(kind, "is_closed", False):
            return False
    return True
