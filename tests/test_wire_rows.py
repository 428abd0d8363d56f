"""The native row encoder (prism_runtime._wire) writes exactly the Python encoder's rows.

The Python encoder is the reference: every case here encodes the same messages with both, on both SQL
dialects, through encode, encode_rows and encode_flat, and compares the reprs (a nan is unequal to itself;
repr tells every other float, -0.0 included, apart). Messages whose wire bytes the extension hands back to
Python (a field of another wire type, a group) are covered too, and so are field numbers past its direct
lookup table.
"""

from __future__ import annotations

import importlib
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import BuiltinMethodType, ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

import prism_runtime
from prism_runtime import _wire
from prism_runtime.inputs import message_checks
from prism_runtime.schema import Abstraction, Column, ColumnKind, EntitySpec
from prism_runtime.sql import wire_rows
from prism_runtime.sql.codec import RowCodec
from prism_runtime.sql.dialect import SqlDialect
from prism_runtime.sql.dialects import PostgresDialect, SqliteDialect

_F = descriptor_pb2.FieldDescriptorProto
DIALECTS = pytest.mark.parametrize(
    "dialect", [PostgresDialect(), SqliteDialect()], ids=["postgres", "sqlite"]
)


def test_the_extension_is_built() -> None:
    """CI builds it (gcc and the Python headers are there): a missing build must not pass as Python speed."""
    assert wire_rows.available(), "prism_runtime._wire did not build: see runtime/setup.py"


