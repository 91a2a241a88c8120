"""Writing a flow document: the structure of a flow as plain JSON values."""

from __future__ import annotations

import functools
import inspect
import weakref
from typing import TYPE_CHECKING, Any

import orjson

from ..exceptions import SerializationError
from ._tags import encode, is_plain
from ._values import (
    TAG_MARKED,
    exact_copy,
    float_seconds,
    is_positive_int,
    is_seconds,
    json_copy,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..flow import Flow
    from ..resilience import ErrorHandler
    from ..routine import Routine
    from ..spec import RoutineSpec

__all__ = [
    "ADDED_KEYS",
    "KIND",
    "MAX_WORKERS",
    "SCHEMA_VERSION",
    "assemble_entry",
    "entry_parts",
    "flow_to_dict",
    "flow_to_json",
    "routine_to_dict",
]

#: The version written into every flow document.
SCHEMA_VERSION = 2
#: The ``kind`` of a flow document.
KIND = "routilux.flow"
#: The most worker threads a document may ask for (they start with the flow).
MAX_WORKERS = 1024
#: The keys of a routine entry the flow adds, written as plain JSON; the rest
#: (what the routine's ``serialize()`` returns) is in the tagged encoding.
ADDED_KEYS = frozenset(
    {"error_handler", "timeout", "circuit_breaker", "stats", "slots", "events"}
)
#: Error-handler and breaker fields kept as float seconds or factors.
HANDLER_FLOATS = ("retry_delay", "retry_backoff")
BREAKER_FLOATS = ("reset_timeout",)


def flow_to_dict(flow: Flow) -> dict[str, Any]:
    """The structure of ``flow`` as a JSON-ready document.

    Raises:
        SerializationError: For a routine that cannot be rebuilt or a value that is
            not plain JSON, naming its path.
    """
    settings = _settings(flow)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "flow_id": flow.flow_id,
        **settings,
        "error_handler": handler_to_dict(flow.error_handler, "error_handler"),
        "routines": {rid: routine_to_dict(rid, r) for rid, r in flow.routines.items()},
        "connections": _connections(flow),
    }


def flow_to_json(flow: Flow) -> bytes | None:
    """``flow``'s document as JSON bytes, keys sorted, when it is all plain JSON.

    The same bytes as encoding :func:`flow_to_dict`'s document, without the
    copies that document needs (the caller gets bytes, nothing to alias): one
    type scan over every routine's values at once, then orjson. None when any
    value needs a closer look (a tag, an escape, a value JSON cannot hold): the
    caller then writes :func:`flow_to_dict`'s document, which tags what needs it
    and names the first value no encoding holds.

    Raises:
        SerializationError: For a flow setting a document cannot rebuild (as
            :func:`flow_to_dict` does, first).
    """
    settings = _settings(flow)
    handler = handler_to_dict(flow.error_handler, "error_handler")
    routines = _plain_entries(flow.routines)
    if routines is None:
        return None
    document = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "flow_id": flow.flow_id,
        **settings,
        "error_handler": handler,
        "routines": routines,
        "connections": _connections(flow),
    }
    try:
        raw = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a key that is not text, a lone surrogate, a big int
        return None
    # A dict that starts like a tag must be escaped: keys sorted, a one-key
    # dict whose key starts with the mark always shows as such.
    return None if TAG_MARKED in raw else raw


def _plain_entries(routines: Mapping[str, Routine]) -> dict[str, Any] | None:
    """Every routine's entry uncopied, or None unless all its values are plain."""
    try:
        parts = [entry_parts(f"routines.{rid}", r) for rid, r in routines.items()]
    except SerializationError:
        return None  # flow_to_dict raises it, after any earlier routine's error
    if not all(part[3] for part in parts):
        return None
    # One scan over all routines (its fixed cost was most of a small routine's
    # time); the list around them is the level routine_to_dict's copy adds.
    values = [part[0] for part in parts]
    values += [part[1] for part in parts]
    if not is_plain(values):
        return None
    return {
        rid: assemble_entry(described, added, layout)
        for rid, (described, added, layout, _) in zip(routines, parts, strict=True)
    }


