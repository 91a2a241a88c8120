"""Checks of settings given by users, shared by the classes that take them."""

from __future__ import annotations

import math

from .exceptions import ConfigurationError

__all__ = ["optional_seconds"]


def optional_seconds(value: object, what: str) -> float | None:
    """``value`` as seconds when it is None or a finite number > 0.

    Args:
        value: What the user gave.
        what: Names the setting in the error message (``"routine 'x': timeout"``).

    Raises:
        ConfigurationError: For anything else (bools, strings, 0, NaN, infinity).
    """
    if value is None:
        return None
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return float(value)
    raise ConfigurationError(f"{what} must be None or seconds > 0, got {value!r}")
