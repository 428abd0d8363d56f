"""Name casing, in one place: every name Prism derives from a proto name is spelled by these functions.

One word rule serves all of them: a word starts at an upper-case letter after a lower-case letter or a
digit, and at the last capital of an acronym followed by a lower-case letter (HTTPRequest -> HTTP Request).
"""

from __future__ import annotations

import re

_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(dotted: str) -> str:
    """Return a dotted proto name in snake_case, a part per dot: acme.v1.HTTPRequest -> acme_v1_http_request."""
    # One pass over the whole name: no word break is found next to a dot, so the parts break as they would alone.
    return _WORD_BREAK.sub("_", dotted).replace(".", "_").lower()


def default_namespace(full_name: str) -> str:
    """Return the namespace of a message without (prism.namespace): its full name in snake_case."""
    return snake_case(full_name)


def spec_constant(python_name: str) -> str:
    """Return the module constant holding an entity's spec in its generated client: _HTTP_REQUEST_SPEC."""
    return f"_{snake_case(python_name).upper()}_SPEC"


SYNC = "Sync"
"""What a blocking twin's class name adds before its suffix: NoteStore and NoteSyncStore (docs/sync.md)."""


def class_name(python_name: str, suffix: str) -> str:
    """Return a generated class name: the message's class path without dots, then `suffix` (OuterInnerStore)."""
    return python_name.replace(".", "") + suffix


def python_module(proto_file: str) -> str:
    """Return the dotted path of the *_pb2 module protoc writes for a .proto file: a/b-c.proto -> a.b_c_pb2."""
    return proto_file.removesuffix(".proto").replace("/", ".").replace("-", "_") + "_pb2"


def k8s_name(namespace: str) -> str:
    """Return a Kubernetes object name (DNS-1123 subdomain) for a namespace: '_' is not allowed there."""
    return namespace.replace("_", "-").strip("-") or "prism"
