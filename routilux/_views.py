"""Read-only views of the lists and dicts a JobState run by a flow holds.

A :class:`~routilux.JobState` the runtime owns (``job.is_owned``) keeps its
``errors``, ``routine_states``, ``pending_tasks`` and ``pause_points`` in an
:class:`OwnedList` or :class:`OwnedDict`: a real ``list`` or ``dict`` (it passes
``isinstance``, compares equal to a plain one, prints and serializes like one)
whose mutating methods raise :class:`~routilux.JobStateError` naming the job and
the field. Only the runtime writes them, through the base class's own methods
(``list.append(view, item)``, ``dict.__setitem__(view, key, value)``), under the
job's lock.

A copy is the caller's own: ``copy.copy``, ``copy.deepcopy``, ``pickle``,
``list(view)``, ``view.copy()`` and slicing all give a plain list or dict.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .exceptions import JobStateError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["OwnedDict", "OwnedList", "new_fields", "own_fields", "owned_list"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_LIST_MUTATORS = (
    "append",
    "extend",
    "insert",
    "remove",
    "pop",
    "clear",
    "sort",
    "reverse",
    "__setitem__",
    "__delitem__",
    "__iadd__",
    "__imul__",
)
_DICT_MUTATORS = (
    "__setitem__",
    "__delitem__",
    "pop",
    "popitem",
    "clear",
    "update",
    "setdefault",
    "__ior__",
)
#: How a refused change reads in the message (``{}`` is the field's name).
_SPELLED = {
    "__setitem__": "{}[...] = ...",
    "__delitem__": "del {}[...]",
    "__iadd__": "{} += ...",
    "__imul__": "{} *= ...",
    "__ior__": "{} |= ...",
}


def _refusal(view: OwnedList[Any] | OwnedDict[Any, Any], method: str) -> NoReturn:
    kind = "list" if isinstance(view, list) else "dict"
    field = getattr(view, "_field", kind)
    spelled = _SPELLED.get(method)
    change = spelled.format(field) if spelled else f"{field}.{method}()"
    raise JobStateError(
        f"job {getattr(view, '_job_id', '?')!r} is run by a flow: its {field!r} are "
        f"read-only ({change} refused; {kind}(job.{field}) is a copy you may change)"
    )


def _refusing(method: str) -> Callable[..., NoReturn]:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        _refusal(self, method)

    refuse.__name__ = method
    return refuse


class OwnedList(list[T]):
    """A list field of an owned JobState: reads as a list, refuses every change."""

    __slots__ = ("_field", "_job_id")
    _job_id: str
    _field: str

    def __copy__(self) -> list[T]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[T]:
        result: list[T] = []
        memo[id(self)] = result
        result.extend(copy.deepcopy(item, memo) for item in self)
        return result

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (list, (list(self),))


class OwnedDict(dict[K, V]):
    """A dict field of an owned JobState: reads as a dict, refuses every change."""

    __slots__ = ("_field", "_job_id")
    _job_id: str
    _field: str

    def __copy__(self) -> dict[K, V]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[K, V]:
        result: dict[K, V] = {}
        memo[id(self)] = result
        for key, value in self.items():
            result[copy.deepcopy(key, memo)] = copy.deepcopy(value, memo)
        return result

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (dict, (dict(self),))


# Set here, not written out in the classes: one refusal, and the names say all.
for _name in _LIST_MUTATORS:
    setattr(OwnedList, _name, _refusing(_name))
for _name in _DICT_MUTATORS:
    setattr(OwnedDict, _name, _refusing(_name))
del _name

#: The JobState fields that hold a list, and the one that holds a dict.
_LIST_FIELDS = ("pending_tasks", "pause_points", "errors")
_DICT_FIELD = "routine_states"


def owned_list(items: Iterable[T], job_id: str, field: str) -> OwnedList[T]:
    """A read-only view holding ``items``, the ``field`` of job ``job_id``."""
    view: OwnedList[T] = OwnedList(items)  # list's own __init__: the fast way in
    view._job_id = job_id
    view._field = field
    return view


def new_fields(values: dict[str, Any]) -> None:
    """Add the containers of a new job, empty views, to its field ``values``.

    ``values`` is the JobState's ``__dict__``, which holds its ``job_id``.
    """
    job_id = values["job_id"]
    states: OwnedDict[Any, Any] = OwnedDict()
    states._job_id = job_id
    states._field = _DICT_FIELD
    values[_DICT_FIELD] = states
    for name in _LIST_FIELDS:
        view: OwnedList[Any] = OwnedList()
        view._job_id = job_id
        view._field = name
        values[name] = view


def own_fields(values: dict[str, Any]) -> None:
    """Make the containers among a JobState's field ``values`` read-only views.

    ``values`` is the JobState's ``__dict__``. Views already there (from
    :func:`new_fields`, or an earlier owner of the same job) are kept; plain
    containers are copied into new ones.
    """
    if (
        type(values["errors"]) is OwnedList
        and type(values["pending_tasks"]) is OwnedList
        and type(values["pause_points"]) is OwnedList
        and type(values["routine_states"]) is OwnedDict
    ):
        return  # the common case: a job made by JobState._for_run
    job_id = values["job_id"]
    states = values[_DICT_FIELD]
    if type(states) is not OwnedDict:
        view: OwnedDict[Any, Any] = OwnedDict(states)
        view._job_id = job_id
        view._field = _DICT_FIELD
        values[_DICT_FIELD] = view
    for name in _LIST_FIELDS:
        items = values[name]
        if type(items) is not OwnedList:
            values[name] = owned_list(items, job_id, name)