def codecs(
    spec: EntitySpec, message: Any, dialect: SqlDialect, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """Return (Python codec, native codec) of one entity."""
    with monkeypatch.context() as patch:
        patch.setenv("PRISM_NATIVE_ROWS", "0")
        python = RowCodec(spec, message, dialect)
    native = RowCodec(spec, message, dialect)
    assert is_native(native) and not is_native(python)
    return python, native


def is_native(codec: RowCodec[Any]) -> bool:
    """Whether a codec encodes with the extension (its encoders are the Plan's methods, not Python functions)."""
    return all(isinstance(f, BuiltinMethodType) for f in (codec.encode, codec.encode_rows, codec.encode_flat))


def assert_same_rows(python: Any, native: Any, messages: list[Any], expires: int | None = None) -> None:
    rows = [python.encode_expiring(m, expires) for m in messages]
    assert repr([native.encode_expiring(m, expires) for m in messages]) == repr(rows)
    assert repr(native.encode_rows(messages, expires)) == repr(rows)
    assert repr(native.encode_flat(messages, expires)) == repr([v for row in rows for v in row])
    # From the wire bytes the input check keeps (CheckedBatch.wire): the same rows.
    wires = [m.SerializeToString() for m in messages]
    assert repr(native.encode_rows(messages, expires, wires)) == repr(rows)
    assert repr(native.encode_flat(messages, expires, wires)) == repr([v for row in rows for v in row])
    for message, row in zip(messages, rows, strict=True):
        assert repr(python.decode(row)) == repr(native.decode(native.encode_expiring(message, expires)))


@pytest.fixture(scope="module")
def types(generated: Path) -> tuple[ModuleType, ModuleType]:
    return (
        importlib.import_module("prismtest.types.v1.types_pb2"),
        importlib.import_module("prismtest.types.v1.types_prism"),
    )


@pytest.fixture(params=[PostgresDialect(), SqliteDialect()], ids=["postgres", "sqlite"])
def all_types_codecs(
    request: pytest.FixtureRequest, types: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> tuple[ModuleType, Any, Any]:
    """AllTypes' pb2 module and its Python and native codecs, on each dialect."""
    pb2, prism = types
    return (pb2, *codecs(prism._ALL_TYPES_SPEC, pb2.AllTypes, request.param, monkeypatch))


_INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
_INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
_UINT32 = st.integers(0, (1 << 32) - 1)
_UINT64 = st.integers(0, (1 << 64) - 1)
# Every character a protobuf string holds: quotes, backslashes and control characters are what JSON escapes.
_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=8) | st.sampled_from(
    ["", '"', "\\", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é✓🔑", "\u2028"]
)
_FLOAT32 = st.floats(width=32)
_DOUBLE = st.floats() | st.sampled_from([-0.0, math.inf, -math.inf, math.nan, 5e-324])


@st.composite
def all_types(draw: st.DrawFn, pb2: ModuleType) -> Any:
    """An AllTypes message with any subset of its fields set, each to any value its type holds."""
    scalars: dict[str, Any] = {
        "i32": _INT32,
        "i64": _INT64,
        "u32": _UINT32,
        "u64": _UINT64,
        "s32": _INT32,
        "s64": _INT64,
        "f32": _UINT32,
        "f64": _UINT64,
        "sf32": _INT32,
        "sf64": _INT64,
        "fl": _FLOAT32,
        "db": _DOUBLE,
        "flag": st.booleans(),
        "text": _TEXT,
        "blob": st.binary(max_size=8),
        "color": st.integers(-3, 80),  # numbers the enum does not name are kept too
        "maybe_int": _INT32,
        "maybe_text": _TEXT,
        "names": st.lists(_TEXT, max_size=4),
        "ratios": st.lists(_DOUBLE, max_size=3),
        "chunks": st.lists(st.binary(max_size=4), max_size=3),
        "colors": st.lists(st.integers(-2, 300), max_size=3),
        "counts": st.dictionaries(_TEXT, _INT64, max_size=3),
    }
    chosen = draw(st.sets(st.sampled_from(sorted(scalars))))
    message = pb2.AllTypes(id=draw(_TEXT.filter(bool)), **{name: draw(scalars[name]) for name in chosen})
    if draw(st.booleans()):
        message.inner.label = draw(_TEXT)
        message.inner.values.extend(draw(st.lists(_INT64, max_size=3)))
    for key in draw(st.lists(_INT32, max_size=2)):
        message.by_id[key].label = draw(_TEXT)
    for _ in range(draw(st.integers(0, 2))):
        message.inners.add(label=draw(_TEXT))
    if draw(st.booleans()):
        message.at.seconds = draw(st.integers(-62135596800, 253402300799))
        message.at.nanos = draw(st.integers(0, 999_999_999))
    if draw(st.booleans()):
        message.took.seconds = draw(st.integers(-(10**9), 10**9))
    if draw(st.booleans()):
        message.wrapped.value = draw(_INT64)
    if draw(st.booleans()):
        message.attrs.update({draw(_TEXT): draw(st.none() | st.booleans() | _TEXT | st.integers(-99, 99))})
    choice = draw(st.sampled_from(["", "choice_text", "choice_number", "choice_inner"]))
    if choice == "choice_text":
        message.choice_text = draw(_TEXT)
    elif choice == "choice_number":
        message.choice_number = draw(_INT64)
    elif choice == "choice_inner":
        message.choice_inner.SetInParent()
    return message


def test_every_field_type_encodes_as_python_does(all_types_codecs: tuple[ModuleType, Any, Any]) -> None:
    pb2, python, native = all_types_codecs

    @settings(max_examples=300, deadline=None)
    @given(
        messages=st.lists(all_types(pb2), min_size=1, max_size=4), expires=st.none() | st.integers(0, 1 << 50)
    )
    def check(messages: list[Any], expires: int | None) -> None:
        assert_same_rows(python, native, messages, expires)

    check()


def test_an_empty_message_and_defaults_encode_as_python_does(
    all_types_codecs: tuple[ModuleType, Any, Any],
) -> None:
    pb2, python, native = all_types_codecs
    zeros = pb2.AllTypes(id="z", maybe_int=0, maybe_text="", choice_number=0)
    zeros.inner.SetInParent()
    zeros.at.SetInParent()
    assert_same_rows(python, native, [pb2.AllTypes(), pb2.AllTypes(id="e"), zeros])
    # Rows never share a list: a driver may keep the one it was given.
    rows = native.encode_rows([pb2.AllTypes(id="a"), pb2.AllTypes(id="b")])
    assert all(a is not b for a, b in zip(*rows, strict=True) if isinstance(a, list))


def test_wire_bytes_the_extension_does_not_read_go_to_python(
    all_types_codecs: tuple[ModuleType, Any, Any],
) -> None:
    """Bytes that parse with unknown fields: one under a known field's number with another wire type (i32
    sent as bytes), a group, and a number no field has; each message still encodes as Python encodes it."""
    pb2, python, native = all_types_codecs
    base = pb2.AllTypes(id="k", i32=5, names=["x"]).SerializeToString()
    wrong_type = base + tag(2, 2) + bytes([1, 0x41])  # field 2 (int32) as length-delimited
    group = base + tag(99, 3) + tag(1, 0) + bytes([1]) + tag(99, 4)  # a group holding field 1 = 1
    unknown = base + tag(999, 0) + bytes([7])  # a number no field has, a varint: skipped
    raws = (wrong_type, group, unknown)
    messages = [pb2.AllTypes.FromString(raw) for raw in raws]
    assert [m.SerializeToString() for m in messages] == list(raws)  # kept as unknown fields, written back
    assert_same_rows(python, native, messages, 12)


def test_any_bytes_a_message_parses_from_encode_as_python_does(
    all_types_codecs: tuple[ModuleType, Any, Any],
) -> None:
    """Messages parsed from arbitrary bytes (unknown fields of every wire type, fields repeated, packed and
    unpacked runs), the bytes following a valid message so its fields are there too."""
    pb2, python, native = all_types_codecs

    @settings(max_examples=300, deadline=None)
    @given(message=all_types(pb2), tail=st.binary(max_size=40))
    def check(message: Any, tail: bytes) -> None:
        try:
            parsed = pb2.AllTypes.FromString(message.SerializeToString() + tail)
        except DecodeError:
            return
        assert_same_rows(python, native, [parsed])

    check()


def tag(number: int, wire_type: int) -> bytes:
    """Return a field's tag as the wire writes it (a varint)."""
    value, out = number << 3 | wire_type, bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def dynamic_message(name: str, fields: list[tuple[str, int, int, str]], *, proto2_enum: str = "") -> Any:
    """Return the class of message prismtest.wire.<name>, added to the default pool once: fields are
    (name, number, type, label "repeated" or ""); with `proto2_enum`, a proto2 file whose enum of that
    name (one value, 1) an ENUM field takes."""
    pool = descriptor_pool.Default()
    full = f"prismtest.wire.{name}"
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"prismtest/wire/{name.lower()}.proto",
        package="prismtest.wire",
        syntax="proto2" if proto2_enum else "proto3",
    )
    if proto2_enum:
        proto.enum_type.add(name=proto2_enum).value.add(name=f"{proto2_enum.upper()}_ONE", number=1)
    message = proto.message_type.add(name=name)
    for field, number, kind, label in fields:
        message.field.add(
            name=field,
            number=number,
            type=kind,
            label=_F.LABEL_REPEATED if label == "repeated" else _F.LABEL_OPTIONAL,
            type_name=f".prismtest.wire.{proto2_enum}" if kind == _F.TYPE_ENUM else None,
        )
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full))


