"""Slots and events defined on a routine instance, described in full in its entry.

A class's constructor declares its slots and events, so a document names the
class and lists them only to check them. Those defined on the instance after
construction (every slot and event of a bare ``Routine()``) are rebuilt from the
document instead, so a slot's row carries what rebuilding takes, under
``instance``::

    {"name": "input", "merge_strategy": "override", "handler": "record",
     "instance": {"handler": {"function": "my_app.handlers:record"},
                  "policy": {"name": "each"}}}

An event's row (name and output_params) is all it takes to rebuild it, so it
needs no mark: an event the document lists and the rebuilt routine lacks is
defined on it (documents written before instance rows existed load as before).

A handler is named as a method of the routine's own class (``{"method":
"process"}``: a method of a Routine subclass, not of the base) or as a module-level
function (``{"function": "module:qualname"}``, loaded only from a module listed in
``allowed_modules``); ``null`` for none. Lambdas, closures, partials and other
callables cannot be found again, so saving refuses them, naming the routine id and
slot. Merge strategies are kept by registered name and policies by their
description (``each``, ``all_sources``, ``Batch``, ``Window``; a window's clock is
not kept); anonymous merge functions and policies of one's own are refused too.
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

from ..exceptions import RoutiluxError, SerializationError
from ..policies import EACH, AllSources, Batch, Window
from ._resolver import static_attribute
from ._values import field, is_dict, is_name, is_names, no_unknown_keys, short

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..policies import SlotPolicy
    from ..routine import Routine
    from ..slot import Slot
    from ..spec import RoutineSpec
    from ._resolver import Resolver

__all__ = ["define_instance_items", "describe_instance_rows"]

#: The policies a document rebuilds, by name: their settings as constructor keywords.
_POLICIES: dict[str, tuple[type[Any] | None, tuple[str, ...]]] = {
    "each": (None, ()),
    "all_sources": (AllSources, ("keep", "on_missing")),
    "batch": (Batch, ("size",)),
    "window": (Window, ("seconds",)),
}
_REBUILT_POLICY_TYPES = (type(EACH), AllSources, Batch, Window)


# -- writing ---------------------------------------------------------------------


def describe_instance_rows(
    path: str,
    routine: Routine,
    spec: RoutineSpec,
    slots: list[dict[str, Any]],
) -> None:
    """Add ``instance`` to the rows of the slots defined on the instance.

    Raises:
        SerializationError: For a handler, merge strategy or policy a document
            cannot name, at ``routines.<id>.slots[<i>] (slot '<name>')``.
    """
    for index, (row, slot_spec) in enumerate(
        zip(slots, spec.slots.values(), strict=True)
    ):
        if slot_spec.on_instance:
            slot = routine.get_slot(slot_spec.name)
            assert slot is not None  # the spec was built from the routine's slots
            where = f"{path}.slots[{index}] (slot {slot_spec.name!r})"
            row["instance"] = _describe_slot(where, routine, slot)


def _describe_slot(where: str, routine: Routine, slot: Slot) -> dict[str, Any]:
    if slot.merger.name is None:
        raise SerializationError(
            f"{where}: its merge strategy {slot.merge_strategy!r} is a function a "
            "document cannot name; register it with register_merge_strategy(name, "
            "fn) and define the slot with merge_strategy=name"
        )
    policy = slot.policy
    if type(policy) not in _REBUILT_POLICY_TYPES:
        raise SerializationError(
            f"{where}: its policy {policy!r} is not one a document rebuilds (each, "
            "all_sources, Batch, Window)"
        )
    return {
        "handler": _handler_reference(where, routine, slot.handler),
        "policy": policy.describe(),
    }


def _handler_reference(
    where: str, routine: Routine, handler: Callable[..., Any] | None
) -> dict[str, str] | None:
    if handler is None:
        return None
    function = getattr(handler, "__func__", None)
    if getattr(handler, "__self__", None) is routine and inspect.isfunction(function):
        name = function.__name__
        if own_method(type(routine), name) is function:
            return {"method": name}
        raise SerializationError(
            f"{where}: handler {function.__qualname__} is not a method its class "
            f"{type(routine).__name__} defines under that name (methods of the "
            "Routine base are not handlers a document may name)"
        )
    if inspect.isfunction(handler):
        module, qualname = handler.__module__, handler.__qualname__
        if "<" not in qualname:
            found = static_attribute(sys.modules.get(module), qualname)
            if found is handler:
                return {"function": f"{module}:{qualname}"}
        if handler.__name__ == "<lambda>":
            what = "a lambda"
        elif "<locals>" in qualname:
            what = "a function defined inside another (a closure)"
        else:
            what = f"not what {module}.{qualname} names"
        raise SerializationError(
            f"{where}: handler {qualname} cannot be named in a document ({what}); "
            "use a method of the routine's class or a module-level function"
        )
    raise SerializationError(
        f"{where}: handler {short(handler)} cannot be named in a document (a "
        f"{type(handler).__name__}, not a function); use a method of the routine's "
        "class or a module-level function"
    )


def own_method(cls: type, name: str) -> Callable[..., Any] | None:
    """The function ``name`` as a Routine subclass (not the base) defines it."""
    from ..routine import Routine

    for owner in cls.__mro__:
        if name in owner.__dict__:
            found = owner.__dict__[name]
            is_own = issubclass(owner, Routine) and owner is not Routine
            return found if is_own and inspect.isfunction(found) else None
    return None


# -- reading ---------------------------------------------------------------------


def define_instance_items(
    routine: Routine, entry: dict[str, Any], path: str, resolver: Resolver
) -> None:
    """Define the slots whose rows carry ``instance``, and the events it lacks.

    A slot or event the routine has already (its class declared it, or its own
    ``deserialize`` defined it) is left to the comparison that follows.

    Raises:
        SerializationError: Naming the path of the first problem.
    """
    for index, row in enumerate(entry["slots"]):
        if type(row) is dict and "instance" in row:
            name = row.get("name")
            if type(name) is not str or routine.get_slot(name) is None:
                _define_slot(routine, row, f"{path}.slots[{index}]", resolver)
    for index, row in enumerate(entry["events"]):
        name = row.get("name") if type(row) is dict else None
        if type(name) is str and name and routine.get_event(name) is None:
            _define_event(routine, row, f"{path}.events[{index}]")


def _define_slot(
    routine: Routine, row: dict[str, Any], where: str, resolver: Resolver
) -> None:
    name = field(row, "name", where, is_name, "a non-empty string")
    merge = field(row, "merge_strategy", where, is_name, "a merge strategy name")
    spec = field(row, "instance", where, is_dict, "an object")
    inner = f"{where}.instance"
    no_unknown_keys(spec, ("handler", "policy"), inner)
    reference = field(spec, "handler", inner, _is_reference, _REFERENCE)
    handler = _resolve_handler(routine, reference, f"{inner}.handler", resolver)
    policy = _read_policy(
        field(spec, "policy", inner, is_dict, "an object"), f"{inner}.policy"
    )
    try:
        routine.define_slot(name, handler, merge, policy)
    except RoutiluxError as exc:
        raise SerializationError(f"{where}: {exc}") from exc


def _define_event(routine: Routine, row: dict[str, Any], where: str) -> None:
    name: str = row["name"]
    params = field(row, "output_params", where, is_names, "a list of names")
    try:
        routine.define_event(name, params)
    except RoutiluxError as exc:
        raise SerializationError(f"{where}: {exc}") from exc


_REFERENCE = 'null, {"method": name} or {"function": "module:qualname"}'


def _is_reference(value: Any) -> bool:
    return value is None or (
        type(value) is dict
        and len(value) == 1
        and next(iter(value)) in ("method", "function")
        and is_name(next(iter(value.values())))
    )


def _resolve_handler(
    routine: Routine, reference: dict[str, str] | None, where: str, resolver: Resolver
) -> Callable[..., Any] | None:
    if reference is None:
        return None
    if "function" in reference:
        return resolver.handler_function(reference["function"], f"{where}.function")
    name = reference["method"]
    function = own_method(type(routine), name)
    if function is None:
        raise SerializationError(
            f"{where}.method: {type(routine).__name__} defines no method {name!r} "
            "(methods of the Routine base are not handlers a document may name)"
        )
    bound: Callable[..., Any] = function.__get__(routine, type(routine))
    return bound


def _read_policy(value: dict[str, Any], where: str) -> SlotPolicy:
    name = field(value, "name", where, _is_policy_name, f"one of {sorted(_POLICIES)}")
    make, keys = _POLICIES[name]
    no_unknown_keys(value, ("name", *keys), where)
    if make is None:
        return EACH
    settings = {key: field(value, key, where, _is_present, "a value") for key in keys}
    try:
        policy: SlotPolicy = make(**settings)
    except RoutiluxError as exc:
        raise SerializationError(f"{where}: {exc}") from exc
    return policy


def _is_policy_name(value: Any) -> bool:
    return isinstance(value, str) and value in _POLICIES


def _is_present(value: Any) -> bool:
    return True