def _connections(flow: Flow) -> list[dict[str, Any]]:
    """The connections in the order they were made, read from the flow's graph.

    Each edge is keyed ``(event, slot)`` and holds its ``param_mapping`` (None for
    none), its ``order`` and its ``lane_key`` (written only when set).
    """
    # iter(): a generator, so sorted() does not walk the view once more for len().
    edges = sorted(iter(flow.graph.edges(keys=True, data=True)), key=_made)
    links = [
        {
            "source": source,
            "event": event,
            "target": target,
            "slot": slot,
            "param_mapping": json_copy(data["param_mapping"], f"connections[{index}]")
            if data["param_mapping"]
            else {},
        }
        for index, (source, target, (event, slot), data) in enumerate(edges)
    ]
    for link, (*_, data) in zip(links, edges, strict=True):
        if data.get("lane_key") is not None:  # only then: older documents unchanged
            link["lane_key"] = data["lane_key"]
    return links


def _made(edge: tuple[str, str, tuple[str, str], dict[str, Any]]) -> int:
    order: int = edge[3]["order"]
    return order


def _settings(flow: Flow) -> dict[str, Any]:
    """The flow's settings, refused here when a document could not rebuild them."""
    from ..strategies.base import registered_strategies

    settings: dict[str, Any] = json_copy(
        {
            "execution_strategy": flow.execution_strategy,
            "max_workers": flow.max_workers,
            "default_timeout": flow.default_timeout,
            "history_limit": flow.history_limit,
        },
        "",
    )
    problems = {
        "execution_strategy": settings["execution_strategy"]
        not in registered_strategies(),
        "max_workers": not is_positive_int(settings["max_workers"])
        or settings["max_workers"] > MAX_WORKERS,
        "default_timeout": not is_seconds(settings["default_timeout"]),
        "history_limit": settings["history_limit"] is not None
        and not is_positive_int(settings["history_limit"]),
    }
    for key, bad in problems.items():
        if bad:
            raise SerializationError(
                f"{key}: {settings[key]!r} cannot be rebuilt from a document "
                f"(strategies must be registered, at most {MAX_WORKERS} workers, "
                "timeouts > 0, history_limit >= 1)"
            )
    return settings


def handler_to_dict(handler: ErrorHandler | None, path: str) -> dict[str, Any] | None:
    """An error handler's description, seconds as floats; None stays None."""
    if handler is None:
        return None
    return float_seconds(json_copy(handler.serialize(), path), HANDLER_FLOATS)


@functools.lru_cache(maxsize=1024)
def _required_arguments(cls: type) -> tuple[str, ...]:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # no signature to read: loading will tell
        return ()
    return tuple(
        p.name
        for p in params
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )


def _check_rebuildable(path: str, routine: Routine) -> None:
    cls: type = type(routine)
    required = _required_arguments(cls)
    if required:
        raise SerializationError(
            f"{path}: {cls.__name__}() requires {list(required)}, so it cannot "
            "be rebuilt from a document; give those parameters defaults and keep the "
            "values in set_config()"
        )


def routine_to_dict(rid: str, routine: Routine) -> dict[str, Any]:
    """One routine's entry: its own ``serialize()`` plus what the flow adds.

    Raises:
        SerializationError: For a constructor that needs arguments, a config value
            no encoding holds (``routines.<id>.config.<key>``), or a setting or
            statistic that is not plain JSON.
    """
    path = f"routines.{rid}"
    described, added, layout, _ = entry_parts(path, routine)
    # The common case: one orjson round trip copies everything (the layout's
    # rows are shared by every document of the routine).
    # exact_copy keeps an IntEnum as its int: only values that encode as
    # themselves take it.
    copied = exact_copy([described, added, layout]) if is_plain(described) else None
    if copied is not None:
        return assemble_entry(copied[0], copied[1], copied[2])
    # Values JSON cannot hold as themselves are tagged; the walk names the first
    # value no encoding holds.
    own = encode(described, path)
    listed = json_copy({"stats": added["stats"], **layout}, path)
    settings = {
        "error_handler": json_copy(added["error_handler"], f"{path}.error_handler"),
        "timeout": added["timeout"],
        "circuit_breaker": json_copy(
            added["circuit_breaker"], f"{path}.circuit_breaker"
        ),
        "stats": listed.pop("stats"),
    }
    return assemble_entry(own, settings, listed)


