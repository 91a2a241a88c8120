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

from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

from ..exceptions import ConfigurationError

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
        max_retries: Retries after the first call (RETRY only).
        retry_delay: Seconds before the first retry.
        retry_backoff: Factor applied to the delay for each further retry.
        retryable_exceptions: Exception types that are retried; default all.
        is_critical: A critical routine's exhausted retries fail the job.
        sleep: Replaces the wait between retries (tenacity style), for tests. The
            default wait ends at once when the job is cancelled or stopped; an
            injected one is called as it is.

    Attributes:
        retry_count: Retries made by the most recent handled activation.
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
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {max_retries}")
        if retry_delay < 0 or retry_backoff <= 0:
            raise ConfigurationError(
                f"retry_delay must be >= 0 and retry_backoff > 0, got {retry_delay}, "
                f"{retry_backoff}"
            )
        self.strategy = _strategy(strategy)
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.retry_backoff = retry_backoff
        self.retryable_exceptions: tuple[type[BaseException], ...] = tuple(
            retryable_exceptions or (Exception,)
        )
        self.is_critical = is_critical
        self.is_optional = False
        self.retry_count = 0
        self.sleep = sleep

    def delay_before(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return float(self.retry_delay * self.retry_backoff ** (retry - 1))

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

        Exception types are restored only for builtins (no imports happen here);
        others fall back to ``Exception``.
        """
        self.strategy = _strategy(data.get("strategy", self.strategy))
        self.max_retries = int(data.get("max_retries", self.max_retries))
        self.retry_delay = float(data.get("retry_delay", self.retry_delay))
        self.retry_backoff = float(data.get("retry_backoff", self.retry_backoff))
        self.is_critical = bool(data.get("is_critical", self.is_critical))
        self.is_optional = bool(data.get("is_optional", self.is_optional))
        names = data.get("retryable_exceptions") or []
        self.retryable_exceptions = tuple(_builtin_exception(n) for n in names) or (
            Exception,
        )

    def __repr__(self) -> str:
        strategy, retries = self.strategy.value, self.max_retries
        return f"ErrorHandler(strategy={strategy!r}, max_retries={retries})"


def _builtin_exception(qualified: str) -> type[BaseException]:
    import builtins

    module, _, name = qualified.rpartition(".")
    found = getattr(builtins, name, None) if module == "builtins" else None
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return Exception