def far_message() -> Any:
    """Return a message class whose fields have numbers past the extension's direct lookup."""
    return dynamic_message(
        "Far",
        [
            ("id", 300, _F.TYPE_STRING, ""),
            ("near", 1, _F.TYPE_SINT64, ""),
            ("marks", 70000, _F.TYPE_INT32, "repeated"),
            ("last", 536870911, _F.TYPE_BYTES, ""),
        ],
    )


FAR_SPEC = EntitySpec(
    namespace="prismtest_wire_far",
    message_name="prismtest.wire.Far",
    abstraction=Abstraction.KEY_VALUE,
    key="id",
    columns=(
        Column("id", 300, ColumnKind.STRING),
        Column("near", 1, ColumnKind.INT64),
        Column("marks", 70000, ColumnKind.INT32, repeated=True),
        Column("last", 536870911, ColumnKind.BYTES),
    ),
)


@DIALECTS
def test_field_numbers_past_the_direct_table(dialect: SqlDialect, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = far_message()
    python, native = codecs(FAR_SPEC, cls, dialect, monkeypatch)
    messages = [
        cls(id="a", near=-3, marks=[1, -(1 << 31), 7], last=b"\x00z"),
        cls(id="b"),
        cls(id="c", marks=[0]),
    ]
    assert_same_rows(python, native, messages)


def test_a_closed_enum_keeps_the_python_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proto2 enum keeps numbers it does not name as unknown fields under the field's number, so its wire
    bytes do not say the field's value: such an entity is not read natively."""
    name = "prismtest.wire.Closed"
    cls = dynamic_message(
        "Closed", [("id", 1, _F.TYPE_STRING, ""), ("level", 2, _F.TYPE_ENUM, "")], proto2_enum="Level"
    )
    spec = EntitySpec(
        namespace="prismtest_wire_closed",
        message_name=name,
        abstraction=Abstraction.KEY_VALUE,
        key="id",
        columns=(Column("id", 1, ColumnKind.STRING), Column("level", 2, ColumnKind.ENUM, nullable=True)),
    )
    codec = RowCodec(spec, cls, SqliteDialect())
    assert not is_native(codec)
    stray = cls.FromString(cls(id="k").SerializeToString() + bytes([2 << 3, 9]))  # level 9: not a Level
    assert codec.encode(stray) == ("k", None)


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_native(RowCodec(FAR_SPEC, far_message(), SqliteDialect()))
    monkeypatch.setenv("PRISM_NATIVE_ROWS", "0")
    assert not wire_rows.available()
    assert not is_native(RowCodec(FAR_SPEC, far_message(), SqliteDialect()))


def test_wires_must_match_the_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = far_message()
    _, native = codecs(FAR_SPEC, cls, SqliteDialect(), monkeypatch)
    with pytest.raises(ValueError, match="one entry per message"):
        native.encode_rows([cls(id="a"), cls(id="b")], None, [b""])
    # An entry that is not bytes is serialized again, as without wires.
    assert native.encode_flat([cls(id="a")], None, [None]) == native.encode_flat([cls(id="a")])


async def test_a_checked_batch_carries_wire_bytes_only_to_a_native_store(
    tmp_path: Path, types: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store asks its backend (takes_wire): the check serializes each item once, and put_many reads the
    rows from those bytes; a Python-encoding backend gets no bytes to ignore."""
    pb2, prism = types
    items = [pb2.AllTypes(id=f"k{i}", i32=i, names=["n"]) for i in range(300)]
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'native.db'}") as db:
        store = prism.AllTypesStore(db)
        batch = store._admit_all(items)
        assert batch.wire == [m.SerializeToString() for m in items]
        await store.put_many(items)
        assert [await store.get(f"k{i}") for i in (0, 299)] == [items[0], items[299]]
    monkeypatch.setenv("PRISM_NATIVE_ROWS", "0")
    async with prism_runtime.connect(f"sqlite:///{tmp_path / 'python.db'}") as db:
        store = prism.AllTypesStore(db)
        assert store._admit_all(items).wire is None
        await store.put_many(items)
        assert await store.get("k299") == items[299]


# -- the batch input check's native pass (inputs.message_checks with wire=True) ---------------------------


def blob_keyed_message() -> Any:
    """Return a message class keyed by one bytes field, with a string beside it."""
    return dynamic_message("BlobKeyed", [("key", 1, _F.TYPE_BYTES, ""), ("note", 2, _F.TYPE_STRING, "")])


BLOB_SPEC = EntitySpec(
    namespace="prismtest_wire_blob",
    message_name="prismtest.wire.BlobKeyed",
    abstraction=Abstraction.KEY_VALUE,
    key="key",
    columns=(Column("key", 1, ColumnKind.BYTES), Column("note", 2, ColumnKind.STRING)),
)

# Keys around every rule: empty, the 1,024-byte limit in one- and four-byte characters, U+0000.
_KEY_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6) | st.sampled_from(
    ["", "a" * 1024, "a" * 1025, "🔑" * 256, "🔑" * 257, "a\x00b", "\x00", "é" * 512, "é" * 513]
)
_KEY_BLOB = st.binary(max_size=6) | st.sampled_from([b"", b"\x00", b"x" * 1024, b"x" * 1025])


def outcome(admit_all: Any, items: list[Any]) -> Any:
    """What a batch check makes of items: the batch and its facts, or the error it raised (type, text)."""
    try:
        batch = admit_all(items)
    except Exception as error:
        return type(error), str(error)
    return list(batch), batch.distinct


@pytest.mark.parametrize("keyed_by", ["text", "bytes"])
def test_the_native_batch_check_decides_as_the_python_check(keyed_by: str) -> None:
    """The check a native store runs serializes every item in one C pass and keeps the bytes; whatever the
    batch (bad keys, repeated keys, something not of the entity's type), it accepts or refuses exactly
    as the Python check does, with the same error."""
    cls: Any
    keys: st.SearchStrategy[Any]
    if keyed_by == "text":
        cls, spec, keys, field = far_message(), FAR_SPEC, _KEY_TEXT, "id"
    else:
        cls, spec, keys, field = blob_keyed_message(), BLOB_SPEC, _KEY_BLOB, "key"
    _, python = message_checks(spec, cls, distinct=True)
    _, native = message_checks(spec, cls, distinct=True, wire=True)

    @settings(max_examples=300, deadline=None)
    @given(
        chosen=st.lists(keys, min_size=1, max_size=5),
        stranger=st.sampled_from([None, "message", "str"]),
    )
    def check(chosen: list[Any], stranger: str | None) -> None:
        items: list[Any] = [cls(**{field: k}) for k in chosen]
        if stranger == "message":
            items.insert(len(items) // 2, timestamp_pb2.Timestamp(seconds=1))  # a message of another type
        elif stranger == "str":
            items.append(chosen[0])
        expected = outcome(python, items)
        assert outcome(native, items) == expected
        if not isinstance(expected[0], type):  # accepted: the native check kept every item's bytes
            assert native(items).wire == [item.SerializeToString() for item in items]

    check()


def test_the_native_check_takes_the_common_case_and_leaves_the_rest_to_python() -> None:
    cls = far_message()
    a, b = cls(id="a", near=1), cls(id="b")
    assert _wire.check_batch([a, b], cls, 300, True, 1024) == (
        [a.SerializeToString(), b.SerializeToString()],
        True,
    )
    assert _wire.check_batch([a, a], cls, 300, True, 1024) == ([a.SerializeToString()] * 2, False)
    for odd in (cls(), cls(id="x" * 1025), cls(id="a\x00"), b"not a message"):
        assert _wire.check_batch([a, odd], cls, 300, True, 1024) is None


def test_threads_share_one_plan(all_types_codecs: tuple[ModuleType, Any, Any]) -> None:
    """A Plan's scratch space is taken by one call at a time: a call that runs Python (here every message has
    a map, whose JSON a Python expression writes) may let another thread in, which then gets its own."""
    pb2, python, native = all_types_codecs
    messages = [
        pb2.AllTypes(id=f"t{i}", text=f"text {i}", names=[str(i)] * 3, counts={"n": i}) for i in range(300)
    ]
    expected = repr(python.encode_rows(messages))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: repr(native.encode_rows(messages)), range(16)))
    finally:
        sys.setswitchinterval(interval)
    assert results == [expected] * 16


def test_a_plan_called_again_from_a_conversion_keeps_both_rows() -> None:
    """A column's conversion that encodes another message with the same Plan, before the outer row's other
    columns are made: the inner call gets scratch space of its own."""
    cls = far_message()
    plan: Any = None

    def convert(message: Any) -> Any:
        return ("converted", plan.row(cls(id="inner", near=7)))

    # (number, type, mode, absent, convert): `last` first, run through Python when present; then id and near.
    columns = [
        (536870911, _F.TYPE_BYTES, 7, None, convert),
        (300, _F.TYPE_STRING, 2, "", None),
        (1, _F.TYPE_SINT64, 2, 0, None),
    ]
    plan = _wire.Plan(columns, lambda m, e=None: ("fallback",), cls.SerializeToString)
    outer = cls(id="outer", near=-3, last=b"x")
    assert plan.row(outer) == (("converted", (None, "inner", 7)), "outer", -3)
    assert plan.rows([outer, outer]) == [(("converted", (None, "inner", 7)), "outer", -3)] * 2