def entry_parts(
    path: str, routine: Routine, *, cached: bool = True
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], bool]:
    """What a routine's entry is made of, not yet copied.

    ``serialize()``'s dict; the error handler, timeout, circuit breaker and stats
    the flow adds; the slots and events, as rows of the spec's names (shared by
    every call for the spec: copy them before handing them out); and whether
    all those names are plain (ASCII text, or null where null may be).
    ``cached=False`` lays the rows out anew and keeps nothing: a routine just
    loaded is compared once, and caching its layout would add objects for the
    collector to walk in the middle of a load (a full collection more, which
    doubled ``Flow.from_json`` of 2,000 routines).

    Raises:
        SerializationError: For a constructor that needs arguments, or a
            ``serialize()`` that returns no dict.
    """
    _check_rebuildable(path, routine)
    described = routine.serialize()
    if not isinstance(described, dict):
        raise SerializationError(f"{path}: serialize() returned a non-dict")
    spec = routine.get_spec()
    handler, breaker = spec.error_handler, spec.circuit_breaker
    stats = routine.stats()
    if breaker is not None:  # the live breaker's figures, not a stored statistic
        stats.pop("circuit_breaker", None)
    added = {  # in the order of the entry, after serialize()'s keys
        "error_handler": None if handler is None else handler.serialize(),
        "timeout": spec.timeout,
        "circuit_breaker": None if breaker is None else breaker.serialize(),
        "stats": stats,
    }
    if spec.instance_defined and any(s.on_instance for s in spec.slots.values()):
        # Rows to rebuild slots from: copied and checked in full, every time.
        from ._instance import describe_instance_rows

        slots, events, _ = _layout_rows(spec)  # new rows, not the cached ones
        describe_instance_rows(path, routine, spec, slots)
        return described, added, {"slots": slots, "events": events}, False
    if not cached:
        slots, events, plain = _layout_rows(spec)
        return described, added, {"slots": slots, "events": events}, plain
    layout, plain = _layout_of(spec)
    return described, added, layout, plain


def _layout_rows(spec: RoutineSpec) -> tuple[list[Any], list[Any], bool]:
    """The slot and event rows of a spec's names, and whether all are plain."""
    names: list[Any] = []  # to check at once whether they are all plain
    slots = []
    for slot in spec.slots.values():
        name, merge, handler_name = slot.name, slot.merge_strategy, slot.handler_name
        names += (name, merge, handler_name)
        slots.append({"name": name, "merge_strategy": merge, "handler": handler_name})
    events = []
    for event in spec.events.values():
        params = list(event.output_params)
        names += (event.name, *params)
        events.append({"name": event.name, "output_params": params})
    return slots, events, _plain_text(names)


#: A spec's layout (its slot and event rows, and their plainness) by id, with
#: a weak reference to the spec: a spec is frozen and a routine's is made once,
#: so a document written again (a checkpoint, a flow saved often) lays out each
#: routine once. The rows are shared: whatever hands them to a caller copies
#: them (routine_to_dict).
_LAYOUTS: dict[int, tuple[weakref.ref[RoutineSpec], dict[str, Any], bool]] = {}


def _layout_of(spec: RoutineSpec) -> tuple[dict[str, Any], bool]:
    key = id(spec)
    cached = _LAYOUTS.get(key)
    if cached is not None and cached[0]() is spec:
        return cached[1], cached[2]
    slots, events, plain = _layout_rows(spec)
    layout = {"slots": slots, "events": events}
    # The entry goes with the spec (a weakref callback, far cheaper than a
    # finalizer), so a later object with its id misses.
    ref = weakref.ref(spec, functools.partial(_drop_layout, key))
    _LAYOUTS[key] = (ref, layout, plain)
    return layout, plain


def _drop_layout(key: int, _: object) -> None:
    _LAYOUTS.pop(key, None)


def _plain_text(names: list[Any]) -> bool:
    """True when every name is None or a str (not a subclass) of ASCII characters.

    ASCII text holds no lone surrogate; other text is left to the copy to check.
    """
    return _TEXT_OR_NULL.issuperset(map(type, names)) and (
        "".join(filter(None, names)).isascii()
    )


_TEXT_OR_NULL = frozenset({str, type(None)})


def assemble_entry(
    described: dict[str, Any], added: dict[str, Any], layout: dict[str, Any]
) -> dict[str, Any]:
    """The entry from its parts (see :func:`entry_parts`); seconds as floats."""
    entry = {**described, **added, **layout}
    handler, breaker = added["error_handler"], added["circuit_breaker"]
    if handler is not None:
        entry["error_handler"] = float_seconds(handler, HANDLER_FLOATS)
    if breaker is not None:
        entry["circuit_breaker"] = float_seconds(breaker, BREAKER_FLOATS)
    return entry
