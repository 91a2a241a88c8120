"""Error policy: what a job does when a routine's handler raises.

The routine's own :class:`ErrorHandler` applies, else the flow's, else STOP:

* ``STOP``: the job fails; the routine is recorded ``failed`` with the error and the
  job's other pending activations are dropped (and counted).
* ``CONTINUE``: the routine is recorded ``error_continued``; the job goes on.
* ``SKIP``: the routine is recorded ``skipped``; the job goes on.
* ``RETRY``: the handler is called again, up to ``max_retries`` more times, waiting
  ``retry_delay * retry_backoff ** (n - 1)`` before retry ``n``; only
  ``retryable_exceptions`` are retried. When retrying is over (the retries ran out,
  or the error is not retryable) the error is handled as ``on_exhausted`` says:
  STOP, CONTINUE or SKIP. Without ``on_exhausted`` it is STOP, or CONTINUE for a
  routine that is not critical and marked optional (``is_optional``).

:meth:`ErrorHandler.final_strategy` names the one of STOP, CONTINUE and SKIP that
an error ending an activation is handled by, whatever the strategy.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..checks import (
    MAX_SECONDS,
    flag,
    non_negative_int,
    non_negative_seconds,
    positive_factor,
)
from ..exceptions import ConfigurationError, SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ErrorHandler", "ErrorStrategy"]


class ErrorStrategy(str, Enum):
    """What to do when a handler raises."""

    STOP = "stop"
    CONTINUE = "continue"
    RETRY = "retry"
    SKIP = "skip"

    def __str__(self) -> str:
        return self.value


#: What ``on_exhausted`` may say: how an error that ends retrying is handled.
_FINAL = (ErrorStrategy.STOP, ErrorStrategy.CONTINUE, ErrorStrategy.SKIP)


def _strategy(value: ErrorStrategy | str) -> ErrorStrategy:
    try:
        return ErrorStrategy(value)
    except ValueError:
        known = ", ".join(s.value for s in ErrorStrategy)
        raise ConfigurationError(
            f"unknown error strategy {value!r}; known: {known}"
        ) from None


class ErrorHandler:
    """An error policy for a flow or a routine.

    Args:
        strategy: An :class:`ErrorStrategy` or its value.
        max_retries: Retries after the first call (RETRY only); an int >= 0.
        retry_delay: Seconds before the first retry: >= 0 and at most
            :data:`routilux.checks.MAX_SECONDS` (one year).
        retry_backoff: Factor applied to the delay for each further retry (a finite
            number > 0); the delay stops growing at ``MAX_SECONDS``.
        retryable_exceptions: Exception classes that are retried; default all.
        is_critical: A critical routine's exhausted retries fail the job (a bool).
            It cannot be combined with an ``on_exhausted`` other than STOP.
        on_exhausted: RETRY only: what an error does once retrying is over (the
            retries ran out, or the error is not retryable): ``"stop"`` fails the
            job, ``"continue"`` records the routine ``error_continued`` and
            ``"skip"`` records it ``skipped`` (an :class:`ErrorStrategy` or its
            value). None (the default): STOP, or CONTINUE for a routine marked
            optional and not critical. Whatever it says, the activation is kept
            as a dead letter (see :meth:`routilux.Flow.dead_letters`).
        sleep: Replaces the wait between retries (tenacity style), for tests. The
            default wait ends at once when the job is cancelled or stopped; an
            injected one is called as it is. For an ``async def`` handler it is
            called on the event loop, and awaited when it returns an awaitable
            (so it may be an async function; a blocking one stalls the loop).

    Attributes:
        retry_count: Retries made by the most recent handled activation.
        is_optional: The routine's errors never fail the job (unless it is
            critical, or ``on_exhausted`` says STOP); set by
            :meth:`routilux.Routine.set_as_optional`.
        on_exhausted: The ``on_exhausted`` setting (an :class:`ErrorStrategy`),
            or None.

    Raises:
        ConfigurationError: For any setting out of range or of the wrong type
            (bools and strings are not numbers; NaN and infinity are refused),
            naming the setting and the value.
    """

    def __init__(
        self,
        strategy: ErrorStrategy | str = ErrorStrategy.STOP,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        retry_backoff: float = 2.0,
        retryable_exceptions: tuple[type[BaseException], ...] | None = None,
        is_critical: bool = False,
        sleep: Callable[[float], Any] | None = None,
        on_exhausted: ErrorStrategy | str | None = None,
    ) -> None:
        # Every setting is checked before any is set.
        checked_strategy = _strategy(strategy)
        retries = non_negative_int(max_retries, "max_retries")
        delay = non_negative_seconds(retry_delay, "retry_delay")
        backoff = positive_factor(retry_backoff, "retry_backoff")
        types = _exception_types(retryable_exceptions)
        critical = flag(is_critical, "is_critical")
        exhausted = _on_exhausted(on_exhausted, checked_strategy, critical)
        if sleep is not None and not callable(sleep):
            raise ConfigurationError(
                f"sleep must be None or a callable, got {type(sleep).__name__}"
            )
        self.strategy = checked_strategy
        self.max_retries = retries
        self.retry_delay = delay
        self.retry_backoff = backoff
        self.retryable_exceptions: tuple[type[BaseException], ...] = types
        self.is_critical = critical
        self.is_optional = False
        self.on_exhausted = exhausted
        self.retry_count = 0
        self.sleep = sleep

    def delay_before(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        The wait grows by ``retry_backoff`` per retry up to :data:`MAX_SECONDS`, the
        longest wait threads can make.
        """
        if self.retry_delay == 0:
            return 0.0
        try:
            delay = self.retry_delay * self.retry_backoff ** (retry - 1)
        except OverflowError:
            delay = math.inf
        return min(float(delay), MAX_SECONDS)

    def is_retryable(self, error: BaseException) -> bool:
        """True when RETRY applies and ``error`` is of a retryable type."""
        return self.strategy is ErrorStrategy.RETRY and isinstance(
            error, self.retryable_exceptions
        )

    def final_strategy(self) -> ErrorStrategy:
        """How an error that ends an activation is handled: STOP, CONTINUE or SKIP.

        CONTINUE and SKIP are themselves. RETRY gives ``on_exhausted`` when it is
        set. Otherwise (STOP, or RETRY without ``on_exhausted``) an optional
        routine that is not critical continues, and any other stops.

        .. versionadded:: 1.0
        """
        strategy = self.strategy
        if strategy in (ErrorStrategy.CONTINUE, ErrorStrategy.SKIP):
            return strategy
        if strategy is ErrorStrategy.RETRY and self.on_exhausted is not None:
            return ErrorStrategy(self.on_exhausted)
        if self.is_optional and not self.is_critical:
            return ErrorStrategy.CONTINUE
        return ErrorStrategy.STOP

    def handle_error(
        self, error: BaseException, routine: Any = None, routine_id: str = ""
    ) -> bool:
        """Decide whether the job may go on after ``error``.

        Returns:
            False when :meth:`final_strategy` is STOP (the job must stop), True
            otherwise.
        """
        return self.final_strategy() is not ErrorStrategy.STOP

    def as_optional(self, strategy: ErrorStrategy | str | None = None) -> ErrorHandler:
        """A copy of this handler marked optional: its errors never fail the job.

        Every setting is kept (retries, delays, retryable exceptions, the
        injected ``sleep``), except what contradicts being optional: the copy is
        not critical, and an ``on_exhausted`` of STOP is dropped (it then
        continues). This handler is left as it is.

        Args:
            strategy: Another strategy for the copy (None: the same one). An
                ``on_exhausted`` is kept only while the strategy stays RETRY.

        Raises:
            ConfigurationError: For an unknown strategy.

        .. versionadded:: 1.0
        """
        checked = self.strategy if strategy is None else _strategy(strategy)
        exhausted = self.on_exhausted
        if checked is not ErrorStrategy.RETRY or exhausted is ErrorStrategy.STOP:
            exhausted = None
        copy = ErrorHandler(
            checked,
            self.max_retries,
            self.retry_delay,
            self.retry_backoff,
            self.retryable_exceptions,
            False,
            self.sleep,
            exhausted,
        )
        copy.is_optional = True
        return copy

    def reset(self) -> None:
        """Forget the retry count."""
        self.retry_count = 0

    def serialize(self) -> dict[str, Any]:
        """A JSON-ready description; exception types by qualified name."""
        return {
            "strategy": self.strategy.value,
            "max_retries": self.max_retries,
            "retry_delay": self.retry_delay,
            "retry_backoff": self.retry_backoff,
            "retryable_exceptions": [
                f"{t.__module__}.{t.__qualname__}" for t in self.retryable_exceptions
            ],
            "is_critical": self.is_critical,
            "is_optional": self.is_optional,
            # Written only when set, so documents of handlers without it stay
            # as they were.
            **(
                {"on_exhausted": ErrorStrategy(self.on_exhausted).value}
                if self.on_exhausted is not None
                else {}
            ),
        }

    def deserialize(self, data: dict[str, Any]) -> None:
        """Restore settings from :meth:`serialize` output.

        A missing key keeps the current setting, except ``retryable_exceptions``
        (missing: all exceptions) and ``on_exhausted`` (missing from data that
        names a strategy: None, as :meth:`serialize` leaves it out then).
        Exception types are restored only for builtins (no imports happen
        here); others fall back to ``Exception``.

        Raises:
            SerializationError: For a non-dict, or a value the constructor would
                refuse, naming the field and the value; the handler is left
                unchanged.
        """
        if not isinstance(data, dict):
            raise SerializationError(
                f"error handler: expected an object, got {type(data).__name__}"
            )
        names = data.get("retryable_exceptions") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SerializationError(
                "error handler: retryable_exceptions must be a list of exception "
                f"type names, got {names!r:.80}"
            )
        exhausted = None if "strategy" in data else self.on_exhausted
        try:
            checked = ErrorHandler(
                data.get("strategy", self.strategy),
                data.get("max_retries", self.max_retries),
                data.get("retry_delay", self.retry_delay),
                data.get("retry_backoff", self.retry_backoff),
                tuple(_builtin_exception(n) for n in names) or None,
                data.get("is_critical", self.is_critical),
                on_exhausted=data.get("on_exhausted", exhausted),
            )
            is_optional = flag(data.get("is_optional", self.is_optional), "is_optional")
        except ConfigurationError as exc:
            raise SerializationError(f"error handler: {exc}") from exc
        self.strategy = checked.strategy
        self.max_retries = checked.max_retries
        self.retry_delay = checked.retry_delay
        self.retry_backoff = checked.retry_backoff
        self.retryable_exceptions = checked.retryable_exceptions
        self.is_critical = checked.is_critical
        self.is_optional = is_optional
        self.on_exhausted = checked.on_exhausted

    def __repr__(self) -> str:
        strategy, retries = self.strategy.value, self.max_retries
        exhausted = self.on_exhausted
        tail = "" if exhausted is None else f", on_exhausted={str(exhausted)!r}"
        return f"ErrorHandler(strategy={strategy!r}, max_retries={retries}{tail})"


