"""The invoker: one activation in, one :class:`~routilux.hooks.Outcome` out.

Calling a handler is a function from an activation (routine, slot, payload,
attempt) to an Outcome (value or error, attempts made, what it emitted). Retry
(tenacity), the circuit breaker and the handler's execution context wrap the call
here; the ledger only reads the Outcome. Nothing here takes a ledger's lock, and no
exception leaves :func:`invoke` or :func:`invoke_async`: a ``BaseException`` raised
by user code (``SystemExit``, ``KeyboardInterrupt``, a C extension's panic) becomes
the outcome's error like any other.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
from typing import TYPE_CHECKING, Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
)

from ..hooks import Outcome
from ..records import ErrorRecord, RoutineStatus
from ..resilience import ErrorHandler, ErrorStrategy
from .context import enter, leave

if TYPE_CHECKING:
    import threading
    from collections.abc import Awaitable, Callable

    from .activation import Activation

    #: Told of each error about to be retried: ``on_retry(activation, error)``.
    OnRetry = Callable[[Activation, BaseException], None]

__all__ = [
    "Aborted",
    "error_record",
    "invoke",
    "invoke_async",
    "outcome_status",
    "safe_text",
]


class Aborted(Exception):
    """The job halted while a retry waited: no new attempt starts.

    Attributes:
        error: The last error, already recorded when its retry was scheduled.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(safe_text(error))
        self.error = error


