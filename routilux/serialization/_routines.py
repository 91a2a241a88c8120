"""Reading one routine entry: check it, rebuild the routine, compare the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from .. import checks
from ..exceptions import RoutiluxError, SerializationError
from ..resilience import ErrorHandler, ErrorStrategy
from ._instance import define_instance_items
from ._untag import decode_keys
from ._values import (
    field,
    float_seconds,
    is_count,
    is_dict,
    is_list,
    is_name,
    is_names,
    is_number,
    is_optional_dict,
    is_positive_int,
    is_seconds,
    no_unknown_keys,
    short,
)
from ._writer import (
    ADDED_KEYS,
    BREAKER_FLOATS,
    HANDLER_FLOATS,
    assemble_entry,
    entry_parts,
    routine_to_dict,
)

if TYPE_CHECKING:
    from ..routine import Routine
    from ._resolver import Resolver

__all__ = ["read_handler", "read_routine"]

_STRATEGIES = frozenset(s.value for s in ErrorStrategy)
_SECONDS = f"seconds from 0 to {checks.MAX_SECONDS:.0f}"
_HANDLER_FIELDS = {
    "strategy": (lambda v: v in _STRATEGIES, f"one of {sorted(_STRATEGIES)}"),
    "max_retries": (is_count, "an int >= 0"),
    "retry_delay": (
        lambda v: checks.is_seconds(v, zero=True),
        _SECONDS,
    ),
    "retry_backoff": (lambda v: is_number(v) and v > 0, "a number > 0"),
    "retryable_exceptions": (is_names, "a list of exception type names"),
    "is_critical": (lambda v: isinstance(v, bool), "true or false"),
    "is_optional": (lambda v: isinstance(v, bool), "true or false"),
}
#: Handler fields a document may leave out (written only when set).
_HANDLER_OPTIONAL = {
    "on_exhausted": (
        lambda v: v in ("stop", "continue", "skip"),
        "one of ['continue', 'skip', 'stop']",
    ),
}
_BREAKER_FIELDS = {
    "failure_threshold": (is_positive_int, "an int >= 1"),
    "reset_timeout": (
        lambda v: checks.is_seconds(v, zero=True),
        _SECONDS,
    ),
}
_MISSING: Any = object()


def read_handler(
    value: Any, path: str, resolver: Resolver
) -> tuple[ErrorHandler | None, dict[str, Any] | None]:
    """An ErrorHandler from its description (None for null), and the description."""
    if value is None:
        return None, None
    _check_fields(value, _HANDLER_FIELDS, path, _HANDLER_OPTIONAL)
    types = tuple(
        resolver.exception_type(name, f"{path}.retryable_exceptions[{i}]")
        for i, name in enumerate(value["retryable_exceptions"])
    )
    try:
        handler = ErrorHandler(
            value["strategy"],
            value["max_retries"],
            float(value["retry_delay"]),
            float(value["retry_backoff"]),
            types or None,
            value["is_critical"],
            on_exhausted=value.get("on_exhausted"),
        )
    except RoutiluxError as exc:
        raise SerializationError(f"{path}: {exc}") from exc
    handler.is_optional = value["is_optional"]
    return handler, float_seconds(value, HANDLER_FLOATS)


def _check_fields(
    value: dict[str, Any],
    fields: dict[str, tuple[Any, str]],
    path: str,
    optional: dict[str, tuple[Any, str]] | None = None,
) -> None:
    optional = optional or {}
    no_unknown_keys(value, {**fields, **optional}, path)
    for key, (valid, want) in fields.items():
        field(value, key, path, valid, want)
    for key, (valid, want) in optional.items():
        if key in value:
            field(value, key, path, valid, want)


def read_routine(rid: str, entry: Any, resolver: Resolver, version: int) -> Routine:
    """Check one routine entry, rebuild the routine and make sure it matches.

    Raises:
        SerializationError: Naming the path (``routines.<id>.<key>``).
    """
    path = f"routines.{rid}"
    if not isinstance(entry, dict):
        raise SerializationError(f"{path}: expected an object, got {short(entry)}")
    if version == 1:
        entry = {"stats": {}, "timeout": None, "circuit_breaker": None, **entry}
    cls = resolver.routine_class(
        field(entry, "class", path, is_name, "'module:QualifiedName'"), f"{path}.class"
    )
    layout = version >= 2  # version 1 did not record slots and events
    if _plain(entry, layout):  # the common entry: nothing to check or convert
        expected, handler, timeout, breaker = entry, None, None, None
    else:  # as the rebuilt routine describes it: seconds as floats
        expected = dict(entry)
        handler, timeout, breaker = _settings(entry, expected, path, resolver)
        if layout:
            field(entry, "slots", path, is_list, "a list")
            field(entry, "events", path, is_list, "a list")
    routine = _construct(cls, path)
    # What serialize() wrote is tagged (configs); what the flow adds is plain.
    values = decode_keys(entry, path, resolver.classes, ADDED_KEYS)
    _restore(routine, values, handler, timeout, breaker, path)
    if layout:
        define_instance_items(routine, entry, path, resolver)
        _restore_merges(routine, entry["slots"], path)
    _compare(routine, expected, rid, layout)
    return routine


def _plain(entry: dict[str, Any], layout: bool) -> bool:
    """True when every field is there with its type and no setting is made.

    The field checks would pass such an entry without a word; for any other they
    run, and say what is wrong.
    """
    get = entry.get
    return (
        type(get("config")) is dict
        and type(get("stats")) is dict
        and get("max_concurrency", _MISSING) is None
        and get("timeout", _MISSING) is None
        and get("error_handler", _MISSING) is None
        and get("circuit_breaker", _MISSING) is None
        and (not layout or type(get("slots")) is type(get("events")) is list)
    )


def _settings(
    entry: dict[str, Any], expected: dict[str, Any], path: str, resolver: Resolver
) -> tuple[ErrorHandler | None, float | None, dict[str, Any] | None]:
    """Check the fields of an entry; its error handler, timeout and breaker.

    ``expected`` gets them as a rebuilt routine describes them (seconds as floats).
    """
    field(entry, "config", path, is_dict, "an object")
    field(entry, "stats", path, is_dict, "an object")
    field(entry, "max_concurrency", path, _is_limit, "null or an int >= 1")
    timeout = field(entry, "timeout", path, is_seconds, "null or seconds > 0")
    handler, expected["error_handler"] = read_handler(
        field(entry, "error_handler", path, is_optional_dict, "null or an object"),
        f"{path}.error_handler",
        resolver,
    )
    breaker = field(
        entry, "circuit_breaker", path, is_optional_dict, "null or an object"
    )
    if breaker is not None:
        _check_fields(breaker, _BREAKER_FIELDS, f"{path}.circuit_breaker")
        expected["circuit_breaker"] = breaker = float_seconds(breaker, BREAKER_FLOATS)
    if timeout is not None:
        expected["timeout"] = timeout = float(timeout)
    return handler, timeout, breaker


def _is_limit(value: Any) -> bool:
    return value is None or is_positive_int(value)


def _construct(cls: type[Routine], path: str) -> Routine:
    try:
        routine = cls()
    except Exception as exc:  # the class's own constructor: report, build nothing
        raise SerializationError(
            f"{path}.class: {cls.__name__}() raised {type(exc).__name__}: {exc}"
        ) from exc
    from ..routine import spec_of

    if spec_of(routine) is None:
        raise SerializationError(
            f"{path}.class: {cls.__name__}.__init__ does not call super().__init__()"
        )
    return routine


def _restore(
    routine: Routine,
    entry: dict[str, Any],
    handler: ErrorHandler | None,
    timeout: float | None,
    breaker: dict[str, Any] | None,
    path: str,
) -> None:
    try:
        routine.deserialize(entry)  # a subclass override sees its own keys too
        routine.set_error_handler(handler)
        routine.set_timeout(timeout)
        if breaker is not None:
            routine.set_circuit_breaker(
                breaker["failure_threshold"], breaker["reset_timeout"]
            )
        routine.reset_stats()
        for key, value in entry["stats"].items():
            routine.set_stat(key, value)
    except Exception as exc:  # user code (deserialize overrides): report it
        raise SerializationError(
            f"{path}: {type(routine).__name__} cannot restore this entry: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _restore_merges(routine: Routine, slots: list[Any], path: str) -> None:
    """Apply merge strategies named in the document (registered names only)."""
    for index, item in enumerate(slots):
        if type(item) is dict and type(item.get("name")) is str:
            name, merge = item["name"], item.get("merge_strategy", _MISSING)
        else:
            name = merge = _MISSING
        if type(merge) not in _NAME_OR_NULL:  # say what is wrong with it
            name, merge = _slot_item(item, f"{path}.slots[{index}]")
        slot = routine.get_slot(name)
        if slot is None or merge is None or slot.merger.name == merge:
            continue
        try:
            slot.merge_strategy = merge
        except RoutiluxError as exc:
            raise SerializationError(
                f"{path}.slots[{index}].merge_strategy: {exc}"
            ) from exc


_NAME_OR_NULL = (str, type(None))


def _slot_item(item: Any, where: str) -> tuple[str, str | None]:
    """The name and merge strategy of a slot's item; or what is wrong with it."""
    if not isinstance(item, dict):
        raise SerializationError(f"{where}: expected an object, got {short(item)}")
    name = field(item, "name", where, _is_text, "a string")
    merge = field(item, "merge_strategy", where, _is_optional_text, "null or a name")
    return name, merge


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _compare(
    routine: Routine, expected: dict[str, Any], rid: str, layout: bool
) -> None:
    """The rebuilt routine must describe itself exactly as the document does."""
    path, name = f"routines.{rid}", type(routine).__name__
    if _alike(routine, expected, path, layout):
        return  # the common case: compared as it is, nothing copied
    try:
        described = routine_to_dict(rid, routine)
    except SerializationError as exc:
        raise SerializationError(
            f"rebuilt {name} cannot be written back: {exc}"
        ) from exc
    if not layout:
        described.pop("slots", None)
        described.pop("events", None)
    if _encode(described) == _encode(expected):
        return
    for key in sorted(set(described) | set(expected)):
        want, got = expected.get(key, _MISSING), described.get(key, _MISSING)
        if want is _MISSING:
            raise SerializationError(f"{path}.{key}: missing")
        if got is _MISSING:
            raise SerializationError(
                f"{path}.{key}: not a known key ({name} does not keep it)"
            )
        if _encode(want) == _encode(got):
            continue
        if key in ("slots", "events"):
            raise SerializationError(_layout_mismatch(f"{path}.{key}", want, got, name))
        raise SerializationError(
            f"{path}.{key}: {name} rebuilt from the document holds {short(got)}, "
            f"not {short(want)}"
        )


