"""The error of a stored row or stream record that cannot be decoded into its message."""

from __future__ import annotations

from collections.abc import Sequence

from prism_runtime.errors import CorruptRow
from prism_runtime.schema import EntitySpec


def corrupt_row(spec: EntitySpec, key: Sequence[object], backend: str, cause: BaseException) -> CorruptRow:
    """Return CorruptRow naming the namespace and the key (withheld when it is personal data), never a value.

    `key` holds the row's key values as the API takes them; a value that is not a str, bytes or int (a
    driver's stand-in for unreadable text) means the key itself cannot be read.
    """
    shown = spec.key_columns[: len(key)]
    readable = bool(key) and all(isinstance(v, str | bytes | int) for v in key)
    if not readable:
        where = "a row whose key cannot be read"
    elif any(c.pii or c.masked for c in shown):
        where = "a row (its key holds personal data: see the error's key attribute)"
    else:
        where = f"the row at {', '.join(f'{c.name}={v!r}' for c, v in zip(shown, key, strict=True))}"
    return CorruptRow(
        f"{where} cannot be decoded into {spec.message_name} ({type(cause).__name__}); "
        "fix or delete it, or pass on_corrupt= to scan past it",
        namespace=spec.namespace,
        backend=backend,
        key=tuple(key) if readable else (),
    )