def safe_text(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` raises.

    Unpaired surrogates are escaped, so the text can always be stored as UTF-8.
    """
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - the message itself is broken; say so
        text = f"<unprintable {type(exc).__name__} object>"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _safe_traceback(exc: BaseException) -> str:
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:  # noqa: BLE001 - format_exception calls a broken __str__
        text = f"{type(exc).__name__}: {safe_text(exc)}"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_record(
    routine_id: str, slot: str, exc: BaseException, attempt: int
) -> ErrorRecord:
    """The ``JobState.errors`` entry for ``exc``; never raises on odd exceptions."""
    return ErrorRecord.model_construct(
        routine_id=routine_id,
        slot=slot,
        error_type=type(exc).__name__,
        message=safe_text(exc),
        traceback=_safe_traceback(exc),
        attempt=attempt,
        time=time.time(),
    )


def outcome_status(handler: ErrorHandler | None, exc: BaseException) -> RoutineStatus:
    """The routine status an error leaves, by the applicable error handler.

    The handler's :meth:`~routilux.ErrorHandler.final_strategy` says SKIP, else
    its ``handle_error`` says whether the job goes on. A ``BaseException`` that is
    not an ``Exception`` (SystemExit, KeyboardInterrupt) always fails the job: no
    policy continues past it.
    """
    if not isinstance(exc, Exception) or handler is None:
        return RoutineStatus.FAILED
    if handler.final_strategy() is ErrorStrategy.SKIP:
        return RoutineStatus.SKIPPED
    if handler.handle_error(exc):
        return RoutineStatus.ERROR_CONTINUED
    return RoutineStatus.FAILED


def _retrying(handler: ErrorHandler | None) -> bool:
    return handler is not None and handler.strategy is ErrorStrategy.RETRY


def _call_once(activation: Activation) -> Any:
    route = activation.route
    breaker = activation.routine_spec.circuit_breaker
    if breaker is None:
        return route.slot.invoke(activation.payload)
    return breaker.call(route.slot.invoke, activation.payload)


def invoke(
    activation: Activation,
    handler: ErrorHandler | None,
    stop_signal: Callable[[], threading.Event],
    on_retry: OnRetry,
) -> Outcome:
    """Call the activation's handler (with retries as ``handler`` says).

    A handler that returns an awaitable gives an Outcome whose ``value`` is that
    awaitable; the caller then finishes it with :func:`invoke_async`.
    """
    route = activation.route
    token = enter(activation)
    try:
        if activation.routine_spec.circuit_breaker is None and (
            handler is None or handler.strategy is not ErrorStrategy.RETRY
        ):
            value = route.slot.invoke(activation.payload)  # the common case
        else:
            value = _call_retrying(activation, handler, stop_signal(), on_retry)
    except Aborted as aborted:
        activation.aborted = True
        activation.end_session()
        return Outcome(error=aborted.error, attempts=activation.attempts)
    except BaseException as exc:  # noqa: BLE001 - every error becomes the outcome
        activation.end_session()
        return Outcome(error=exc, attempts=activation.attempts)
    finally:
        leave(token)
    # A session lane's state idles from now; a returned awaitable goes on with
    # it (invoke_async ends it).
    if activation.serial_key is not None and not inspect.isawaitable(value):
        activation.end_session()
    return Outcome(value, None, activation.attempts)


def _policy(handler: ErrorHandler, stop_event: threading.Event) -> tuple[Any, Any, Any]:
    def wait(state: RetryCallState) -> float:
        return handler.delay_before(state.attempt_number)

    def retryable(error: BaseException) -> bool:
        return isinstance(error, Exception) and handler.is_retryable(error)

    stop = stop_after_attempt(handler.max_retries + 1) | stop_when_event_set(stop_event)
    return stop, wait, retry_if_exception(retryable)


def _before_sleep(
    activation: Activation, on_retry: OnRetry
) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None:
            on_retry(activation, error)

    return before_sleep


def _call_retrying(
    activation: Activation,
    handler: ErrorHandler | None,
    stop_event: threading.Event,
    on_retry: OnRetry,
) -> Any:
    if handler is None or not _retrying(handler):
        return _call_once(activation)
    stop, wait, retry = _policy(handler, stop_event)
    sleep: Callable[[float], Any] = handler.sleep or stop_event.wait
    retrying = Retrying(
        stop=stop,
        wait=wait,
        retry=retry,
        sleep=lambda seconds: sleep(seconds),
        before_sleep=_before_sleep(activation, on_retry),
        reraise=True,
    )
    attempts = 0
    last: BaseException | None = None
    try:
        for attempt in retrying:
            with attempt:
                if last is not None and (stop_event.is_set() or activation.timed_out):
                    raise Aborted(last)  # halted during the wait
                attempts += 1
                activation.attempts = attempts
                try:
                    return _call_once(activation)
                except Exception as exc:
                    last = exc
                    raise
    finally:
        handler.retry_count = max(attempts - 1, 0)
    return None  # pragma: no cover - tenacity either returns or raises


async def invoke_async(
    activation: Activation,
    first: Awaitable[Any] | None,
    handler: ErrorHandler | None,
    stop_signal: Callable[[], threading.Event],
    on_retry: OnRetry,
) -> Outcome:
    """Run an async handler on the event loop (with retries) to its Outcome.

    ``first`` is the awaitable a first call already returned (a sync function that
    returns a coroutine), or None to call the handler here. Retries back off with
    ``asyncio.sleep``; cancelling the task (timeout, cancel) ends the wait too.
    """
    token = enter(activation)
    try:
        if not _retrying(handler) or handler is None:
            value = await _await_once(activation, first)
        else:
            value = await _await_retrying(
                activation, first, handler, stop_signal(), on_retry
            )
    except Aborted as aborted:
        activation.aborted = True
        return Outcome(error=aborted.error, attempts=activation.attempts)
    except BaseException as exc:  # noqa: BLE001 - CancelledError included
        return Outcome(error=exc, attempts=activation.attempts)
    finally:
        leave(token)
        activation.end_session()
    return Outcome(value=value, attempts=activation.attempts)


async def _await_once(activation: Activation, first: Awaitable[Any] | None) -> Any:
    breaker = activation.activation.routine_spec.circuit_breaker
    if breaker is not None and first is None:
        breaker.before_call()
    try:
        pending = first if first is not None else _start_call(activation)
        value = await pending if inspect.isawaitable(pending) else pending
    except Exception:
        if breaker is not None:
            breaker.record_failure()
        raise
    except BaseException:
        if breaker is not None:
            breaker.release()
        raise
    if breaker is not None:
        breaker.record_success()
    return value


def _start_call(activation: Activation) -> Any:
    """Call the handler here, or start its call where the job's strategy runs it."""
    remote = activation.job.remote
    if remote is None:
        return activation.route.slot.invoke(activation.payload)
    return remote.call(activation)


def _async_sleep(sleep: Callable[[float], Any]) -> Callable[[float], Awaitable[None]]:
    """An injected sleep, called on the event loop (awaited if it is async)."""

    async def wait(seconds: float) -> None:
        pending = sleep(seconds)
        if inspect.isawaitable(pending):
            await pending

    return wait


async def _await_retrying(
    activation: Activation,
    first: Awaitable[Any] | None,
    handler: ErrorHandler,
    stop_event: threading.Event,
    on_retry: OnRetry,
) -> Any:
    stop, wait, retry = _policy(handler, stop_event)
    retrying = AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry,
        sleep=asyncio.sleep if handler.sleep is None else _async_sleep(handler.sleep),
        before_sleep=_before_sleep(activation, on_retry),
        reraise=True,
    )
    attempts = 0
    last: BaseException | None = None
    pending = first
    try:
        async for attempt in retrying:
            with attempt:
                if last is not None and (stop_event.is_set() or activation.timed_out):
                    raise Aborted(last)
                attempts += 1
                activation.attempts = attempts
                try:
                    return await _await_once(activation, pending)
                except Exception as exc:
                    last = exc
                    raise
                finally:
                    pending = None
    finally:
        handler.retry_count = max(attempts - 1, 0)
    return None  # pragma: no cover - tenacity either returns or raises
