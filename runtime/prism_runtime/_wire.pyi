from collections.abc import Callable, Sequence
from typing import Any

class Plan:
    def __init__(
        self,
        columns: Sequence[tuple[int, int, int, Any, Callable[[Any], Any] | None]],
        fallback: Callable[..., tuple[Any, ...]],
        serialize: Callable[[Any], bytes],
    ) -> None: ...
    def row(self, message: Any, expires: int | None = None, /) -> tuple[Any, ...]: ...
    def rows(
        self, messages: Sequence[Any], expires: int | None = None, wires: Sequence[bytes] | None = None, /
    ) -> list[tuple[Any, ...]]: ...
    def flat(
        self, messages: Sequence[Any], expires: int | None = None, wires: Sequence[bytes] | None = None, /
    ) -> list[Any]: ...

def check_batch(
    messages: Sequence[Any], cls: type, number: int, is_text: bool, max_bytes: int, /
) -> tuple[list[bytes], bool] | None: ...
def pg_copy(
    rows: Sequence[Sequence[Any]], types: Sequence[int], first: bool, last: bool, /
) -> bytes | None: ...
