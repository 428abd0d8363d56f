"""Source positions from SourceCodeInfo, looked up by descriptor path."""

from __future__ import annotations

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
SYNTAX = _F.SYNTAX_FIELD_NUMBER  # also where protoc records an `edition = "...";` statement
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
    """Every located element of one file, keyed by its path; built once per file."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self.file_name = file.name
        self._spans: dict[Path, tuple[int, int]] = {}
        self._comments: dict[Path, str] = {}
        for loc in file.source_code_info.location:
            path = tuple(loc.path)
            # The first location of a path is the element itself; later ones are pieces of it.
            if path not in self._spans and len(loc.span) >= 2:
                self._spans[path] = (loc.span[0] + 1, loc.span[1] + 1)
            if (loc.leading_comments or loc.trailing_comments) and path not in self._comments:
                # Leading first, then trailing (`int32 n = 1; // like this`): both are the element's comment.
                self._comments[path] = loc.leading_comments + "\n" + loc.trailing_comments

    def locate(self, *paths: Path) -> Location:
        """Return the position of the first of `paths` that is known, else just the file."""
        for path in paths:
            span = self._spans.get(path)
            if span is not None:
                return Location(self.file_name, span[0], span[1])
        # Fall back to the nearest enclosing element that has a position.
        for path in paths:
            for end in range(len(path) - 1, 0, -1):
                span = self._spans.get(path[:end])
                if span is not None:
                    return Location(self.file_name, span[0], span[1])
        return Location(self.file_name)

    def comment(self, path: Path) -> str:
        """Return the cleaned comment of the element at `path`: its leading comment, then its trailing one."""
        lines = [line.strip() for line in self._comments.get(path, "").strip().splitlines()]
        return " ".join(line for line in lines if line)
