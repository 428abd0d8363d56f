"""The unwrapped-key cache keeps its three bounds exactly, on its fast path as on its slow one."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from prism_runtime.pii.key_cache import KeyCache, KeyLimits


@dataclass(frozen=True)
class Key:
    name: str
    version: int = 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(clock: Clock | None = None, **limits: float) -> KeyCache[str, Key]:
    return KeyCache(KeyLimits(**limits), clock or Clock())  # type: ignore[arg-type]


def test_hits_and_misses_keep_the_order_asked() -> None:
    keys = cache()
    keys.put("a", Key("a"))
    keys.put("c", Key("c"))
    found, missing = keys.get_many(["a", "b", "c", "d"], 1)
    assert found == {"a": Key("a"), "c": Key("c")}
    assert missing == ["b", "d"]


def test_the_least_recently_used_goes_first() -> None:
    keys = cache(entries=2)
    keys.put("a", Key("a"))
    keys.put("b", Key("b"))
    keys.get_many(["a"], 1)  # a is now more recent than b
    keys.put("c", Key("c"))
    assert len(keys) == 2
    assert keys.get_many(["a", "b", "c"], 1)[1] == ["b"]


def test_no_key_is_served_older_than_max_age() -> None:
    clock = Clock()
    keys = cache(clock, max_age=100.0)
    keys.put("old", Key("old"))
    clock.now += 60
    keys.put("young", Key("young"))
    clock.now += 39.9
    assert keys.get_many(["old", "young"], 1)[1] == []
    clock.now += 0.1  # "old" is 100 s old now
    found, missing = keys.get_many(["old", "young"], 1)
    assert missing == ["old"] and list(found) == ["young"]
    clock.now += 50  # "young" is 90 s old: still served
    assert keys.get_many(["young"], 1)[1] == []
    clock.now += 10
    assert keys.get_many(["young"], 1)[1] == ["young"]


def test_no_key_is_served_more_than_max_uses_times() -> None:
    keys = cache(max_uses=5)
    keys.put("a", Key("a"))
    keys.put("b", Key("b"))
    served = 0
    for _ in range(4):
        found, _ = keys.get_many(["a", "b"], 1)
        served += "a" in found
    assert served == 4
    assert "a" in keys.get_many(["a"], 1)[0]  # the fifth use
    found, missing = keys.get_many(["a", "b"], 1)
    assert missing == ["a"] and "b" in found  # b has had five uses now, a went at its sixth
    assert keys.get_many(["b"], 1)[1] == ["b"]
    keys.put("a", Key("a", 2))  # unwrapped again: a fresh count
    assert keys.get_many(["a"], 1)[0] == {"a": Key("a", 2)}


def test_uses_are_exact_on_large_batches() -> None:
    keys = cache(max_uses=1000)
    names = [f"k{i}" for i in range(300)]
    for name in names:
        keys.put(name, Key(name))
    for _ in range(3):
        assert len(keys.get_many(names, 1)[0]) == 300
    keys.get_many(names[:1], 1)
    for _ in range(996):
        keys.get_many(names[:1], 1)
    assert keys.get_many(names[:1], 1)[1] == ["k0"]  # its 1001st use
    assert len(keys.get_many(names[1:], 1)[0]) == 299


def test_keys_below_the_minimum_version_are_never_served() -> None:
    keys = cache()
    keys.put("a", Key("a", 1))
    keys.put("b", Key("b", 2))
    found, missing = keys.get_many(["a", "b"], 2)
    assert list(found) == ["b"] and missing == ["a"]
    keys.put("a", Key("a", 1))  # a stale writer putting an old key back is still refused
    assert keys.get_many(["a"], 2)[1] == ["a"]


def test_drop_subject_drops_its_keys_under_both_kinds_of_name() -> None:
    keys: KeyCache[object, Key] = KeyCache(KeyLimits())
    keys.put("s_1", Key("a"))
    keys.put(("s_1", 7), Key("a"))
    keys.put(("s_2", 7), Key("b"))
    keys.drop_subject("s_1")
    assert len(keys) == 1
    assert keys.get_many([("s_2", 7)], 1)[1] == []


@given(
    st.lists(st.integers(0, 9), max_size=12),
    st.lists(st.integers(0, 9), max_size=12),
    st.integers(1, 8),
)
def test_put_many_is_put_in_order(before: list[int], batch: list[int], bound: int) -> None:
    """put_many (the keyring's path for a batch of new keys) leaves the cache as one put per key would:
    names already there move to the end, the last of a repeated name wins, the oldest go past the bound."""
    limits = KeyLimits(entries=bound)
    clock = Clock()
    one_by_one: KeyCache[int, Key] = KeyCache(limits, clock)
    batched: KeyCache[int, Key] = KeyCache(limits, clock)
    made = {n: Key(f"k{n}") for n in range(10)}
    for name in before:
        one_by_one.put(name, made[name])
        batched.put(name, made[name])
    for position, name in enumerate(batch):
        one_by_one.put(name, made[(name + position) % 10])
    batched.put_many(batch, [made[(name + position) % 10] for position, name in enumerate(batch)])
    assert list(batched._keys.items()) == list(one_by_one._keys.items())
    assert batched._born == one_by_one._born and batched._uses == one_by_one._uses
