"""Read-only views of the lists and dicts a JobState run by a flow holds.

A :class:`~routilux.JobState` the runtime owns (``job.is_owned``) keeps its
``errors``, ``routine_states``, ``pending_tasks`` and ``pause_points`` in an
:class:`OwnedList` or :class:`OwnedDict`: a real ``list`` or ``dict`` (it passes
``isinstance``, compares equal to a plain one, prints and serializes like one)
whose mutating methods raise :class:`~routilux.JobStateError` naming the job and
the field. Only the runtime writes them, through the base class's own methods
(``list.append(view, item)``, ``dict.__setitem__(view, key, value)``), under the
job's lock.

An empty list no job will append to in place (a finished job's, or
``pending_tasks``, which is only ever replaced) is one view shared by all jobs,
so that the many small jobs a program keeps hold fewer objects for the garbage
collector; its refusal names the field only. :func:`writable_list` gives a job
its own view again before a write.

A copy is the caller's own: ``copy.copy``, ``copy.deepcopy``, ``pickle``,
``list(view)``, ``view.copy()`` and slicing all give a plain list or dict.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .exceptions import JobStateError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "EMPTY_STATES",
    "RUN_FIELDS_SET",
    "OwnedDict",
    "OwnedList",
    "has_own_lists",
    "new_fields",
    "own_fields",
    "owned_dict",
    "owned_list",
    "share_empty_lists",
    "writable_list",
    "writable_states",
]

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
    job_id = getattr(view, "_job_id", None)
    # Empty lists shared by jobs (see share_empty_lists) name no job.
    whose = "this job is" if job_id is None else f"job {job_id!r} is"
    raise JobStateError(
        f"{whose} run by a flow: its {field!r} are read-only ({change} refused; "
        f"{kind}(job.{field}) is a copy you may change)"
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


def owned_dict(items: dict[Any, Any], job_id: str | None) -> OwnedDict[Any, Any]:
    """A read-only view holding ``items``, the ``routine_states`` of ``job_id``."""
    view: OwnedDict[Any, Any] = OwnedDict(items)
    view._job_id = job_id  # type: ignore[assignment]  # None: shared by jobs
    view._field = _DICT_FIELD
    return view


def _shared_empty(field: str) -> OwnedList[Any]:
    view: OwnedList[Any] = OwnedList()
    view._job_id = None  # type: ignore[assignment]  # shared: no one job's
    view._field = field
    return view


#: One empty view per list field, shared by every finished job whose list is
#: empty, and by every job's ``pending_tasks`` until a pause lists some: most
#: jobs end with no errors, pause points or pending tasks, and a program may keep
#: thousands of them, each list one more object for the garbage collector to
#: walk again and again.
_EMPTY = {name: _shared_empty(name) for name in _LIST_FIELDS}
_EMPTY_ERRORS, _EMPTY_TASKS, _EMPTY_POINTS = (
    _EMPTY["errors"],
    _EMPTY["pending_tasks"],
    _EMPTY["pause_points"],
)

#: The ``routine_states`` of every job until its first activation settles: a
#: backlog of queued jobs then holds one empty dict, not one each.
EMPTY_STATES: OwnedDict[Any, Any] = owned_dict({}, None)  # shared: no one job's


def share_empty_lists(values: dict[str, Any]) -> None:
    """Swap a finished job's empty list views for the shared empty ones.

    ``values`` is the JobState's ``__dict__``; call with the owner's lock held.
    A later write goes through :func:`writable_list`, which gives the job a view
    of its own again.
    """
    for name in _LIST_FIELDS:
        items = values[name]
        if not items and type(items) is OwnedList:
            values[name] = _EMPTY[name]


def has_own_lists(values: dict[str, Any]) -> bool:
    """True when a JobState's ``values`` hold a list view of their own.

    (What :func:`share_empty_lists` may swap back; most jobs never make one.)
    """
    return (
        values["errors"] is not _EMPTY_ERRORS
        or values["pending_tasks"] is not _EMPTY_TASKS
        or values["pause_points"] is not _EMPTY_POINTS
    )


def writable_list(values: dict[str, Any], field: str) -> OwnedList[Any]:
    """The ``field`` view of a JobState's ``values`` for its owner to append to.

    A shared empty one (see :func:`share_empty_lists`) is replaced by the job's
    own first. Call with the owner's lock held.
    """
    view: OwnedList[Any] = values[field]
    if view is _EMPTY[field]:
        view = values[field] = owned_list((), values["job_id"], field)
    return view


def writable_states(values: dict[str, Any]) -> OwnedDict[Any, Any]:
    """The ``routine_states`` view of a JobState's ``values`` for its owner.

    The shared empty one (see :data:`EMPTY_STATES`) is replaced by the job's own
    first. Call with the owner's lock held.
    """
    states: OwnedDict[Any, Any] = values[_DICT_FIELD]
    if states is EMPTY_STATES:
        states = values[_DICT_FIELD] = owned_dict({}, values["job_id"])
    return states


def new_fields(values: dict[str, Any]) -> None:
    """Add the containers of a new job, shared empty views, to its ``values``.

    ``values`` is the JobState's ``__dict__``. The owner writes them through
    :func:`writable_list` and :func:`writable_states`.
    """
    values[_DICT_FIELD] = EMPTY_STATES
    # Shared while empty: the owner appends through writable_list, which gives
    # the job a list of its own at the first write (most jobs never have one).
    for name in _LIST_FIELDS:
        values[name] = _EMPTY[name]


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
        values[_DICT_FIELD] = owned_dict(states, job_id)
    for name in _LIST_FIELDS:
        items = values[name]
        if type(items) is not OwnedList:
            values[name] = owned_list(items, job_id, name)


class _FieldsSet(set[str]):
    """The fields set every JobState the runtime makes shares: it refuses changes.

    Pydantic adds to a model's fields set only when a field is assigned, which an
    owned job refuses; one shared set is one object fewer per job kept.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(set(self))

    def _refuse(self, *args: Any) -> NoReturn:
        raise JobStateError("the fields set of a job a flow runs is read-only")

    add = discard = remove = pop = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse


#: The ``__pydantic_fields_set__`` of every JobState the runtime makes.
RUN_FIELDS_SET: set[str] = _FieldsSet(("flow_id",))
