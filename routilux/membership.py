"""Which flows a routine belongs to.

A routine may be added to several flows. The flows' wirings register here, so that
an ``emit()`` made outside any job can find the routine's flow (and refuse to
guess when there are several), and so that ``event.connected_slots`` can list what
the flows connect. Entries are weak: a dropped flow leaves nothing behind.

``_lock`` guards ``_members``; it is never held while anything else runs.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["gather", "join", "leave", "wirings_of"]

T = TypeVar("T")

_lock = threading.Lock()
# routine -> weak references to the wirings holding it, in the order it joined.
_members: weakref.WeakKeyDictionary[Any, list[weakref.ref[Any]]] = (
    weakref.WeakKeyDictionary()
)


def join(routine: Any, wiring: Any) -> None:
    """Record that ``wiring`` (a flow's) holds ``routine``."""
    with _lock:
        refs = [ref for ref in _members.get(routine, []) if ref() is not None]
        refs.append(weakref.ref(wiring))
        _members[routine] = refs


def leave(routine: Any, wiring: Any) -> None:
    """Record that ``wiring`` no longer holds ``routine``."""
    with _lock:
        refs = _members.get(routine, [])
        _members[routine] = [ref for ref in refs if ref() not in (None, wiring)]


def wirings_of(routine: Any) -> list[Any]:
    """The wirings that hold ``routine`` now, in the order it joined them."""
    with _lock:
        refs = _members.get(routine, [])
    return [wiring for ref in refs if (wiring := ref()) is not None]


def gather(
    routine: Any, first: list[T], pick: Callable[[Any, str], list[T]]
) -> list[T]:
    """``first``, then what each wiring holding ``routine`` has, without repeats.

    ``pick(wiring, routine_id)`` says what a wiring has; items are compared by
    identity and keep their order.
    """
    found = list(first)
    if routine is not None:
        for wiring in wirings_of(routine):
            routine_id = wiring.id_of(routine)
            if routine_id is not None:
                found += pick(wiring, routine_id)
    unique: dict[int, T] = {}
    for item in found:
        unique.setdefault(id(item), item)
    return list(unique.values())
