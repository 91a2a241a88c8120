"""The routilux 0.9 shims, in one place; the core types are strict.

* :class:`ReadsLikeADict`: records (routine states, errors) that also read like the
  dicts 0.9 kept (``state["status"]``, ``error.get("message")``).
* :class:`InstanceOrClassMethod`: 0.9's ``Flow.deserialize`` worked called on the
  class or on an instance.
* :func:`deliver_directly`: 0.9 let an event deliver to slots linked by hand
  (``event.connect(slot)``), with no flow at all, in the caller's thread.
* The old import paths (``routilux.error_handler``, ``routilux.execution_tracker``)
  are modules of their own that re-export the new names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from .slot import Slot

__all__ = ["InstanceOrClassMethod", "ReadsLikeADict", "deliver_directly"]

P = ParamSpec("P")
R = TypeVar("R")


class ReadsLikeADict(BaseModel):
    """Key access over the fields that are set (not None) and any extra keys (0.9)."""

    def _as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def __getitem__(self, key: str) -> Any:
        return self._as_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is not set."""
        return self._as_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._as_dict()

    def keys(self) -> Iterator[str]:
        """The keys that are set."""
        return iter(self._as_dict())

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` pairs of the keys that are set."""
        return iter(self._as_dict().items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._as_dict() == dict(other)
        return super().__eq__(other)

    def __repr__(self) -> str:
        return repr(self._as_dict())  # prints as the dict 0.9 code printed

    __str__ = __repr__
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class InstanceOrClassMethod(Generic[P, R]):
    """A method that receives the instance when called on one, else the class.

    Positional and keyword arguments are passed on unchanged.
    """

    def __init__(self, fn: Callable[Concatenate[Any, P], R]) -> None:
        self._fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __get__(self, obj: object, owner: type | None = None) -> Callable[P, R]:
        return functools.partial(self._fn, obj if obj is not None else owner)


def deliver_directly(
    links: Iterable[tuple[Slot, dict[str, str] | None]], data: dict[str, Any]
) -> None:
    """Deliver ``data`` to slots linked by hand, in this thread (0.9's way).

    Each slot gets the data after its link's param mapping, merged and handed to
    its handler at once; a handler's exception propagates to the caller.
    """
    from .connection import apply_mapping

    for slot, mapping in list(links):
        payload = (
            apply_mapping(data, mapping, frozenset(mapping.values()))
            if mapping
            else dict(data)
        )
        slot.receive(payload)
