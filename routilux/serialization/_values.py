"""Plain JSON values and the field checks documents are read with."""

from __future__ import annotations

import math
import reprlib
from typing import TYPE_CHECKING, Any

import orjson

from .. import checks
from ..exceptions import SerializationError
from ..merge import AppendView

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["MAX_DEPTH", "TAG_MARKED", "exact_copy", "json_copy", "nests_within"]

#: The deepest nesting a value may have (orjson itself stops at 255 levels).
MAX_DEPTH = 128
_INT_RANGE = range(-(2**63), 2**64)  # what orjson writes and reads back as int
TAG_MARKED = b'{"$'  # an object whose first key starts with the tag mark

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxdict = 4
short = _repr.repr


def join(path: str, key: object) -> str:
    """``path.key``, or ``key`` at the top of a document (``""`` for an empty key)."""
    text = str(key) or '""'
    return f"{path}.{text}" if path else text


def json_copy(value: Any, path: str, depth: int = 0) -> Any:
    """A copy of ``value`` made of plain JSON types (tuples and append views: lists).

    Subclasses of str, int and float (enums among them) become the base type.

    Raises:
        SerializationError: Naming the path of a value JSON cannot hold faithfully:
            another type, a non-string key, NaN or infinity, an integer outside 64
            bits, a lone surrogate, or nesting deeper than :data:`MAX_DEPTH`.
    """
    if value is None or isinstance(value, (bool, str, int, float)):
        return _scalar(value, path)
    fast = exact_copy(value, MAX_DEPTH - depth)
    if fast is not None:
        return fast
    if depth >= MAX_DEPTH:
        raise SerializationError(f"{path}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        return {
            _key(k, path): json_copy(v, join(path, k), depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, AppendView)):
        return [json_copy(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise SerializationError(f"{path}: {type(value).__name__} is not a JSON value")


_CONTAINERS = (dict, list)


def exact_copy(value: Any, levels: int = MAX_DEPTH) -> Any:
    """The copy orjson makes of the container ``value``, or None when not exact.

    Exact: the copy equals ``value`` and nests at most ``levels`` deep. orjson
    refuses what JSON cannot hold (other types, non-text keys, lone surrogates,
    integers past 64 bits) and writes NaN and infinity as null, which the
    comparison catches, as it does tuples. :func:`json_copy` walks path by path
    only when this fails, to say where the problem is.
    """
    try:
        raw = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None
    if TAG_MARKED in raw:
        return None  # a dict that looks like a tag: the tagged encoding escapes it
    copy = orjson.loads(raw)
    if copy != value:
        return None
    if _may_nest(raw, levels) and not nests_within(copy, levels):
        return None  # too deep
    return copy


def _may_nest(raw: bytes, levels: int) -> bool:
    """False when JSON text ``raw`` surely nests fewer than ``levels`` deep."""
    # Each level takes two characters and an opening bracket: count only past that.
    return len(raw) >= 2 * levels and raw.count(b"{") + raw.count(b"[") >= levels


def nests_within(value: Any, levels: int) -> bool:
    """True when the plain JSON container ``value`` nests at most ``levels`` deep.

    ``{}`` and ``[1]`` nest one level, ``{"a": [1]}`` two. One pass per level over
    the containers only, without recursion, so a large shallow document is cheap.
    """
    level = [value]
    for _ in range(levels):
        inner: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            inner += [item for item in items if type(item) in _CONTAINERS]
        if not inner:
            return True
        level = inner
    return False


def _scalar(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SerializationError(f"{path}: text with a lone surrogate") from None
        return str.__str__(value)
    if isinstance(value, int):
        if value not in _INT_RANGE:
            raise SerializationError(f"{path}: integer outside 64 bits")
        return int.__int__(value)
    if not math.isfinite(value):
        raise SerializationError(f"{path}: {value} is not a JSON number")
    return float.__float__(value)


def _key(key: object, path: str) -> str:
    if not isinstance(key, str):
        raise SerializationError(f"{path or 'document'}: key {short(key)} is not text")
    return json_copy(key, path)  # type: ignore[no-any-return]


def field(
    data: dict[str, Any], key: str, path: str, valid: Callable[[Any], bool], want: str
) -> Any:
    """``data[key]`` when present and ``valid``; else SerializationError at the path."""
    if key not in data:
        raise SerializationError(f"{join(path, key)}: missing")
    value = data[key]
    if not valid(value):
        raise SerializationError(
            f"{join(path, key)}: expected {want}, got {short(value)}"
        )
    return value


def no_unknown_keys(data: dict[str, Any], known: Iterable[str], path: str) -> None:
    """Refuse keys outside ``known``, naming the first."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SerializationError(f"{join(path, unknown[0])}: not a known key")


def float_seconds(data: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A copy with integer ``keys`` as floats, the way the objects keep them."""
    keys = frozenset(keys)
    return {k: float(v) if k in keys and is_int(v) else v for k, v in data.items()}


def is_int(v: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """An int (not bool) or a float."""
    return is_int(v) or isinstance(v, float)


def is_count(v: Any) -> bool:
    """An int >= 0."""
    return is_int(v) and v >= 0


def is_positive_int(v: Any) -> bool:
    """An int >= 1."""
    return is_int(v) and v >= 1


def is_seconds(v: Any) -> bool:
    """None, or seconds > 0 and at most :data:`routilux.checks.MAX_SECONDS`."""
    return v is None or checks.is_seconds(v)


def is_name(v: Any) -> bool:
    """A non-empty string."""
    return isinstance(v, str) and v != ""


def is_names(v: Any) -> bool:
    """A list of strings."""
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def is_mapping(v: Any) -> bool:
    """A dict of strings (keys are strings in any document)."""
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def is_dict(v: Any) -> bool:
    """A dict."""
    return isinstance(v, dict)


def is_list(v: Any) -> bool:
    """A list."""
    return isinstance(v, list)


def is_optional_dict(v: Any) -> bool:
    """None or a dict."""
    return v is None or isinstance(v, dict)
