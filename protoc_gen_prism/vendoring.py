"""A copy of prism/options.proto inside a user's own proto tree, for tools that resolve imports only there (buf).

`prism init` writes it under `proto/prism/options.proto` with a header naming the Prism version it came from;
`prism check` compares it with the installed vocabulary and warns when they differ.
"""

from __future__ import annotations

from pathlib import Path

from protoc_gen_prism import __version__
from protoc_gen_prism.protoc_runner import VOCABULARY, prism_include

OPTIONS = VOCABULARY.as_posix()
HEADER_PREFIX = "// Vendored by `prism init`"
UPDATE_COMMAND = "prism init --update-options"


def installed_options() -> str:
    """Return the installed prism/options.proto."""
    return (prism_include() / OPTIONS).read_text()


def vendored_options() -> str:
    """Return the installed prism/options.proto with the header that pins it to this Prism version."""
    header = (
        f"{HEADER_PREFIX} from protoc-gen-prism {__version__}: a copy of `$(prism include)/{OPTIONS}`\n"
        f"// so that buf finds it without a registry. Do not edit; `prism check` warns when it differs from\n"
        f"// the installed Prism's, and `{UPDATE_COMMAND}` refreshes it.\n"
    )
    return header + installed_options()


def vendored_version(text: str) -> str | None:
    """Return the Prism version a vendored copy names in its header, if it has one."""
    first = text.split("\n", 1)[0]
    if not first.startswith(f"{HEADER_PREFIX} from protoc-gen-prism "):
        return None
    return first.removeprefix(f"{HEADER_PREFIX} from protoc-gen-prism ").split(":", 1)[0]


def _body(text: str) -> str:
    """Return a copy without its vendoring header (every leading line of the header block)."""
    if vendored_version(text) is None:
        return text
    lines = text.split("\n")
    return "\n".join(lines[3:])


def stale_copy(proto_root: Path) -> str | None:
    """Return a warning when `proto_root` holds a prism/options.proto that differs from the installed one.

    None when there is no copy, when the copy is the installed file itself (this repository's proto/), or when
    it matches.
    """
    copy = proto_root / OPTIONS
    if not copy.is_file() or copy.resolve() == (prism_include() / OPTIONS).resolve():
        return None
    text = copy.read_text()
    if _body(text) == installed_options():
        return None
    origin = vendored_version(text)
    came_from = f"vendored from protoc-gen-prism {origin}" if origin else "not written by `prism init`"
    return (
        f"{copy} ({came_from}) differs from the installed protoc-gen-prism {__version__}'s "
        f"prism/options.proto; buf compiles with the copy and the runtime decodes with the installed one: "
        f"run `{UPDATE_COMMAND}` in the project directory"
    )
