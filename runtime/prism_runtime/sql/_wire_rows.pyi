from collections.abc import Callable, Sequence
from typing import Any

class Plan:
    def __init__(
        self,
        columns: Sequence[tuple[int, int, int, Any, Callable[[Any], Any] | None]],
        fallback: Callable[..., tuple[Any, ...]],
    ) -> None: ...
    def row(self, message: Any, expires: int | None = None, /) -> tuple[Any, ...]: ...
    def rows(
        self, messages: Sequence[Any], expires: int | None = None, wires: Sequence[bytes] | None = None, /
    ) -> list[tuple[Any, ...]]: ...
    def flat(
        self, messages: Sequence[Any], expires: int | None = None, wires: Sequence[bytes] | None = None, /
    ) -> list[Any]: ...
