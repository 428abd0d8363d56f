"""Source positions from SourceCodeInfo, looked up by descriptor path."""

from __future__ import annotations

from functools import partial

from google.protobuf import descriptor_pb2

from protoc_gen_prism.diagnostics import Location

_F = descriptor_pb2.FileDescriptorProto
_M = descriptor_pb2.DescriptorProto

# Path segments named after the descriptor fields they step through, never bare numbers.
MESSAGE_TYPE = _F.MESSAGE_TYPE_FIELD_NUMBER
NESTED_TYPE = _M.NESTED_TYPE_FIELD_NUMBER
FIELD = _M.FIELD_FIELD_NUMBER
MESSAGE_OPTIONS = _M.OPTIONS_FIELD_NUMBER
FIELD_OPTIONS = descriptor_pb2.FieldDescriptorProto.OPTIONS_FIELD_NUMBER
DEPENDENCY = _F.DEPENDENCY_FIELD_NUMBER
FILE_EXTENSION = _F.EXTENSION_FIELD_NUMBER
FILE_ENUM = _F.ENUM_TYPE_FIELD_NUMBER
MESSAGE_EXTENSION = _M.EXTENSION_FIELD_NUMBER
MESSAGE_ENUM = _M.ENUM_TYPE_FIELD_NUMBER
ONEOF = _M.ONEOF_DECL_FIELD_NUMBER
FIELD_NUMBER = descriptor_pb2.FieldDescriptorProto.NUMBER_FIELD_NUMBER
FIELD_TYPE_NAME = descriptor_pb2.FieldDescriptorProto.TYPE_NAME_FIELD_NUMBER
FIELD_EXTENDEE = descriptor_pb2.FieldDescriptorProto.EXTENDEE_FIELD_NUMBER
FIELD_ONEOF = descriptor_pb2.FieldDescriptorProto.ONEOF_INDEX_FIELD_NUMBER

Path = tuple[int, ...]


class SourceIndex:
    """Every located element of one file, keyed by its path; built once per file.

    Comments are read at once (generated code shows them); positions only when a location is first read,
    which a compile without problems never does (see `Location.deferred`).
    """

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self.file_name = file.name
        self._file = file
        self._spans: dict[Path, tuple[int, int]] | None = None
        self._comments: dict[Path, str] = {}
        for loc in file.source_code_info.location:
            if (loc.leading_comments or loc.trailing_comments) and (
                path := tuple(loc.path)
            ) not in self._comments:
                # Leading first, then trailing (`int32 n = 1; // like this`): both are the element's comment.
                self._comments[path] = loc.leading_comments + "\n" + loc.trailing_comments

    def locate(self, *paths: Path) -> Location:
        """Return the position of the first of `paths` that is known, else just the file."""
        return Location.deferred(self.file_name, partial(self._position, paths))

    def _position(self, paths: tuple[Path, ...]) -> tuple[int, int]:
        spans = self._span_index()
        for path in paths:
            span = spans.get(path)
            if span is not None:
                return span
        # Fall back to the nearest enclosing element that has a position.
        for path in paths:
            for end in range(len(path) - 1, 0, -1):
                span = spans.get(path[:end])
                if span is not None:
                    return span
        return (0, 0)

    def _span_index(self) -> dict[Path, tuple[int, int]]:
        if self._spans is None:
            self._spans = {}
            for loc in self._file.source_code_info.location:
                path = tuple(loc.path)
                # The first location of a path is the element itself; later ones are pieces of it.
                if path not in self._spans and len(loc.span) >= 2:
                    self._spans[path] = (loc.span[0] + 1, loc.span[1] + 1)
        return self._spans

    def comment(self, path: Path) -> str:
        """Return the cleaned comment of the element at `path`: its leading comment, then its trailing one."""
        written = self._comments.get(path)
        if written is None:
            return ""  # most elements have no comment
        lines = [line.strip() for line in written.strip().splitlines()]
        return " ".join(line for line in lines if line)
