"""Merge strategies: how a slot folds an incoming payload into what it keeps.

A merge strategy is a callable ``(kept, incoming) -> (new_kept, handler_payload)``
internally; users give either a registered name (``"override"``, ``"append"`` or one
of their own) or a plain callable ``(old, new) -> merged`` whose result is both kept
and passed to the handler.

* ``override`` (default): the incoming data replaces what was kept; the handler gets
  the incoming data.
* ``append``: the first value of a key is kept as it came; from the second arrival on,
  the key holds the list of every value in arrival order (a non-list old value is
  wrapped). The handler gets the incoming keys mapped to their accumulated values:
  the first value of a key as it came, and from the second arrival on an
  :class:`AppendView`, a read-only sequence of the values up to and including that
  arrival. Later arrivals never change what an earlier call received, and no arrival
  copies the list, so N arrivals cost O(N) time and memory (0.9 handed each call a
  copy: O(N²)). A view compares equal to a list of the same items and prints like
  one; ``list(view)`` gives a list of one's own.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from .exceptions import DuplicateNameError, UnknownMergeStrategyError

__all__ = [
    "AppendView",
    "MergeFunction",
    "Merger",
    "UserMerge",
    "register_merge_strategy",
    "resolve_merge_strategy",
]

#: A user merge: ``(old, new) -> merged``; the result is kept and handed on.
UserMerge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]

#: The internal form: ``(kept, incoming) -> (new_kept, handler_payload)``.
MergeFunction = Callable[
    [dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]
]


class Merger:
    """A resolved merge strategy.

    Attributes:
        name: The registered name, or ``None`` for an anonymous callable.
        merge: ``(kept, incoming) -> (new_kept, handler_payload)``.
        is_user_code: True when ``merge`` runs code the user wrote; the runtime then
            calls it outside any lock.
        replaces: True when the result never depends on what was kept (``override``),
            which lets the runtime skip the read of the kept data.
    """

    __slots__ = ("is_user_code", "merge", "name", "replaces")

    def __init__(
        self,
        name: str | None,
        merge: MergeFunction,
        *,
        is_user_code: bool,
        replaces: bool = False,
    ) -> None:
        self.name = name
        self.merge = merge
        self.is_user_code = is_user_code
        self.replaces = replaces

    def __repr__(self) -> str:
        return f"Merger({self.name or self.merge!r})"


class AppendView(Sequence[Any]):
    """A read-only view of the first ``length`` values an ``append`` slot collected.

    What an ``append`` handler receives for a key from its second arrival on. It
    shares the slot's list (making one is O(1)) and always shows the values up to
    the arrival it was made for, whatever arrives later. It supports ``len``,
    iteration, ``in``, indexing and slicing (a slice is a new list), compares equal
    to a list (or view) of the same items and prints like a list; ``list(view)`` is
    a copy to keep or change. ``isinstance(view, list)`` is true (0.9 handlers test
    that), but it is not a list: it has no ``append``, and ``type(view)`` is
    ``AppendView``.

    .. versionadded:: 1.0

    Args:
        items: The slot's list of values; only ever appended to.
        length: How many of its values the view shows.
    """

    __slots__ = ("_items", "_length")

    def __init__(self, items: list[Any], length: int) -> None:
        self._items = items
        self._length = length

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:
        # 0.9 handlers tell an accumulated value from a first scalar with
        # ``isinstance(value, list)``; that keeps working (as unittest.mock's
        # spec does), while ``type(view)`` stays AppendView, so C code that reads
        # a real list's storage never mistakes a view for one.
        return list

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._items[i] for i in range(*index.indices(self._length))]
        position = index.__index__()
        if position < 0:
            position += self._length
        if not 0 <= position < self._length:
            raise IndexError("AppendView index out of range")
        return self._items[position]

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(self._items, self._length)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (list, AppendView)):
            return NotImplemented
        if len(other) != self._length:
            return False
        return all(a is b or a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # unhashable, like a list

    def __repr__(self) -> str:
        return repr(self._items[: self._length])

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled or deep-copied: only the values the view shows.
        return (AppendView, (self._items[: self._length], self._length))


def _override(
    kept: dict[str, Any], incoming: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return incoming, incoming


def _append(
    kept: dict[str, Any], incoming: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    # ``kept`` belongs to the slot (per job) and is mutated in place under the
    # runtime's lock; the handler payload holds views of the lists (O(1) each).
    handed: dict[str, Any] = {}
    for key, value in incoming.items():
        if key not in kept:
            kept[key] = value
            handed[key] = value
            continue
        old = kept[key]
        if isinstance(old, list):
            old.append(value)
        else:
            old = kept[key] = [old, value]
        handed[key] = AppendView(old, len(old))
    return kept, handed


def _wrap_user(fn: UserMerge) -> MergeFunction:
    def merge(
        kept: dict[str, Any], incoming: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        merged = fn(dict(kept), incoming)
        if not isinstance(merged, dict):
            raise TypeError(
                f"merge strategy {fn!r} returned {type(merged).__name__}, expected a "
                "dict"
            )
        return merged, dict(merged)

    return merge


_BUILTIN: dict[str, Merger] = {
    "override": Merger("override", _override, is_user_code=False, replaces=True),
    "append": Merger("append", _append, is_user_code=False),
}
_registered: dict[str, Merger] = {}
_registry_lock = threading.Lock()  # guards _registered against concurrent registration


def register_merge_strategy(name: str, fn: UserMerge) -> None:
    """Register a named merge strategy usable as ``merge_strategy=name``.

    Thread-safe.

    Args:
        name: The name slots refer to; must not be taken.
        fn: ``(old, new) -> merged``; the result is kept for the job and given to the
            handler.

    Raises:
        DuplicateNameError: When ``name`` is already registered or built in.
        TypeError: When ``fn`` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"merge strategy {name!r} must be callable, got {fn!r}")
    with _registry_lock:
        if name in _BUILTIN or name in _registered:
            raise DuplicateNameError(f"merge strategy {name!r} is already registered")
        _registered[name] = Merger(name, _wrap_user(fn), is_user_code=True)


def resolve_merge_strategy(strategy: str | UserMerge) -> Merger:
    """Turn a merge strategy name or callable into a :class:`Merger`.

    Raises:
        UnknownMergeStrategyError: For a name nobody registered.
    """
    if isinstance(strategy, str):
        found = _BUILTIN.get(strategy) or _registered.get(strategy)
        if found is None:
            known = ", ".join(sorted([*_BUILTIN, *_registered]))
            raise UnknownMergeStrategyError(
                f"unknown merge strategy {strategy!r}; known: {known}"
            )
        return found
    if callable(strategy):
        return Merger(None, _wrap_user(strategy), is_user_code=True)
    raise UnknownMergeStrategyError(
        f"merge strategy must be a name or a callable, got {strategy!r}"
    )
