"""A private descriptor pool over the request, and the prism options read from it.

A plain parse of CodeGeneratorRequest leaves custom options as unknown bytes. Re-parsing each
options message with classes from a pool that holds every file of the request resolves them,
with no generated options_pb2 (and so no gencode/runtime version skew), on upb and pure Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from protoc_gen_prism.vocabulary import FIELD_OPTION_NAMES, MESSAGE_OPTION_NAMES


@dataclass(frozen=True)
class OptionValue:
    """One prism option as written: its value and the extension number locating it."""

    value: str | bool
    number: int


OptionMap = Mapping[str, OptionValue]
"""The prism options of one element by name; read-only, as equal option bytes share one map."""


class OptionsUnreadable(ValueError):
    """Options bytes that do not parse as their options message (e.g. a string option that is not UTF-8)."""


class PrismOptionReader:
    """Reads prism options off message and field option bytes with the pool's own classes.

    Schemas repeat a few option sets many times (`(prism.key) = true`, `(prism.pii) = "email"`), so each
    distinct serialization is parsed once and its map shared.
    """

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._message_exts = _extensions(pool, MESSAGE_OPTION_NAMES)
        self._field_exts = _extensions(pool, FIELD_OPTION_NAMES)
        self._message_options_cls = _options_class(pool, "google.protobuf.MessageOptions")
        self._field_options_cls = _options_class(pool, "google.protobuf.FieldOptions")
        self._message_maps: dict[bytes, OptionMap] = {}
        self._field_maps: dict[bytes, OptionMap] = {}

    def message_options(self, options: descriptor_pb2.MessageOptions | bytes) -> OptionMap:
        """Return the prism options set on a message (its options message, or that serialized)."""
        return _read(self._message_options_cls, self._message_exts, options, self._message_maps)

    def field_options(self, options: descriptor_pb2.FieldOptions | bytes) -> OptionMap:
        """Return the prism options set on a field (its options message, or that serialized)."""
        return _read(self._field_options_cls, self._field_exts, options, self._field_maps)


def build_pool(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """Return a fresh pool holding `files` (given in dependency order, as protoc sends them)."""
    pool = descriptor_pool.DescriptorPool()
    for file in files:
        pool.AddSerializedFile(file.SerializeToString())
    return pool


def _extensions(pool: descriptor_pool.DescriptorPool, names: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """Return (option name, extension number) by the extension's full name, for the options the pool has."""
    found: dict[str, tuple[str, int]] = {}
    for name in names:
        try:
            ext = pool.FindExtensionByName(f"prism.{name}")
        except KeyError:
            continue  # an older options.proto without this option: it simply cannot be set
        found[ext.full_name] = (name, ext.number)
    return found


def _options_class(pool: descriptor_pool.DescriptorPool, full_name: str) -> Any:
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
    except KeyError:
        return None  # descriptor.proto is not in the request, so no file can carry prism options


_NO_OPTIONS: OptionMap = {}


def _read(
    options_cls: Any,
    extensions: dict[str, tuple[str, int]],
    options: Any,
    known: dict[bytes, OptionMap],
) -> OptionMap:
    if options_cls is None or not extensions:
        return _NO_OPTIONS
    raw = options if isinstance(options, bytes) else options.SerializeToString()
    if not raw:
        return _NO_OPTIONS
    found = known.get(raw)
    if found is not None:
        return found
    try:
        parsed = options_cls.FromString(raw)
    except (DecodeError, ValueError) as error:  # pure Python raises UnicodeDecodeError for bad UTF-8
        raise OptionsUnreadable(" ".join(str(error).split())) from None
    # ListFields gives only what is set (an extension has presence: one set to false too), by field number,
    # which is options.proto's declaration order; a few fields instead of a HasExtension per prism option.
    read: dict[str, OptionValue] = {}
    for field, value in parsed.ListFields():
        named = extensions.get(field.full_name) if field.is_extension else None
        if named is not None:
            read[named[0]] = OptionValue(value, named[1])
    known[raw] = read
    return read


def is_map_entry(message: descriptor.Descriptor) -> bool:
    """Return whether a message is the synthetic entry type of a map field."""
    return bool(message.GetOptions().map_entry)