def _on_exhausted(
    value: ErrorStrategy | str | None, strategy: ErrorStrategy, critical: bool
) -> ErrorStrategy | None:
    """The checked ``on_exhausted`` setting (None stays None)."""
    if value is None:
        return None
    known = ", ".join(repr(s.value) for s in _FINAL)
    try:
        checked = ErrorStrategy(value)
    except ValueError:
        checked = None
    if checked not in _FINAL:
        raise ConfigurationError(
            f"on_exhausted must be None or one of {known}, got {value!r:.80}"
        )
    assert checked is not None
    if strategy is not ErrorStrategy.RETRY:
        raise ConfigurationError(
            f"on_exhausted={checked.value!r} applies to the 'retry' strategy only, "
            f"not {strategy.value!r}; leave it out or use strategy='retry'"
        )
    if critical and checked is not ErrorStrategy.STOP:
        raise ConfigurationError(
            f"on_exhausted={checked.value!r} contradicts is_critical=True (a "
            "critical routine's exhausted retries fail the job); drop one of them"
        )
    return checked


def _exception_types(
    types: tuple[type[BaseException], ...] | None,
) -> tuple[type[BaseException], ...]:
    """``types`` as a tuple of exception classes; None or empty means ``Exception``."""
    if types is None:
        return (Exception,)
    if not isinstance(types, (tuple, list, set, frozenset)) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in types
    ):
        raise ConfigurationError(
            "retryable_exceptions must be None or a tuple of exception classes, "
            f"got {types!r:.80}"
        )
    return tuple(types) or (Exception,)


def _builtin_exception(qualified: str) -> type[BaseException]:
    import builtins

    module, _, name = qualified.rpartition(".")
    found = getattr(builtins, name, None) if module == "builtins" else None
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return Exception
