"""Reading the tagged JSON encoding (see :mod:`._tags`) back into Python values.

Every tag must be well formed and every class it names allowed by the reader's
:class:`~._resolver.ClassPolicy`; anything else raises
:class:`~routilux.SerializationError` naming the path of the value.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ValidationError

from ..exceptions import SerializationError
from ._resolver import ClassPolicy
from ._tags import TAG_MARK
from ._values import MAX_DEPTH, exact_copy, join, short

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["decode", "decode_keys", "loads", "tagged"]

_MARKED = b'{"' + TAG_MARK.encode()
_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = frozenset({dict, list})
_INT_RANGE = range(-(2**63), 2**64)
_DEFAULT = ClassPolicy()
_FLOATS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def tagged(raw: bytes | str) -> bool:
    """False when the JSON text ``raw`` surely holds no tag (nothing to decode)."""
    data = raw.encode() if isinstance(raw, str) else raw
    return _MARKED in data


def loads(raw: bytes | str, path: str = "", classes: ClassPolicy | None = None) -> Any:
    """Parse tagged JSON text.

    Raises:
        SerializationError: For text that is not JSON, or a value that does not
            decode, naming its path.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"{path or 'value'}: not valid JSON: {exc}") from exc
    if not tagged(raw):
        return data
    return decode(data, path, classes)


def decode(
    data: Any, path: str = "", classes: ClassPolicy | None = None, *, frame: int = 0
) -> Any:
    """A new value from the tagged JSON value ``data``.

    Args:
        data: Plain JSON values (dicts with text keys, lists, text, numbers,
            booleans, null), tags among them.
        path: Where ``data`` sits, for messages.
        classes: Which classes tags may name (default: see ClassPolicy).
        frame: Levels of document around the values, not counted in the
            :data:`MAX_DEPTH` a value may nest.

    Raises:
        SerializationError: Naming the path of a value that is not JSON, a
            malformed or unknown tag, a refused class, or nesting too deep.
    """
    if type(data) in _CONTAINERS:
        copy = exact_copy(data, MAX_DEPTH + frame)
        if copy is not None:  # plain JSON without a tag: nothing to rebuild
            return copy
    return _decode(data, path, -frame, classes or _DEFAULT)


def decode_keys(
    data: dict[str, Any], path: str, classes: ClassPolicy, skip: frozenset[str]
) -> dict[str, Any]:
    """A copy of the object ``data`` with its values decoded, but for ``skip``'s.

    ``data`` must be plain JSON already (read by orjson, or checked): values
    with no tag in them are kept as they are.

    Raises:
        SerializationError: As :func:`decode`.
    """
    out = dict(data)
    for key, value in data.items():
        if key in skip or type(value) not in _CONTAINERS:
            continue  # only an object can be a tag
        if _MARKED in orjson.dumps(value):
            out[key] = _decode(value, join(path, key), 1, classes)
    return out


def _decode(data: Any, path: str, depth: int, classes: ClassPolicy) -> Any:
    kind = type(data)
    if kind in _SCALARS:
        return _scalar(data, path)
    if depth >= MAX_DEPTH:
        raise SerializationError(
            f"{path or 'value'}: nested more than {MAX_DEPTH} levels deep"
        )
    if kind is list:
        return [
            _decode(v, f"{path}[{i}]", depth + 1, classes) for i, v in enumerate(data)
        ]
    if kind is not dict:
        raise SerializationError(
            f"{path or 'value'}: {kind.__name__} is not a JSON value"
        )
    if len(data) == 1:
        key = next(iter(data))
        if type(key) is str and key.startswith(TAG_MARK):
            return _untag(key, data[key], path, depth, classes)
    out = {}
    for key, value in data.items():
        if type(key) is not str:
            raise SerializationError(f"{path or 'value'}: key {short(key)} is not text")
        out[key] = _decode(value, join(path, key), depth + 1, classes)
    return out


def _scalar(value: Any, path: str) -> Any:
    """A JSON scalar as it is; what JSON cannot hold is refused."""
    kind = type(value)
    if kind is float and not math.isfinite(value):
        raise SerializationError(f"{path or 'value'}: {value} is not a JSON number")
    if kind is int and value not in _INT_RANGE:
        raise SerializationError(f"{path or 'value'}: integer outside 64 bits")
    if kind is str and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SerializationError(
                f"{path or 'value'}: text with a lone surrogate"
            ) from None
    return value


