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


def key_types_stored_as(kind: ColumnKind) -> list[str]:
    """Return the key types stored as `kind`, sorted: the types an edge end may have to match a node key."""
    return sorted(t for t in KEY_TYPES if _SCALAR_KINDS[t] is kind)


def column_kind(proto_type: str, type_name: str, repeated: bool) -> ColumnKind:
    """Return the storage kind of a field."""
    if repeated:
        return ColumnKind.JSON
    if proto_type == "message":
        return ColumnKind.TIMESTAMP if type_name == TIMESTAMP else ColumnKind.JSON
    return _SCALAR_KINDS[proto_type]
