"""What happens around a handler call: retries, circuit breakers, error records.

Kept apart from the scheduler so that its bookkeeping stays readable; nothing here
takes the scheduler's lock.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    stop_when_event_set,
)

from ..records import ErrorRecord, RoutineStatus
from ..resilience import ErrorHandler, ErrorStrategy

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from .activation import Activation

__all__ = ["RetryAbortedError", "call_handler", "error_record", "outcome_of"]


def _invoke_once(activation: Activation) -> None:
    route = activation.route
    breaker = route.routine._rx.breaker
    if breaker is None:
        route.slot.invoke(activation.payload)
        return
    breaker.call(route.slot.invoke, activation.payload)  # CircuitOpenError when open


class RetryAbortedError(Exception):
    """Internal: the job halted while a retry waited; ``error`` is the last one."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def call_handler(
    activation: Activation,
    handler: ErrorHandler | None,
    stop_event: threading.Event,
    on_retry: Callable[[BaseException], None],
) -> None:
    """Call the activation's handler, retrying as ``handler`` says.

    Retry waits end as soon as ``stop_event`` is set (cancel, shutdown, stop), and
    tenacity then stops retrying. ``on_retry`` receives each error that is about to
    be retried; the last error, when the call did not succeed, is raised.
    """
    if handler is None or handler.strategy is not ErrorStrategy.RETRY:
        _invoke_once(activation)
        return

    def wait(state: RetryCallState) -> float:
        return handler.delay_before(state.attempt_number)

    sleep: Callable[[float], Any] = handler.sleep or stop_event.wait

    def pause(seconds: float) -> None:
        sleep(seconds)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None:
            on_retry(error)

    retrying = Retrying(
        stop=stop_after_attempt(handler.max_retries + 1)
        | stop_when_event_set(stop_event),
        wait=wait,
        retry=retry_if_exception_type(handler.retryable_exceptions)
        & retry_if_not_exception_type(RetryAbortedError),
        sleep=pause,
        before_sleep=before_sleep,
        reraise=True,
    )
    attempts = 0
    last_error: BaseException | None = None
    try:
        for attempt in retrying:
            with attempt:
                if last_error is not None and stop_event.is_set():
                    # Halted during the wait: no new attempt starts. The last
                    # error was recorded when the retry was scheduled.
                    raise RetryAbortedError(last_error)
                attempts += 1
                activation.attempts = attempts
                try:
                    _invoke_once(activation)
                except Exception as exc:
                    last_error = exc
                    raise
    finally:
        handler.retry_count = attempts - 1


def outcome_of(handler: ErrorHandler | None, exc: BaseException) -> RoutineStatus:
    """The routine status an error leaves, by the applicable error handler."""
    if handler is None:
        return RoutineStatus.FAILED
    if handler.strategy is ErrorStrategy.SKIP:
        return RoutineStatus.SKIPPED
    if handler.handle_error(exc):
        return RoutineStatus.ERROR_CONTINUED
    return RoutineStatus.FAILED


def error_record(activation: Activation, exc: BaseException) -> ErrorRecord:
    """The JobState.errors entry for ``exc`` raised by ``activation``'s handler."""
    return ErrorRecord(
        routine_id=activation.route.routine_id,
        slot=activation.route.slot.name,
        error_type=type(exc).__name__,
        message=str(exc),
        traceback="".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)
        ),
        attempt=activation.attempts,
        time=time.time(),
    )