def _alike(routine: Routine, expected: dict[str, Any], path: str, layout: bool) -> bool:
    """True when the routine, described without copying, matches the entry.

    Equal as Python values (NaN is not null, which orjson writes it as) and
    written alike (1 is not 1.0 nor true) is exactly what writing it out and
    comparing would find. False is no verdict: the caller writes it out to say.
    """
    try:
        described = assemble_entry(*entry_parts(path, routine, cached=False)[:3])
    except SerializationError:
        return False
    if not layout:
        del described["slots"], described["events"]
    try:
        return described == expected and _encode(described) == _encode(expected)
    except Exception:  # noqa: BLE001 - not JSON, or a broken __eq__: the caller says
        return False


def _layout_mismatch(path: str, want: Any, got: list[Any], name: str) -> str:
    listed = [i.get("name") if isinstance(i, dict) else i for i in want]
    declared = [i["name"] for i in got]
    if listed != declared:
        missing = [n for n in listed if n not in declared]
        hint = (
            f"; the class does not declare {missing[0]!r} and its row has no "
            "'instance' description to define it from"
            if missing and path.endswith(".slots")
            else ""
        )
        return (
            f"{path}: the document lists {listed} but {name} declares {declared}{hint}"
        )
    index = next(
        i
        for i, (w, g) in enumerate(zip(want, got, strict=True))
        if _encode(w) != _encode(g)
    )
    return (
        f"{path}[{index}]: the document has {short(want[index])} but {name} "
        f"declares {short(got[index])}"
    )


def _encode(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
