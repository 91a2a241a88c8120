"""Checks of settings given by users, shared by the classes that take them.

Each check returns the value when it is acceptable (seconds as a float) and raises
:class:`~routilux.exceptions.ConfigurationError` naming the setting and the value
otherwise, before the caller changes anything. Numbers are ints or floats: a bool
(``True`` is an int in Python) or a string is refused, and so are NaN and infinity.

Seconds are at most :data:`MAX_SECONDS`: the runtime waits on them with
``threading`` primitives, and a longer wait raises OverflowError in whichever
thread performs it (a watchdog or a retry wait, long after the setting was made).
"""

from __future__ import annotations

import math
import reprlib
import threading
import time
from typing import NoReturn, TypeGuard

from .exceptions import ConfigurationError

__all__ = [
    "MAX_SECONDS",
    "Deadline",
    "flag",
    "instance_of",
    "is_number",
    "is_seconds",
    "non_negative_int",
    "non_negative_seconds",
    "optional_positive_int",
    "optional_seconds",
    "positive_factor",
    "positive_int",
    "wait_limit",
]

#: The longest time any seconds setting may name: one year, or less where the
#: platform's thread waits cannot wait that long (``threading.TIMEOUT_MAX``).
MAX_SECONDS: float = min(365 * 24 * 3600.0, threading.TIMEOUT_MAX)

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60


def wait_limit(timeout: float | None) -> float | None:
    """A timeout for a wait: None (no limit), else clamped to what threads accept.

    Waits take any number: a negative one does not wait, and one longer than
    threading allows waits as long as it can (never an ``OverflowError``).
    """
    if timeout is None:
        return None
    if timeout != timeout:  # NaN: no wait at all rather than an error mid-wait
        return 0.0
    return max(0.0, min(float(timeout), threading.TIMEOUT_MAX))


class Deadline:
    """The time left of one overall timeout, shared by several waits."""

    __slots__ = ("_end",)

    def __init__(self, timeout: float | None) -> None:
        limit = wait_limit(timeout)
        self._end = None if limit is None else time.monotonic() + limit

    def left(self) -> float | None:
        """Seconds left (0.0 once passed), or None without a limit."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or a float, finite, and not a bool."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def is_seconds(
    value: object, *, zero: bool = False, maximum: float = MAX_SECONDS
) -> TypeGuard[int | float]:
    """A number of seconds > 0 (>= 0 with ``zero``) and at most ``maximum``."""
    if not is_number(value):
        return False
    return (value >= 0 if zero else value > 0) and value <= maximum


def _refuse(what: str, want: str, value: object) -> NoReturn:
    raise ConfigurationError(f"{what} must be {want}, got {_repr.repr(value)}")


def _is_int(value: object, minimum: int) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def optional_seconds(value: object, what: str) -> float | None:
    """``value`` as seconds when it is None or a number > 0 and <= MAX_SECONDS.

    Args:
        value: What the user gave.
        what: Names the setting in the error message (``"routine 'x': timeout"``).

    Raises:
        ConfigurationError: For anything else (bools, strings, 0, NaN, infinity,
            more than :data:`MAX_SECONDS`).
    """
    if value is None:
        return None
    if is_seconds(value):
        return float(value)
    _refuse(what, f"None or seconds > 0 and <= {MAX_SECONDS:.0f}", value)


def non_negative_seconds(
    value: object, what: str, *, maximum: float = MAX_SECONDS
) -> float:
    """``value`` as seconds when it is a number >= 0 and <= ``maximum``.

    Raises:
        ConfigurationError: For anything else (bools, strings, negative numbers,
            NaN, infinity, more than ``maximum``).
    """
    if is_seconds(value, zero=True, maximum=maximum):
        return float(value)
    _refuse(what, f"seconds >= 0 and <= {maximum:.0f}", value)


def positive_factor(value: object, what: str) -> float:
    """``value`` as a float when it is a finite number > 0.

    Raises:
        ConfigurationError: For anything else (bools, strings, 0, negative numbers,
            NaN, infinity).
    """
    if is_number(value) and value > 0:
        return float(value)
    _refuse(what, "a finite number > 0", value)


def non_negative_int(value: object, what: str) -> int:
    """``value`` when it is an int >= 0 (not a bool).

    Raises:
        ConfigurationError: For anything else (bools, floats, strings, negatives).
    """
    if _is_int(value, 0):
        return value
    _refuse(what, "an int >= 0", value)


def positive_int(value: object, what: str) -> int:
    """``value`` when it is an int >= 1 (not a bool).

    Raises:
        ConfigurationError: For anything else (bools, floats, strings, 0).
    """
    if _is_int(value, 1):
        return value
    _refuse(what, "an int >= 1", value)


def optional_positive_int(value: object, what: str) -> int | None:
    """``value`` when it is None or an int >= 1 (not a bool).

    Raises:
        ConfigurationError: For anything else (bools, floats, strings, 0).
    """
    if value is None or _is_int(value, 1):
        return value
    _refuse(what, "None or an int >= 1", value)


def flag(value: object, what: str) -> bool:
    """``value`` when it is True or False.

    Raises:
        ConfigurationError: For anything else (0, 1, strings, None).
    """
    if isinstance(value, bool):
        return value
    _refuse(what, "True or False", value)


def instance_of(
    value: object, kinds: type | tuple[type, ...], what: str, want: str
) -> None:
    """Refuse ``value`` unless it is an instance of ``kinds``.

    Args:
        value: What the user gave.
        kinds: The accepted classes (``type(None)`` among them when None is).
        what: Names the setting or argument in the error message.
        want: Says what is accepted (``"None or an ErrorHandler"``).

    Raises:
        ConfigurationError: Naming ``what``, ``want`` and the type received.
    """
    if not isinstance(value, kinds):
        raise ConfigurationError(
            f"{what} must be {want}, got {type(value).__name__} {_repr.repr(value)}"
        )
