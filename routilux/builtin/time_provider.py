"""TimeProvider: the current time, in the formats a flow asks for."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from typing import TYPE_CHECKING, Any, ClassVar

from ..checks import flag, instance_of
from ..exceptions import ConfigurationError
from ._base import BuiltinRoutine, Check

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TimeProvider"]

_FORMATS = ("iso", "timestamp", "formatted", "custom")
_FORMATTED = "%Y-%m-%d %H:%M:%S"
# English names, whatever the process locale (strftime's %A follows the locale).
_WEEKDAYS = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
_SAMPLE = dt.datetime(2000, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def _check_format(value: Any, what: str) -> str:
    if not isinstance(value, str) or value not in _FORMATS:
        raise ConfigurationError(
            f"{what} must be one of {', '.join(_FORMATS)}, got {value!r}"
        )
    return value


def _check_pattern(value: Any, what: str) -> str:
    instance_of(value, str, what, "a strftime pattern")
    try:
        _SAMPLE.strftime(value)
    except ValueError as exc:
        raise ConfigurationError(f"{what}: not a strftime pattern: {exc}") from None
    return str(value)


def _check_timezone(value: Any, what: str) -> str:
    instance_of(value, str, what, "'local', 'UTC' or an IANA time zone name")
    _zone(value, what)
    return str(value)


def _zone(name: str, what: str) -> dt.tzinfo | None:
    if name == "local":
        return None
    if name.upper() == "UTC":
        return dt.timezone.utc
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"{what}: unknown time zone {name!r} ({exc})"
        ) from None


class TimeProvider(BuiltinRoutine):
    """Emits the current time whenever its ``request`` slot is called.

    Slot ``request`` (what arrives is ignored); event ``output`` with
    ``time_string`` (in the configured format), ``timestamp`` (Unix seconds, a
    float), ``datetime`` (ISO 8601 text) and ``formatted``
    (``YYYY-MM-DD HH:MM:SS``, after the weekday when ``include_weekday``).

    Configuration (``set_config``):

    * ``format`` (``"iso"``): what ``time_string`` holds: ``"iso"`` (ISO 8601),
      ``"timestamp"`` (Unix seconds as text), ``"formatted"`` (as
      ``formatted``) or ``"custom"`` (``custom_format``).
    * ``custom_format`` (``"%Y-%m-%d %H:%M:%S"``): a ``strftime`` pattern.
    * ``include_weekday`` (False): put the English weekday name first in
      ``formatted`` and in a ``"formatted"`` or ``"custom"`` ``time_string``
      (``"Friday, 2024-03-01 09:30:00"``).
    * ``timezone`` (``"local"``): ``"local"``, ``"UTC"`` or an IANA name such as
      ``"Europe/Paris"``.

    The clock is injectable: :meth:`set_clock` takes a function returning Unix
    seconds (like :func:`time.time`) or a ``datetime``. It is not configuration
    and is not saved with the flow.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "format": "iso",
        "custom_format": _FORMATTED,
        "include_weekday": False,
        "timezone": "local",
    }
    checks: ClassVar[dict[str, Check]] = {
        "format": _check_format,
        "custom_format": _check_pattern,
        "include_weekday": flag,
        "timezone": _check_timezone,
    }

    def __init__(self) -> None:
        super().__init__()
        self._clock: Callable[[], float | dt.datetime] = time.time
        self.define_slot("request", handler=self._provide)
        self.define_event(
            "output", ["time_string", "timestamp", "datetime", "formatted"]
        )

    def set_clock(self, clock: Callable[[], float | dt.datetime] | None) -> None:
        """Read the time from ``clock`` (None: :func:`time.time` again).

        Raises:
            ConfigurationError: When ``clock`` is not callable.
        """
        if clock is not None and not callable(clock):
            raise ConfigurationError(
                f"{type(self).__name__}: clock must be callable, got "
                f"{type(clock).__name__}"
            )
        self._clock = clock or time.time

    def now(self) -> dt.datetime:
        """The clock's current time, aware, in the configured time zone."""
        zone = _zone(self._setting("timezone"), "timezone")
        reading = self._clock()
        try:
            if isinstance(reading, dt.datetime):  # a naive one is local time
                return reading.astimezone(zone)
            if isinstance(reading, (int, float)) and not isinstance(reading, bool):
                if zone is None:  # local time, with the offset in force then
                    return dt.datetime.fromtimestamp(reading).astimezone()
                return dt.datetime.fromtimestamp(reading, zone)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(
                f"{type(self).__name__}: the clock returned {reading!r}, which is "
                f"not a time: {exc}"
            ) from exc
        raise ValueError(
            f"{type(self).__name__}: the clock returned {type(reading).__name__}, "
            "not Unix seconds or a datetime"
        )

    def _provide(self, **request: Any) -> None:
        moment = self.now()
        weekday = (
            f"{_WEEKDAYS[moment.weekday()]}, "
            if self._setting("include_weekday")
            else ""
        )
        formatted = weekday + moment.strftime(_FORMATTED)
        chosen = self._setting("format")
        if chosen == "iso":
            text = moment.isoformat()
        elif chosen == "timestamp":
            text = str(moment.timestamp())
        elif chosen == "formatted":
            text = formatted
        else:
            text = weekday + moment.strftime(self._setting("custom_format"))
        self.emit(
            "output",
            time_string=text,
            timestamp=moment.timestamp(),
            datetime=moment.isoformat(),
            formatted=formatted,
        )