def _untag(tag: str, body: Any, path: str, depth: int, classes: ClassPolicy) -> Any:
    read = _READERS.get(tag)
    if read is None:
        raise SerializationError(f"{path or 'value'}: unknown tag {short(tag)}")
    try:
        return read(body, path, depth + 1, classes)
    except SerializationError:
        raise
    except (ValueError, TypeError, OverflowError, KeyError, InvalidOperation) as exc:
        raise SerializationError(
            f"{path or 'value'}: a bad {tag} tag ({short(body)}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _text(body: Any) -> str:
    if type(body) is not str:
        raise TypeError(f"expected text, got {type(body).__name__}")
    return body


def _items(body: Any, path: str, depth: int, classes: ClassPolicy) -> list[Any]:
    if type(body) is not list:
        raise TypeError(f"expected a list, got {type(body).__name__}")
    if depth >= MAX_DEPTH:
        raise SerializationError(
            f"{path or 'value'}: nested more than {MAX_DEPTH} levels deep"
        )
    return [_decode(v, f"{path}[{i}]", depth + 1, classes) for i, v in enumerate(body)]


def _pair(body: Any, size: int = 2) -> list[Any]:
    if type(body) is not list or len(body) != size:
        raise TypeError(f"expected a list of {size}")
    return body


def _esc(body: Any, path: str, depth: int, classes: ClassPolicy) -> Any:
    if type(body) is not dict or len(body) != 1:
        raise TypeError("expected an object with one key")
    ((key, value),) = body.items()
    if type(key) is not str:
        raise TypeError("expected a text key")
    return {key: _decode(value, join(path, key), depth + 1, classes)}


def _int(body: Any, *_: Any) -> int:
    text = _text(body)
    if not text.lstrip("-").replace("0x", "", 1).isalnum():
        raise ValueError("not an integer")
    return int(text, 0)


def _float(body: Any, *_: Any) -> float:
    return _FLOATS[_text(body)]


#: An ISO offset with seconds (``+05:30:15`` or ``+00:00:00.000001``).
_FINE_OFFSET = re.compile(r"([+-])(\d\d):(\d\d):(\d\d)(?:\.(\d{6}))?$")


def _iso(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` (a ``fromisoformat``), keeping an offset's seconds.

    Python before 3.12 reads ``+00:00:00.000001`` as ``+00:00``: an offset with
    seconds is read here, and the rest by ``parse``.
    """

    def read(text: str) -> Any:
        fine = _FINE_OFFSET.search(text)
        if fine is None:
            return parse(text)
        sign, hours, minutes, seconds, micros = fine.groups()
        offset = timedelta(
            hours=int(hours),
            minutes=int(minutes),
            seconds=int(seconds),
            microseconds=int(micros or 0),
        )
        zone = timezone(-offset if sign == "-" else offset)
        return parse(text[: fine.start()]).replace(tzinfo=zone)

    return read


_read_datetime = _iso(datetime.fromisoformat)


def _datetime(body: Any, *_: Any) -> datetime:
    if type(body) is list:
        iso, zone = _pair(body)
        from zoneinfo import ZoneInfo

        moment: datetime = _read_datetime(_text(iso))
        return moment.astimezone(ZoneInfo(_text(zone)))
    found: datetime = _read_datetime(_text(body))
    return found


def _timedelta(body: Any, *_: Any) -> timedelta:
    parts = _pair(body, 3)
    if not all(type(part) is int for part in parts):
        raise TypeError("expected three integers")
    return timedelta(*parts)


def _bytes(body: Any, *_: Any) -> bytes:
    try:
        return base64.b64decode(_text(body), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def _dict(body: Any, path: str, depth: int, classes: ClassPolicy) -> dict[Any, Any]:
    pairs = _items(body, path, depth, classes)
    out = {}
    for index, pair in enumerate(pairs):
        key, value = _pair(pair) if type(pair) is list else _bad_pair(index)
        out[key] = value
    return out


def _bad_pair(index: int) -> list[Any]:
    raise TypeError(f"item {index} is not a [key, value] pair")


def _enum(body: Any, path: str, depth: int, classes: ClassPolicy) -> Enum:
    name, value = _pair(body)
    cls = classes.find(name, path, "an Enum class", _is_enum)
    member = _decode(value, f"{path}.value", depth + 1, classes)
    try:
        return cls(member)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise SerializationError(f"{path}: {exc}") from exc


def _model(body: Any, path: str, depth: int, classes: ClassPolicy) -> BaseModel:
    name, fields = _pair(body)
    cls = classes.find(name, path, "a pydantic model class", _is_model)
    values = _fields(fields, path, depth, classes)
    try:
        return cls.model_validate(values)  # type: ignore[attr-defined,no-any-return]
    except ValidationError as exc:
        raise SerializationError(f"{path}: {name!r} refused its fields: {exc}") from exc


def _dataclass(body: Any, path: str, depth: int, classes: ClassPolicy) -> Any:
    name, fields = _pair(body)
    cls = classes.find(name, path, "a dataclass", _is_dataclass)
    values = _fields(fields, path, depth, classes)
    try:
        return cls(**values)
    except Exception as exc:  # the class's own code: report it, build nothing
        raise SerializationError(
            f"{path}: {name!r} refused its fields: {type(exc).__name__}: {exc}"
        ) from exc


def _fields(fields: Any, path: str, depth: int, classes: ClassPolicy) -> dict[str, Any]:
    if type(fields) is not dict:
        raise TypeError("expected an object of fields")
    return _decode(fields, path, depth + 1, classes)  # type: ignore[no-any-return]


def _is_enum(cls: type) -> bool:
    return issubclass(cls, Enum)


def _is_model(cls: type) -> bool:
    return issubclass(cls, BaseModel)


def _is_dataclass(cls: type) -> bool:
    return dataclasses.is_dataclass(cls)


def _simple(build: Callable[[str], Any]) -> Callable[..., Any]:
    return lambda body, *_: build(_text(body))


_READERS: dict[str, Callable[[Any, str, int, ClassPolicy], Any]] = {
    "$esc": _esc,
    "$int": _int,
    "$float": _float,
    "$decimal": _simple(Decimal),
    "$date": _simple(date.fromisoformat),
    "$datetime": _datetime,
    "$time": _simple(_iso(time.fromisoformat)),
    "$timedelta": _timedelta,
    "$uuid": _simple(UUID),
    "$bytes": _bytes,
    "$tuple": lambda b, p, d, c: tuple(_items(b, p, d, c)),
    "$set": lambda b, p, d, c: set(_items(b, p, d, c)),
    "$frozenset": lambda b, p, d, c: frozenset(_items(b, p, d, c)),
    "$dict": _dict,
    "$enum": _enum,
    "$model": _model,
    "$dataclass": _dataclass,
}
