"""How each protobuf field type is stored: the compile-time half of the type mapping."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor

from prism_runtime.schema import ColumnKind

_FD = FieldDescriptor

PROTO_TYPE_NAMES: dict[int, str] = {
    _FD.TYPE_DOUBLE: "double",
    _FD.TYPE_FLOAT: "float",
    _FD.TYPE_INT64: "int64",
    _FD.TYPE_UINT64: "uint64",
    _FD.TYPE_INT32: "int32",
    _FD.TYPE_FIXED64: "fixed64",
    _FD.TYPE_FIXED32: "fixed32",
    _FD.TYPE_BOOL: "bool",
    _FD.TYPE_STRING: "string",
    _FD.TYPE_GROUP: "message",  # delimited encoding (proto2 groups, editions) is a message in the model
    _FD.TYPE_MESSAGE: "message",
    _FD.TYPE_BYTES: "bytes",
    _FD.TYPE_UINT32: "uint32",
    _FD.TYPE_ENUM: "enum",
    _FD.TYPE_SFIXED32: "sfixed32",
    _FD.TYPE_SFIXED64: "sfixed64",
    _FD.TYPE_SINT32: "sint32",
    _FD.TYPE_SINT64: "sint64",
}

_SCALAR_KINDS: dict[str, ColumnKind] = {
    "double": ColumnKind.DOUBLE,
    "float": ColumnKind.FLOAT,
    "int32": ColumnKind.INT32,
    "sint32": ColumnKind.INT32,
    "sfixed32": ColumnKind.INT32,
    "int64": ColumnKind.INT64,
    "sint64": ColumnKind.INT64,
    "sfixed64": ColumnKind.INT64,
    # uint32 does not fit a signed 32-bit column, so it widens.
    "uint32": ColumnKind.INT64,
    "fixed32": ColumnKind.INT64,
    "uint64": ColumnKind.UINT64,
    "fixed64": ColumnKind.UINT64,
    "bool": ColumnKind.BOOL,
    "string": ColumnKind.STRING,
    "bytes": ColumnKind.BYTES,
    "enum": ColumnKind.ENUM,
}

KEY_TYPES = frozenset(
    {"string", "bytes", "int32", "sint32", "sfixed32", "int64", "sint64", "sfixed64", "uint32", "fixed32"}
)
"""Types a key or sort key may have: they compare the same way in every backend."""

TIMESTAMP = "google.protobuf.Timestamp"

# The well-known wrappers hold one nullable scalar; they are stored as that scalar.
WRAPPERS: dict[str, str] = {
    f"google.protobuf.{name}Value": proto_type
    for name, proto_type in (
        ("Double", "double"),
        ("Float", "float"),
        ("Int64", "int64"),
        ("UInt64", "uint64"),
        ("Int32", "int32"),
        ("UInt32", "uint32"),
        ("Bool", "bool"),
        ("String", "string"),
        ("Bytes", "bytes"),
    )
}


def key_types_stored_as(kind: ColumnKind) -> list[str]:
    """Return the key types stored as `kind`, sorted: the types an edge end may have to match a node key."""
    return sorted(t for t in KEY_TYPES if _SCALAR_KINDS[t] is kind)


def column_kind(
    proto_type: str, type_name: str, repeated: bool, is_map: bool = False
) -> tuple[ColumnKind, bool, bool]:
    """Return how a field is stored: (kind, stored as an array of kind, stored as a wrapper's scalar)."""
    if proto_type == "message":
        if repeated or is_map:
            return ColumnKind.JSON, False, False
        if type_name == TIMESTAMP:
            return ColumnKind.TIMESTAMP, False, False
        if type_name in WRAPPERS:
            return _SCALAR_KINDS[WRAPPERS[type_name]], False, True
        return ColumnKind.JSON, False, False
    return _SCALAR_KINDS[proto_type], repeated, False
