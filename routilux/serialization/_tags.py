"""The tagged JSON encoding of payload values: Python values as plain JSON, faithfully.

Plain JSON values (dicts with text keys, lists, text, finite floats, 64-bit ints,
booleans, null) are written as themselves. Every other supported value becomes a
*tag*, an object with one key that starts with ``$``::

    {"$decimal": "10.05"}            Decimal
    {"$date": "2025-01-02"}          date
    {"$datetime": "2025-...+01:00"}  datetime (naive stays naive)
    {"$datetime": [iso, "Europe/Paris"]}   datetime in a ZoneInfo zone
    {"$time": "12:30:00"}            time
    {"$timedelta": [days, seconds, microseconds]}
    {"$uuid": "..."}                 UUID
    {"$bytes": "<base64>"}           bytes
    {"$tuple": [...]}, {"$set": [...]}, {"$frozenset": [...]}
    {"$int": "<digits>"}             an int outside 64 bits
    {"$float": "nan" | "inf" | "-inf"}
    {"$dict": [[key, value], ...]}   a dict with a key that is not text
    {"$enum": ["module:Name", value]}
    {"$model": ["module:Name", {field: value}]}        pydantic model
    {"$dataclass": ["module:Name", {field: value}]}    dataclass
    {"$esc": {"$key": value}}        a plain one-key dict whose key starts with $

Sets are written sorted (by their items' JSON), so equal values give equal bytes.
Anything else is refused with :class:`~routilux.SerializationError` naming the
path of the value (``payload.items[3].price``). :mod:`._untag` reads it back.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import sys
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from itertools import compress
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel

from ..exceptions import SerializationError
from ..merge import AppendView
from ._resolver import static_attribute
from ._values import MAX_DEPTH, join, short

__all__ = ["TAG_MARK", "class_name", "dumps", "encode", "encodes_as_itself", "is_plain"]

#: Every tag is an object whose one key starts with this.
TAG_MARK = "$"
_MARKED = b'{"' + TAG_MARK.encode()  # how orjson starts an object with such a key
_INT_RANGE = range(-(2**63), 2**64)  # what orjson writes and reads back as int
_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = frozenset({dict, list, AppendView})
_ALLOWED = _SCALARS | _CONTAINERS
_FLOAT = frozenset({float})


def dumps(value: Any, path: str = "", *, frame: int = 0) -> bytes:
    """``value`` in the tagged encoding, as JSON bytes.

    Args:
        value: What to write.
        path: Where ``value`` sits, for messages (``payload``).
        frame: Levels of document around the values, not counted in the
            :data:`MAX_DEPTH` a value may nest.

    Raises:
        SerializationError: Naming the path of a value that cannot be encoded.
    """
    raw = _plain_bytes(value, frame)
    if raw is not None:
        return raw
    return orjson.dumps(_encode(value, path, -frame))


def encode(value: Any, path: str = "", *, frame: int = 0) -> Any:
    """``value`` in the tagged encoding, as a new plain JSON value.

    Args:
        value: What to write.
        path: Where ``value`` sits, for messages (``payload``).
        frame: Levels of document around the values, not counted in the
            :data:`MAX_DEPTH` a value may nest.

    Raises:
        SerializationError: Naming the path of a value that cannot be encoded.
    """
    raw = _plain_bytes(value, frame)
    if raw is not None:
        return orjson.loads(raw)
    return _encode(value, path, -frame)  # new containers throughout


def encodes_as_itself(value: Any, *, frame: int = 0) -> bool:
    """True when :func:`encode` of ``value`` would equal ``value`` itself.

    The test :func:`encode` passes before it copies a plain value (and no
    :class:`AppendView` inside): a caller that only writes the value as JSON
    may write it as it is and skip the copy.
    """
    if not is_plain(value, MAX_DEPTH + frame):
        return False
    try:
        raw = orjson.dumps(value)
    except TypeError:  # an append view, a lone surrogate, a big int: not itself
        return False
    return _MARKED not in raw


def _plain_bytes(value: Any, frame: int) -> bytes | None:
    """The JSON of ``value`` when it encodes as itself, else None (walk it)."""
    if not is_plain(value, MAX_DEPTH + frame):
        return None
    try:
        raw = orjson.dumps(value, default=_view_as_list)
    except TypeError:  # a lone surrogate or a big int: the walk names or tags it
        return None
    return None if _MARKED in raw else raw


def is_plain(value: Any, levels: int = MAX_DEPTH) -> bool:
    """True when ``value`` surely encodes as itself, but for keys, text and ints.

    Containers are exact dicts, lists and append views; the rest exact str, int,
    float (finite), bool or None; at most ``levels`` deep. orjson refuses the
    rest (keys that are not exact text, lone surrogates, ints past 64 bits).
    One pass per level, with C-level scans only: a large payload is cheap.
    """
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is AppendView:
        items = value
    elif kind in _SCALARS:
        return kind is not float or math.isfinite(value)
    else:
        return False
    for _ in range(levels):
        types = set(map(type, items))
        if not types <= _ALLOWED:
            return False
        if float in types and not all(
            map(
                math.isfinite,
                compress(items, map(_FLOAT.__contains__, types_of(items))),
            )
        ):
            return False
        if types <= _SCALARS:
            return True
        nested = compress(items, map(_CONTAINERS.__contains__, types_of(items)))
        items = []
        extend = items.extend
        for container in nested:
            extend(container.values() if type(container) is dict else container)
    return False


def types_of(items: list[Any]) -> map[type]:
    """The type of each item, lazily."""
    return map(type, items)


def _view_as_list(value: Any) -> list[Any]:
    if isinstance(value, AppendView):
        return list(value)
    raise TypeError(type(value).__name__)


def class_name(cls: type, path: str) -> str:
    """``module:QualifiedName`` of ``cls``, when that name finds it again.

    Raises:
        SerializationError: For a class defined in a function, or one its module
            does not hold under that name.
    """
    key = f"{cls.__module__}:{cls.__qualname__}"
    module = sys.modules.get(cls.__module__)
    if module is None or static_attribute(module, cls.__qualname__) is not cls:
        raise SerializationError(
            f"{path}: class {key!r} cannot be found by its name (defined in a "
            "function?), so a value of it cannot be read back"
        )
    return key


def _encode(value: Any, path: str, depth: int) -> Any:
    """Encode ``value``, which sits inside ``depth`` containers of the output."""
    kind = type(value)
    if kind in _SCALARS:
        scalar = _scalar(value, path)
        if scalar is not value:  # a tag: one more level
            _room(depth, 1, path)
        return scalar
    if kind is dict:
        return _dict(value, path, depth)
    if kind is list or kind is AppendView:
        _room(depth, 1, path)
        return [_encode(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if kind is tuple:
        _room(depth, 2, path)
        items = [_encode(v, f"{path}[{i}]", depth + 2) for i, v in enumerate(value)]
        return {"$tuple": items}
    if kind is set or kind is frozenset:
        _room(depth, 2, path)
        items = [_encode(v, f"{path}[{short(v)}]", depth + 2) for v in value]
        items.sort(key=_sort_key)
        return {f"${kind.__name__}": items}
    simple = _SIMPLE.get(kind)
    if simple is not None:
        _room(depth, 2, path)
        return simple(value, path)
    return _instance(value, path, depth)


def _instance(value: Any, path: str, depth: int) -> Any:
    """An enum member, a pydantic model or a dataclass instance, by class name."""
    kind = type(value)
    if isinstance(value, Enum):
        _room(depth, 2, path)
        name = class_name(kind, path)
        return {"$enum": [name, _encode(value.value, f"{path}.value", depth + 2)]}
    if isinstance(value, BaseModel):
        _room(depth, 3, path)
        return {"$model": [class_name(kind, path), _model(value, path, depth + 3)]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _room(depth, 3, path)
        fields = _dataclass(value, path, depth + 3)
        return {"$dataclass": [class_name(kind, path), fields]}
    raise SerializationError(
        f"{path or 'value'}: {kind.__name__} is not a value routilux can write "
        "(see 'Payload values' in the guide)"
    )


def _room(depth: int, levels: int, path: str) -> None:
    """Refuse a value whose encoding would nest more than MAX_DEPTH containers."""
    if depth + levels > MAX_DEPTH:
        raise SerializationError(
            f"{path or 'value'}: nested more than {MAX_DEPTH} levels deep "
            "(a tag counts as the levels it writes)"
        )


def _scalar(value: Any, path: str) -> Any:
    kind = type(value)
    if kind is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SerializationError(
                f"{path or 'value'}: text with a lone surrogate"
            ) from None
        return value
    if kind is int:
        return value if value in _INT_RANGE else {"$int": _digits(value)}
    if kind is float and not math.isfinite(value):
        return {"$float": "nan" if math.isnan(value) else str(value)}
    return value


def _digits(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # past sys.get_int_max_str_digits(): hexadecimal has no limit
        return hex(value)


def _dict(value: dict[Any, Any], path: str, depth: int) -> Any:
    if all(type(key) is str for key in value):
        # A one-key dict whose key starts with the mark would read back as a tag.
        escaped = len(value) == 1 and next(iter(value)).startswith(TAG_MARK)
        inner = depth + 2 if escaped else depth + 1
        _room(depth, inner - depth, path)
        out = {
            _scalar(k, path): _encode(v, join(path, k), inner) for k, v in value.items()
        }
        return {"$esc": out} if escaped else out
    _room(depth, 3, path)
    pairs = [
        [
            _encode(k, f"{path}[key {short(k)}]", depth + 3),
            _encode(v, join(path, k), depth + 3),
        ]
        for k, v in value.items()
    ]
    return {"$dict": pairs}


def _model(value: BaseModel, path: str, depth: int) -> dict[str, Any]:
    fields = {name: getattr(value, name) for name in type(value).model_fields}
    fields.update(value.__pydantic_extra__ or {})
    return {k: _encode(v, join(path, k), depth) for k, v in fields.items()}


def _dataclass(value: Any, path: str, depth: int) -> dict[str, Any]:
    # Rebuilt by calling the class with its init fields, as code would.
    return {
        f.name: _encode(getattr(value, f.name), join(path, f.name), depth)
        for f in dataclasses.fields(value)
        if f.init
    }


def _sort_key(item: Any) -> bytes:
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS)


def _datetime(value: datetime, path: str) -> Any:
    zone = value.tzinfo
    if zone is None or isinstance(zone, timezone):
        return {"$datetime": value.isoformat()}
    key = getattr(zone, "key", None)  # a zoneinfo.ZoneInfo
    if isinstance(key, str) and type(zone).__name__ == "ZoneInfo":
        return {"$datetime": [value.isoformat(), key]}
    offset = value.utcoffset()
    fixed = value.replace(tzinfo=timezone(offset)) if offset is not None else value
    return {"$datetime": fixed.isoformat()}  # another zone: its offset then


def _time(value: time, path: str) -> Any:
    if value.tzinfo is not None and not isinstance(value.tzinfo, timezone):
        raise SerializationError(
            f"{path or 'value'}: a time in zone {short(value.tzinfo)} (only fixed "
            "offsets are kept with a time of day)"
        )
    return {"$time": value.isoformat()}


_SIMPLE: dict[type, Any] = {
    Decimal: lambda v, p: {"$decimal": str(v)},
    datetime: _datetime,
    date: lambda v, p: {"$date": v.isoformat()},
    time: _time,
    timedelta: lambda v, p: {"$timedelta": [v.days, v.seconds, v.microseconds]},
    UUID: lambda v, p: {"$uuid": str(v)},
    bytes: lambda v, p: {"$bytes": base64.b64encode(v).decode("ascii")},
}
