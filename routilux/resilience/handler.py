"""Error policy: what a job does when a routine's handler raises.

The routine's own :class:`ErrorHandler` applies, else the flow's, else STOP:

* ``STOP``: the job fails; the routine is recorded ``failed`` with the error and the
  job's other pending activations are dropped (and counted).
* ``CONTINUE``: the routine is recorded ``error_continued``; the job goes on.
* ``SKIP``: the routine is recorded ``skipped``; the job goes on.
* ``RETRY``: the handler is called again, up to ``max_retries`` more times, waiting
  ``retry_delay * retry_backoff ** (n - 1)`` before retry ``n``; only
  ``retryable_exceptions`` are retried. When retries run out the error is handled as
  STOP, or as CONTINUE for a routine that is not critical and marked optional.
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
        sleep: Replaces the wait between retries (tenacity style), for tests. The
            default wait ends at once when the job is cancelled or stopped; an
            injected one is called as it is. For an ``async def`` handler it is
            called on the event loop, and awaited when it returns an awaitable
            (so it may be an async function; a blocking one stalls the loop).

    Attributes:
        retry_count: Retries made by the most recent handled activation.

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
    ) -> None:
        # Every setting is checked before any is set.
        checked_strategy = _strategy(strategy)
        retries = non_negative_int(max_retries, "max_retries")
        delay = non_negative_seconds(retry_delay, "retry_delay")
        backoff = positive_factor(retry_backoff, "retry_backoff")
        types = _exception_types(retryable_exceptions)
        critical = flag(is_critical, "is_critical")
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

    def handle_error(
        self, error: BaseException, routine: Any = None, routine_id: str = ""
    ) -> bool:
        """Decide whether the job may go on after ``error``.

        Returns:
            True for CONTINUE and SKIP (and for an optional routine's exhausted
            retries), False when the job must stop.
        """
        if self.strategy in (ErrorStrategy.CONTINUE, ErrorStrategy.SKIP):
            return True
        # An optional routine never fails the job, whatever its strategy.
        return self.is_optional and not self.is_critical

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
        }

    def deserialize(self, data: dict[str, Any]) -> None:
        """Restore settings from :meth:`serialize` output.

        A missing key keeps the current setting, except ``retryable_exceptions``
        (missing: all exceptions). Exception types are restored only for builtins
        (no imports happen here); others fall back to ``Exception``.

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
        try:
            checked = ErrorHandler(
                data.get("strategy", self.strategy),
                data.get("max_retries", self.max_retries),
                data.get("retry_delay", self.retry_delay),
                data.get("retry_backoff", self.retry_backoff),
                tuple(_builtin_exception(n) for n in names) or None,
                data.get("is_critical", self.is_critical),
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

    def __repr__(self) -> str:
        strategy, retries = self.strategy.value, self.max_retries
        return f"ErrorHandler(strategy={strategy!r}, max_retries={retries})"


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
