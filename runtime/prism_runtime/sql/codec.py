"""Message <-> row: one tuple of bind values per message, in column order, and back.

Built once per (entity, dialect): the encoder and decoder are Python functions written out for the entity's
columns, so the per-row work is only what each column needs, with no loop over column plans.
"""

from __future__ import annotations

import base64
import keyword
import math
import operator
import struct
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from prism_runtime.corrupt import corrupt_row
from prism_runtime.errors import CorruptRow
from prism_runtime.schema import Column, ColumnKind, EntitySpec
from prism_runtime.sql.dialect import SqlDialect, identity, json_integer_list, json_string, json_string_list
from prism_runtime.sql.wire_rows import native_encoders

M = TypeVar("M", bound=Message)
_FD = FieldDescriptor


R_co = TypeVar("R_co", covariant=True)


class BatchEncoder(Protocol[R_co]):
    """Encodes many messages: (messages, expires=None, wires=None), wires their wire bytes or None."""

    def __call__(
        self, messages: Sequence[Any], expires: int | None = None, wires: Sequence[bytes] | None = None, /
    ) -> R_co: ...


class RowCodec(Generic[M]):
    """Encodes messages into rows and decodes rows into messages for one entity and dialect."""

    def __init__(self, spec: EntitySpec, message: type[M], dialect: SqlDialect, backend: str = "") -> None:
        self.spec = spec
        self.message = message
        self.columns = spec.columns
        self.backend = backend
        self.key_index = tuple(self.column_index(c.name) for c in spec.key_columns)
        self.row_key: Callable[[Sequence[Any]], Any] = operator.itemgetter(*self.key_index)
        """Return a hashable of an encoded row's key, equal for equal keys (a tuple only for compound keys)."""
        self.message_key: Callable[[M], Any] = operator.attrgetter(*(c.name for c in spec.key_columns))
        """Return a hashable of a message's key, equal exactly when the encoded keys are (encoders are one to one
        on key types: strings, bytes, integers)."""
        encode, encode_rows, encode_flat, self.native = _row_encoders(spec.columns, dialect, message)
        """native: whether the rows are read from wire bytes in C (prism_runtime.sql.wire_rows)."""
        self.encode: Callable[[M], tuple[Any, ...]] = encode
        """Return the bind values of one message, in column order (an expiry column: NULL, never expires)."""
        self.encode_expiring: Callable[[M, int | None], tuple[Any, ...]] = encode
        """Return the bind values of one message whose row expires at the epoch milliseconds given."""
        self.encode_rows: BatchEncoder[list[tuple[Any, ...]]] = encode_rows
        """Return the rows of many messages (expiring at the epoch milliseconds given, or None): `encode` of
        each, in one loop with no call per message. `wires`, the messages' SerializeToString bytes when the
        caller has them (CheckedBatch.wire), saves the native encoder serializing them again."""
        self.encode_flat: BatchEncoder[list[Any]] = encode_flat
        """Return the bind values of many messages in one list, row after row: a multi-row statement's
        parameters, without a tuple per row to flatten (`wires` as for encode_rows)."""
        self.decode: Callable[[Sequence[Any]], M] = _row_decoder(spec.columns, message, dialect, self.corrupt)
        """Return the message stored in one fetched row; raise CorruptRow when the row cannot be one."""

    def corrupt(self, row: Sequence[Any], error: BaseException) -> CorruptRow:
        """Return the error of a row that cannot be decoded: namespace and key, never a value of the row."""
        return corrupt_row(self.spec, self.key_of(row), self.backend, error)

    def decode_or_error(self, row: Sequence[Any]) -> M | CorruptRow:
        """Return the message stored in one fetched row, or the CorruptRow error saying it cannot be decoded."""
        try:
            return self.decode(row)
        except CorruptRow as error:
            return error

    def column_index(self, name: str) -> int:
        """Return the position of a column in encoded rows."""
        return next(i for i, c in enumerate(self.columns) if c.name == name)

    def key_of(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """Return the primary key values of an encoded or fetched row."""
        return tuple(row[i] for i in self.key_index)


def _row_encoders(
    columns: Sequence[Column], dialect: SqlDialect, message: type[Message]
) -> tuple[Callable[..., tuple[Any, ...]], Callable[..., list[Any]], Callable[..., list[Any]], bool]:
    """Return the functions giving the bind values of one message, of many as rows, and of many in one list,
    and whether they are the native ones.

    Written out for these columns: one tuple display, each column's expression written in place
    (`_column_value`), with no call per column unless its value needs converting, and none for an unset or
    empty field. The batch ones run the same display in a loop of their own, so a batch makes no Python call
    per message (about a tenth of a row's encoding); the flat one puts the values straight into the one list
    a multi-row statement binds.
    """
    # The class's HasField, called with the message: a bound method built per call costs as much again.
    env: dict[str, Any] = {"_has": message.HasField}
    fields = message.DESCRIPTOR.fields_by_name
    values = [_column_value(i, column, dialect, fields, env) for i, column in enumerate(columns)]
    row = "".join(f"{value}, " for value in values)
    source = (
        f"def encode(_m, _expires=None):\n    return ({row})\n"
        f"def encode_rows(_ms, _expires=None, _wires=None):\n    return [({row}) for _m in _ms]\n"
        f"def encode_flat(_ms, _expires=None, _wires=None):\n    _o = []\n    for _m in _ms:\n        _o += ({row})\n"
        "    return _o\n"
    )
    exec(compile(source, "<prism row encoder>", "exec"), env)
    # The same values read from the messages' wire bytes in C, where the extension is built (wire_rows.py).
    native = native_encoders(columns, dialect, message, values, env, env["encode"])
    if native is not None:
        return (*native, True)
    return env["encode"], env["encode_rows"], env["encode_flat"], False


def _column_value(i: int, column: Column, dialect: SqlDialect, fields: Any, env: dict[str, Any]) -> str:
    """Return the expression of column `i`'s bind value in the row encoder's source, adding what it calls to `env`.

    Presence is tested in line (HasField, or len() of a map or list), so an unset or empty field costs no
    call; a repeated field is read with a slice, which copies a protobuf container into a list in one step.
    """
    if column.blind_index_of:
        return "None"  # no field: the PII layer fills the blind index in (prism_runtime.pii.sealer)
    if column.expiry:
        return "_expires"  # no field: the store says when the row expires (RowCodec.encode_expiring)
    name = column.name
    read = _field(name)
    has = f"_has(_m, {name!r})"
    encode = dialect.encoder(column)
    if column.kind is ColumnKind.JSON:
        # An empty repeated or map field and an unset message field all store as null JSON.
        env[f"_z{i}"] = None if column.nullable else encode(None)
        env[f"_e{i}"], present = _json_encoder(fields[name], encode)
        if present == "len":
            return f"(_e{i}(_x) if len(_x := {read}) else _z{i})"
        return f"(_e{i}({read}) if {has} else _z{i})"
    if column.repeated:
        if dialect.supports_arrays and dialect.scalar_encoder(column.kind) is identity:
            return f"{read}[:]"  # an array of the values as they are
        if encode is json_string_list:  # the JSON text written in place: no call to a function that builds it
            env["_js"] = json_string
            return 'f"[{' + f"','.join(map(_js, {read}[:]))" + '}]"'
        if encode is json_integer_list:
            return 'f"[{' + f"','.join(map(int.__repr__, {read}[:]))" + '}]"'
        env[f"_e{i}"] = encode  # every array encoder takes a list
        return f"_e{i}({read}[:])"
    if column.kind is ColumnKind.TIMESTAMP:
        env[f"_e{i}"] = lambda ts: encode((ts.seconds, ts.nanos))
        env[f"_z{i}"] = None if column.nullable else encode((0, 0))
        return f"(_e{i}({read}) if {has} else _z{i})"
    if column.wrapped:
        read = f"{read}.value"
    if encode is not identity:
        env[f"_e{i}"] = encode
        read = f"_e{i}({read})"
    return f"({read} if {has} else None)" if column.nullable or column.wrapped else read


def _json_encoder(field: Any, encode: Callable[[Any], Any]) -> tuple[Callable[[Any], Any], str]:
    """Return the JSON text of a present field's value, and how presence is told: "len" (a map or list) or "has"."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        if key_field.type == _FD.TYPE_STRING and value_field.type in _AS_IS:
            return (lambda entries: encode(dict(entries.items()))), "len"
        key_of, value_of = _map_key(key_field), _json_scalar(value_field)
        return (lambda entries: encode({key_of(k): value_of(v) for k, v in entries.items()})), "len"
    element = _json_scalar(field)
    if _is_repeated(field):
        return (lambda values: encode([element(v) for v in values])), "len"
    return (lambda value: encode(element(value))), "has"


# The integer field types; with bool, string and enum, the scalars whose Python value is already their JSON
# value (see _json_scalar).
_INT_TYPES = frozenset(
    {
        _FD.TYPE_INT32,
        _FD.TYPE_INT64,
        _FD.TYPE_UINT32,
        _FD.TYPE_UINT64,
        _FD.TYPE_SINT32,
        _FD.TYPE_SINT64,
        _FD.TYPE_FIXED32,
        _FD.TYPE_FIXED64,
        _FD.TYPE_SFIXED32,
        _FD.TYPE_SFIXED64,
    }
)
_AS_IS = _INT_TYPES | {_FD.TYPE_BOOL, _FD.TYPE_STRING, _FD.TYPE_ENUM}


def _is_repeated(field: Any) -> bool:
    # protobuf 6+ has is_repeated; older runtimes only the label.
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == _FD.LABEL_REPEATED


def _map_key(field: Any) -> Callable[[Any], str]:
    if field.type == _FD.TYPE_BOOL:
        return lambda k: "true" if k else "false"
    return str


def _json_scalar(field: Any) -> Callable[[Any], Any]:
    kind = field.type
    if kind in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP):
        return lambda v: json_format.MessageToDict(
            v, preserving_proto_field_name=True, use_integers_for_enums=True
        )
    if kind == _FD.TYPE_BYTES:
        return lambda v: base64.b64encode(v).decode("ascii")
    if kind in (_FD.TYPE_FLOAT, _FD.TYPE_DOUBLE):
        return lambda v: (
            v if math.isfinite(v) else ("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
        )
    return lambda v: v  # ints (exact in JSON numbers as Python writes them), bools, strings, enum numbers


def _row_decoder(
    columns: Sequence[Column],
    message: type[M],
    dialect: SqlDialect,
    corrupt: Callable[[Sequence[Any], BaseException], CorruptRow],
) -> Callable[[Sequence[Any]], M]:
    """Return the function building the message of one fetched row, written out for these columns.

    Compiled once per (entity, dialect), the way dataclasses writes __init__, because decoding is the CPU
    cost of every read: one constructor call takes every plain field as a keyword argument (None is unset
    to protobuf's constructor, so plain fields need no None check); repeated, Timestamp and wrapper fields,
    which the constructor sets slowly, are set on the new message. JSON columns holding a map of scalars or a
    flat message are set directly (`json_setter`); other JSON columns, and any value the direct way refuses,
    go through ParseDict. Any failure is the row's fault (the codec wrote none of it): it raises CorruptRow, from a handler that costs
    nothing until it runs.
    """
    env: dict[str, Any] = {"_M": message, "_parse": parse_dict, "_corrupt": corrupt}
    head: list[str] = []  # reads of columns that need a None check before conversion
    kwargs: list[tuple[str, str]] = []  # (field, expression) passed to the constructor
    after: list[str] = []  # fields set on the constructed message
    json: list[tuple[int, str]] = []  # JSON columns (position, field), parsed by ParseDict
    fast: list[tuple[int, str]] = []  # JSON columns set by a json_setter, ParseDict only if it refuses
    fields = message.DESCRIPTOR.fields_by_name
    for i, column in enumerate(columns):
        if column.blind_index_of or column.expiry:
            continue  # no field: the PII layer's lookup column, or when the row expires
        name = column.name
        if column.encrypted:
            # The PII layer already turned the ciphertext into the field's str or bytes (or left None).
            kwargs.append((name, f"_row[{i}]"))
            continue
        decode = dialect.decoder(column)
        call = f"_d{i}(_v)"
        env[f"_d{i}"] = decode
        if column.kind is ColumnKind.JSON:
            setter = json_setter(fields[name])
            if setter is None:
                json.append((i, name))
            else:
                env[f"_j{i}"] = setter
                fast.append((i, name))
        elif column.repeated:
            if dialect.supports_arrays and dialect.scalar_decoder(column.kind) is identity:
                call = "_v"  # the driver's list, copied by extend
            after += [
                f"_v = _row[{i}]",
                "if _v:" if dialect.supports_arrays else "if _v is not None and _v != '[]':",
                f"    {_field(name)}.extend({call})",
            ]
        elif column.kind is ColumnKind.TIMESTAMP:
            after += [
                f"_v = _row[{i}]",
                "if _v is not None:",
                f"    _t = {_field(name)}",
                f"    _t.seconds, _t.nanos = {call}",
            ]
        elif column.wrapped:
            after += [
                f"_v = _row[{i}]",
                "if _v is not None:",
                f"    {_field(name)}.value = {'_v' if decode is identity else call}",
            ]
        elif decode is identity:
            kwargs.append((name, f"_row[{i}]"))
        else:
            head.append(f"_v{i} = _row[{i}]")
            kwargs.append((name, f"None if _v{i} is None else _d{i}(_v{i})"))
    plain = [f"{name}={value}" for name, value in kwargs if _is_name(name)]
    quoted = [f"{name!r}: {value}" for name, value in kwargs if not _is_name(name)]
    if quoted:
        plain.append("**{" + ", ".join(quoted) + "}")
    body = [*head, f"_m = _M({', '.join(plain)})", *after]
    # Postgres and SQLite both store an empty field as the JSON text null: no need to parse it. A value the
    # setter refuses (written by another tool, say) gets ParseDict's verdict, so either way the result is
    # ParseDict's.
    for i, name in fast:
        body += [
            f"_v = _row[{i}]",
            "if _v is not None and _v != 'null':",
            f"    _x = _d{i}(_v)",
            "    if _x is not None:",
            "        try:",
            f"            _j{i}(_m, _x)",
            "        except Exception:",
            f"            _m.ClearField({name!r})",
            f"            _parse({{{name!r}: _x}}, _m)",
        ]
    # One JSON column left for ParseDict is parsed on its own; more are collected into one dict for one call.
    single = len(json) == 1
    if not single and json:
        body.append("_p = {}")
    for i, name in json:
        body += [
            f"_v = _row[{i}]",
            "if _v is not None and _v != 'null':",
            f"    _x = _d{i}(_v)",
            "    if _x is not None:",
            f"        _parse({{{name!r}: _x}}, _m)" if single else f"        _p[{name!r}] = _x",
        ]
    if not single and json:
        body += ["if _p:", "    _parse(_p, _m)"]
    source = (
        "def decode(_row):\n    try:\n"
        + "".join(f"        {line}\n" for line in [*body, "return _m"])
        # `from None`: the cause's message may quote the row's values.
        + "    except Exception as _e:\n        raise _corrupt(_row, _e) from None\n"
    )
    exec(compile(source, f"<prism decoder of {message.DESCRIPTOR.full_name}>", "exec"), env)
    decoder: Callable[[Sequence[Any]], M] = env["decode"]
    return decoder


_FLOAT_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
"""The largest float32 (3.4028234663852886e+38)."""
_FLOAT_MAX_WRITTEN = float("3.4028235e+38")
"""How MessageToDict writes it in a float field: its shortest float32 text, which read as a double is larger."""


def parse_dict(value: dict[str, Any], message: Message) -> None:
    """Merge the JSON form `value` into `message` as ParseDict does, reading back every float field written.

    MessageToDict writes the largest float32 by its shortest text, 3.4028235e+38, which ParseDict reads as a
    double above the float32 range and refuses ("Float value too large"), so a row holding that value in a
    float field of a JSON column could be stored and never read back. A refused value is parsed again with
    such floats, in float fields only, set to the largest float32: the value they were written from.
    """
    try:
        json_format.ParseDict(value, message)
    except json_format.ParseError:
        clamped = _clamp_floats(message.DESCRIPTOR, value)
        if clamped == value:
            raise
        for name in value:
            message.ClearField(name)  # undo what the refused parse merged
        json_format.ParseDict(clamped, message)


def _clamp_floats(kind: Any, value: Any) -> Any:
    """Return the JSON form of a `kind` message with MessageToDict's text of ±FLT_MAX in float fields clamped."""
    if not isinstance(value, dict):
        return value
    fields = kind.fields_by_name
    out: dict[str, Any] = {}
    for name, item in value.items():
        field = fields.get(name)
        if field is None:
            out[name] = item
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            inner = field.message_type.fields_by_name["value"]
            out[name] = (
                {k: _clamp_value(inner, v) for k, v in item.items()} if isinstance(item, dict) else item
            )
        elif _is_repeated(field) and isinstance(item, list):
            out[name] = [_clamp_value(field, v) for v in item]
        else:
            out[name] = _clamp_value(field, item)
    return out


def _clamp_value(field: Any, value: Any) -> Any:
    kind = field.message_type
    if kind is not None:
        if kind.full_name == "google.protobuf.FloatValue":
            return _clamp_float(value)
        return _clamp_floats(kind, value)
    return _clamp_float(value) if field.type == _FD.TYPE_FLOAT else value


def _clamp_float(value: Any) -> Any:
    if isinstance(value, float) and _FLOAT_MAX < abs(value) <= _FLOAT_MAX_WRITTEN:
        return math.copysign(_FLOAT_MAX, value)
    return value


def json_setter(field: Any) -> Callable[[Any, Any], None] | None:
    """Return a function setting `field` of a message from the JSON value `json_field` stored, without ParseDict.

    Covers a map whose values are scalars or enums and a flat message (scalar and repeated scalar fields
    only, none of protobuf's well-known types), which is what ParseDict would build, at a fraction of its
    cost. Returns None for other fields. The function raises on a value it cannot take (the caller then
    asks ParseDict).
    """
    name = field.name
    kind = field.message_type
    if kind is None:
        return None
    if kind.GetOptions().map_entry:
        value_field = kind.fields_by_name["value"]
        if value_field.message_type is not None:
            return None
        key = _from_json_key(kind.fields_by_name["key"])
        value = _from_json_value(value_field, int64_as_text=False)
        if key is None and value is None:
            return lambda m, x: getattr(m, name).update(x)
        key_of, value_of = key or _same, value or _same
        return lambda m, x: getattr(m, name).update({key_of(k): value_of(v) for k, v in x.items()})
    if _is_repeated(field) or not _is_flat(kind):
        return None
    fill = _flat_filler(kind)

    def set_message(m: Any, x: Any) -> None:
        sub = getattr(m, name)
        sub.SetInParent()  # present even when every field is at its default ({} in JSON)
        fill(sub, x)

    return set_message


def _same(value: Any) -> Any:
    return value


def _is_flat(kind: Any) -> bool:
    """Whether a message type has only scalar (or repeated scalar) fields and a plain JSON mapping."""
    if kind.full_name.startswith("google.protobuf."):
        return False  # Timestamp, Struct, wrappers and the rest have JSON mappings of their own
    return all(f.message_type is None for f in kind.fields)


def _flat_filler(kind: Any) -> Callable[[Any, Any], None]:
    """Return the function setting a flat message's fields from its MessageToDict form (proto field names).

    Field by field on the message itself: cheaper than building a message to merge. An unknown name raises
    (AttributeError), and so does a value of the wrong type (TypeError).
    """
    converters: dict[str, Callable[[Any], Any]] = {}
    repeated = frozenset(f.name for f in kind.fields if _is_repeated(f))
    for f in kind.fields:
        convert = _from_json_value(f, int64_as_text=True)
        if convert is not None:
            converters[f.name] = _each(convert) if f.name in repeated else convert
    convert_of = converters.get

    def fill(sub: Any, x: Any) -> None:
        for key, value in x.items():
            convert = convert_of(key)
            if convert is not None:
                value = convert(value)
            if key in repeated:
                getattr(sub, key).extend(value)
            else:
                setattr(sub, key, value)

    return fill


def _each(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda values: [convert(v) for v in values]


# 64-bit integers, which MessageToDict writes as JSON strings.
_INT64_TYPES = frozenset(
    {_FD.TYPE_INT64, _FD.TYPE_UINT64, _FD.TYPE_SINT64, _FD.TYPE_FIXED64, _FD.TYPE_SFIXED64}
)
_BOOL_KEYS = {"true": True, "false": False}


def _from_json_key(field: Any) -> Callable[[str], Any] | None:
    """Return the conversion of a JSON object key to a map key of `field`'s type, None when it is the key."""
    if field.type == _FD.TYPE_BOOL:
        return _BOOL_KEYS.__getitem__
    if field.type in _INT_TYPES:
        return int
    return None


def _from_json_value(field: Any, *, int64_as_text: bool) -> Callable[[Any], Any] | None:
    """Return the conversion of a scalar's JSON value to the field's Python value, None when it is the value.

    Map values are written by `_json_scalar` (64-bit integers as numbers); message fields by MessageToDict,
    which writes 64-bit integers as text (`int64_as_text`).
    """
    if field.type == _FD.TYPE_BYTES:
        return base64.b64decode
    if field.type in (_FD.TYPE_FLOAT, _FD.TYPE_DOUBLE):
        return float  # also reads "NaN", "Infinity" and "-Infinity"
    if int64_as_text and field.type in _INT64_TYPES:
        return int
    return None


def _is_name(field: str) -> bool:
    return field.isidentifier() and not keyword.iskeyword(field)


def _field(name: str) -> str:
    """Return the expression of field `name` of the message `_m` in generated source."""
    return f"_m.{name}" if _is_name(name) else f"getattr(_m, {name!r})"
