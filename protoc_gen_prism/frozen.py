"""Frozen dataclasses that are quick to build, for the IR objects a large request makes by the thousand."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

T = TypeVar("T")


def built_at_once(cls: type[T]) -> type[T]:
    """Give a frozen dataclass an __init__ that writes every field straight into the instance's dict.

    A frozen dataclass's own __init__ sets each field through object.__setattr__, which is most of what
    building one costs: the model of a 10,000-message request holds ~80,000 fields. This __init__ takes the
    same arguments, with the same defaults, and leaves the same instance; equality, hashing, repr, replace()
    and the refusal to assign afterwards are the dataclass's own. Only for dataclasses without __post_init__,
    default factories, keyword-only fields or slots, which is checked.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in fields]
    if "__slots__" in vars(cls) or hasattr(cls, "__post_init__") or {"__self__", "__values__"} & set(names):
        raise TypeError(f"{cls.__name__}: built_at_once is for dataclasses without slots or __post_init__")
    defaults: dict[str, object] = {}
    arguments: list[str] = []
    for f in fields:
        if not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: built_at_once needs plain init fields")
        if f.default is dataclasses.MISSING:
            arguments.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            arguments.append(f"{f.name}=_default_{f.name}")
    # Item by item, in declaration order: the dict then shares its keys with the class's other instances,
    # as after the dataclass's own __init__ (an update() would give each instance a copy of the keys).
    source = (
        f"def __init__(__self__, {', '.join(arguments)}):\n    __values__ = __self__.__dict__\n"
        + "".join(f"    __values__[{f.name!r}] = {f.name}\n" for f in fields)
    )
    namespace = dict(defaults)
    exec(source, namespace)  # as dataclasses writes its own __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    setattr(cls, "__init__", init)  # noqa: B010 (mypy refuses assigning a method)
    return cls
