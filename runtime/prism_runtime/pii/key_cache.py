"""The cache of unwrapped data keys: bounded by count (least recently used goes first), age and uses.

Every read and write of a PII row looks its key up here, so `lookup` answers a whole batch, aligned with
the rows, and checks the bounds once per batch rather than once per key when it can:

- age: no key is older than `max_age` while the oldest one is not; when it is, a sweep drops every key
  past half the bound, so sweeps come at most once per half age;
- versions: no key is below `min_version` while the lowest one is not;
- uses: a Counter counts every use; while no key can reach `max_uses` within the batch, the counts are
  the only bookkeeping; otherwise the batch goes key by key and drops the ones that reached it.

A batch that meets all three (and finds every key) costs a few C-level passes: no Python step per key.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


N = TypeVar("N", bound=Hashable)
K = TypeVar("K", bound=_Versioned)


@dataclass(frozen=True)
class KeyLimits:
    """Bounds of the unwrapped-key cache: entries, age in seconds, uses before unwrapping again."""

    entries: int = 100_000
    max_age: float = 300.0
    max_uses: int = 1_000_000


class KeyCache(Generic[N, K]):
    """Unwrapped keys by name (a subject ref, or a (subject ref, key id) pair)."""

    def __init__(self, limits: KeyLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._keys: OrderedDict[N, K] = OrderedDict()  # least recently used first
        self._born: dict[N, float] = {}
        self._uses: Counter[N] = Counter()
        self._oldest = math.inf  # no key was born before this
        self._lowest = 0  # no key is below this version
        self._budget = limits.max_uses  # uses any one key may take before the bound needs checking

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, names: Sequence[N], min_version: int) -> list[K | None]:
        """Return the live key of each name, in order (None where there is none), counting a use of each.

        A key is live while younger than `max_age`, used fewer than `max_uses` times and not below
        `min_version`; one that is not is dropped, so the caller unwraps it again.
        """
        now = self._clock()
        if now - self.limits.max_age >= self._oldest:
            self._sweep(now)
        if min_version > self._lowest:
            self._drop_below(min_version)
        keys = self._keys
        found = list(map(keys.get, names))
        if len(names) >= self._budget or not all(found):
            return self._lookup_each(names)
        deque(map(keys.move_to_end, names), 0)
        self._uses.update(names)
        self._budget -= len(names)
        return found

    def _lookup_each(self, names: Sequence[N]) -> list[K | None]:
        keys, uses, max_uses = self._keys, self._uses, self.limits.max_uses
        out: list[K | None] = []
        for name in names:
            key = keys.get(name)
            if key is not None and uses[name] >= max_uses:
                self._drop(name)
                key = None
            if key is not None:
                uses[name] += 1
                keys.move_to_end(name)
            out.append(key)
        self._budget = max_uses - max(uses.values(), default=0)
        return out

    def get_many(self, names: Iterable[N], min_version: int) -> tuple[dict[N, K], list[N]]:
        """Return the live keys among distinct `names` (counting a use of each) and the names not found."""
        wanted = list(names)
        found: dict[N, K] = {}
        missing: list[N] = []
        for name, key in zip(wanted, self.lookup(wanted, min_version), strict=True):
            if key is None:
                missing.append(name)
            else:
                found[name] = key
        return found, missing

    def put(self, name: N, key: K) -> None:
        """Keep `key` under `name`, evicting the least recently used beyond the bound."""
        self.put_many([name], [key])

    def put_many(self, names: Sequence[N], keys: Sequence[K]) -> None:
        """Keep each of `keys` under its name, in order, as fresh entries (new age, no uses)."""
        now = self._clock()
        for name, key in zip(names, keys, strict=True):
            self._drop(name)
            self._keys[name] = key
            self._born[name] = now
            self._lowest = min(self._lowest, key.version)
        self._oldest = min(self._oldest, now)
        while len(self._keys) > self.limits.entries:
            self._drop(next(iter(self._keys)))

    def drop_subject(self, ref: str) -> None:
        """Forget every key of one subject (after crypto-shredding it)."""
        for name in [n for n in self._keys if n == ref or (isinstance(n, tuple) and n[0] == ref)]:
            self._drop(name)

    def _drop(self, name: N) -> None:
        if self._keys.pop(name, None) is not None:
            del self._born[name]
            self._uses.pop(name, None)

    def _sweep(self, now: float) -> None:
        """Drop every key older than half the age bound, so the next sweep is at least that far off."""
        cutoff = now - self.limits.max_age / 2
        for name in [n for n, born in self._born.items() if born <= cutoff]:
            self._drop(name)
        self._oldest = min(self._born.values(), default=math.inf)

    def _drop_below(self, version: int) -> None:
        for name in [n for n, key in self._keys.items() if key.version < version]:
            self._drop(name)
        self._lowest = version
