"""Flow documents: JSON-ready dicts with a schema version, read back safely.

A document names routine classes by registry key (``module:QualifiedName``) and never
makes anything else: no pickle, no eval, no imports. Reading checks the whole
document before returning, and every problem raises :class:`SerializationError`
naming its path in the document (``routines.fetcher1.class``).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson

from .exceptions import RoutiluxError, SerializationError
from .registry import class_key, find_routine_class

if TYPE_CHECKING:
    from collections.abc import Callable

    from .flow import Flow
    from .routine import Routine

__all__ = [
    "SCHEMA_VERSION",
    "InstanceOrClassMethod",
    "flow_from_dict",
    "flow_to_dict",
    "from_json",
    "to_json",
]

#: The version written into every flow document.
SCHEMA_VERSION = 1
_KIND = "routilux.flow"

T = TypeVar("T")
R = TypeVar("R")


class InstanceOrClassMethod(Generic[T, R]):
    """A method that receives the instance when called on one, else the class."""

    def __init__(self, fn: Callable[[Any, T], R]) -> None:
        self._fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __get__(self, obj: object, owner: type | None = None) -> Callable[[T], R]:
        return functools.partial(self._fn, obj if obj is not None else owner)


def to_json(document: dict[str, Any]) -> bytes:
    """Encode a document with orjson.

    Raises:
        SerializationError: When a value is not JSON-ready.
    """
    try:
        return orjson.dumps(document)
    except TypeError as exc:
        raise SerializationError(f"document is not JSON-ready: {exc}") from exc


def from_json(raw: bytes | str) -> dict[str, Any]:
    """Decode a document.

    Raises:
        SerializationError: For text that is not a JSON object.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SerializationError(
            f"a flow document must be a JSON object, got {type(data).__name__}"
        )
    return data


def _check_rebuildable(routine_id: str, routine: Routine) -> None:
    required = [
        p.name
        for p in list(inspect.signature(type(routine).__init__).parameters.values())[1:]
        if p.default is inspect.Parameter.empty
        and p.kind
        not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if required:
        raise SerializationError(
            f"routines.{routine_id}: {type(routine).__name__}.__init__ requires "
            f"{required}, so "
            "it cannot be rebuilt from a document; give those parameters defaults and "
            "keep "
            "the values in set_config()"
        )


def _routine_to_dict(routine_id: str, routine: Routine) -> dict[str, Any]:
    _check_rebuildable(routine_id, routine)
    entry = routine.serialize()
    try:
        orjson.dumps(entry["config"])
    except TypeError as exc:
        raise SerializationError(
            f"routines.{routine_id}.config: not JSON-ready: {exc}"
        ) from exc
    return entry


def flow_to_dict(flow: Flow) -> dict[str, Any]:
    """The structure of ``flow`` as a JSON-ready document.

    Raises:
        SerializationError: For a routine that cannot be rebuilt or whose config is
            not JSON-ready.
    """
    handler = flow.error_handler
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": _KIND,
        "flow_id": flow.flow_id,
        "execution_strategy": flow.execution_strategy,
        "max_workers": flow.max_workers,
        "error_handler": handler.serialize() if handler is not None else None,
        "routines": {rid: _routine_to_dict(rid, r) for rid, r in flow.routines.items()},
        "connections": [
            {
                "source": c.source_routine_id,
                "event": c.source_event.name if c.source_event else None,
                "target": c.target_routine_id,
                "slot": c.target_slot.name if c.target_slot else None,
                "param_mapping": dict(c.param_mapping),
            }
            for c in flow.connections
        ],
    }


def _field(
    data: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str
) -> Any:
    if key not in data:
        raise SerializationError(f"{path}{key}: missing")
    value = data[key]
    if not isinstance(value, kind) or (
        isinstance(value, bool) and bool not in _as_tuple(kind)
    ):
        raise SerializationError(
            f"{path}{key}: expected {_kind_name(kind)}, got {type(value).__name__}"
        )
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _build_routine(routine_id: str, entry: Any) -> Routine:
    path = f"routines.{routine_id}."
    if not isinstance(entry, dict):
        raise SerializationError(f"routines.{routine_id}: expected an object")
    key = _field(entry, "class", str, path)
    cls = find_routine_class(key)
    if cls is None:
        raise SerializationError(
            f"{path}class: unknown routine class {key!r}; define or import it before "
            "loading "
            "(classes are found only in the routine registry)"
        )
    _field(entry, "config", dict, path)
    try:
        routine = cls()
        routine.deserialize(entry)
    except (TypeError, RoutiluxError, ValueError) as exc:
        raise SerializationError(
            f"routines.{routine_id}: cannot rebuild {key}: {exc}"
        ) from exc
    return routine


def flow_from_dict(data: Any, into: Flow | None) -> Flow:
    """Build a Flow from a document; fill ``into`` instead when given.

    Raises:
        SerializationError: Naming the path of the first problem; nothing is changed.
    """
    from .flow import Flow
    from .resilience import ErrorHandler

    if not isinstance(data, dict):
        raise SerializationError(
            f"a flow document must be an object, got {type(data).__name__}"
        )
    version = _field(data, "schema_version", int, "")
    if version != SCHEMA_VERSION:
        raise SerializationError(
            f"schema_version: {version} is not supported (this routilux reads "
            f"{SCHEMA_VERSION})"
        )
    routines = {
        rid: _build_routine(rid, entry)
        for rid, entry in _field(data, "routines", dict, "").items()
    }
    connections = _field(data, "connections", list, "")
    handler_data = data.get("error_handler")
    try:
        handler = None
        if handler_data is not None:
            handler = ErrorHandler()
            handler.deserialize(handler_data)
        staged = Flow(
            data.get("flow_id") or None,
            _field(data, "execution_strategy", str, ""),
            _field(data, "max_workers", int, ""),
            error_handler=handler,
        )
    except (RoutiluxError, TypeError, ValueError, AttributeError) as exc:
        raise SerializationError(f"flow settings: {exc}") from exc
    try:
        _wire(staged, routines, connections)
    finally:
        staged.shutdown(wait=False)
    if into is None:
        fresh = Flow(
            staged.flow_id,
            staged.execution_strategy,
            max(staged.max_workers, 1),
            error_handler=handler,
        )
        _wire(fresh, routines, connections)
        return fresh
    if into.routines:
        raise SerializationError(
            f"cannot deserialize into flow {into.flow_id!r}: it already has routines"
        )
    into.flow_id = staged.flow_id
    into.set_execution_strategy(staged.execution_strategy, staged.max_workers)
    into.error_handler = handler
    _wire(into, routines, connections)
    return into


def _wire(flow: Flow, routines: dict[str, Routine], connections: list[Any]) -> None:
    for rid, routine in routines.items():
        flow.add_routine(routine, rid)
    for index, entry in enumerate(connections):
        path = f"connections[{index}]."
        if not isinstance(entry, dict):
            raise SerializationError(f"connections[{index}]: expected an object")
        mapping = entry.get("param_mapping") or None
        try:
            flow.connect(
                _field(entry, "source", str, path),
                _field(entry, "event", str, path),
                _field(entry, "target", str, path),
                _field(entry, "slot", str, path),
                mapping,
            )
        except RoutiluxError as exc:
            if isinstance(exc, SerializationError):
                raise
            raise SerializationError(f"connections[{index}]: {exc}") from exc


def routine_class_key(routine: Routine) -> str:
    """The registry key a document uses for ``routine``'s class."""
    return class_key(type(routine))
