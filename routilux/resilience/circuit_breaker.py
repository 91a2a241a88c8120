"""A thread-safe circuit breaker that makes a failing routine fail fast.

The breaker has three states::

    CLOSED --(failure_threshold consecutive failures)--> OPEN
    OPEN --(reset_timeout seconds pass)--> HALF_OPEN
    HALF_OPEN --(success)--> CLOSED
    HALF_OPEN --(failure)--> OPEN (with a fresh reset_timeout)

Every call goes through :meth:`CircuitBreaker.before_call`, which admits it or raises
:class:`~routilux.exceptions.CircuitOpenError`. While CLOSED every call is admitted.
While OPEN every call is rejected. In HALF_OPEN exactly one trial call is admitted;
the others are rejected until that trial is recorded. A rejected call is counted as
``rejected``, never as a failure.

An admitted call ends in exactly one of :meth:`~CircuitBreaker.record_success`,
:meth:`~CircuitBreaker.record_failure` or :meth:`~CircuitBreaker.release`. An
exception the caller does not count as a failure may go unrecorded, but the caller
must then call :meth:`~CircuitBreaker.release`, or a half-open trial stays taken and
the breaker rejects every call. :meth:`~CircuitBreaker.call` does all of this.

The breaker cannot tell calls apart: a success recorded in HALF_OPEN closes it and a
failure reopens it, whichever call reports. A result reported while OPEN (by a call
admitted before the breaker opened) is counted and changes nothing else. OPEN turns
into HALF_OPEN lazily, when the state is next read; the clock is injectable.
"""

from __future__ import annotations

import threading
import time
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from ..checks import non_negative_seconds, positive_int
from ..exceptions import CircuitOpenError, ConfigurationError, SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CircuitBreaker", "CircuitState"]

T = TypeVar("T")


_SETTINGS = ("failure_threshold", "reset_timeout")


class CircuitState(str, Enum):
    """The state of a :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


class CircuitBreaker:
    """Fails calls fast after ``failure_threshold`` consecutive failures.

    All methods are thread-safe. The clock is read outside the lock.

    Args:
        failure_threshold: Consecutive failures that open the breaker (int >= 1).
        reset_timeout: Seconds the breaker stays open before a trial (>= 0 and at
            most :data:`routilux.checks.MAX_SECONDS`, one year).
        clock: Returns the current time in seconds; ``time.monotonic`` by default.
        name: Named in :class:`CircuitOpenError` messages (e.g. the routine id).

    Raises:
        ConfigurationError: For a threshold or timeout out of range or of the wrong
            type (a bool is not a number), naming the setting and the value.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        threshold = positive_int(failure_threshold, "failure_threshold")
        timeout = non_negative_seconds(reset_timeout, "reset_timeout")
        self.failure_threshold = threshold
        self.reset_timeout = timeout
        self.name = name
        self._clock = clock
        # guards _state, _opened_at, _trial_taken and the five counters below
        self._lock = threading.Lock()
        self._reset_locked()

    def _reset_locked(self) -> None:
        self._state = CircuitState.CLOSED
        self._opened_at = 0.0
        self._trial_taken = False
        self._consecutive_failures = 0
        self._failures = 0
        self._successes = 0
        self._rejected = 0
        self._opened_count = 0

    def _current_locked(self, now: float) -> CircuitState:
        """Move OPEN to HALF_OPEN once the timeout has passed; return the state."""
        if (
            self._state is CircuitState.OPEN
            and now >= self._opened_at + self.reset_timeout
        ):
            self._state = CircuitState.HALF_OPEN
            self._trial_taken = False
        return self._state

    def _retry_in_locked(self, now: float) -> float:
        if self._state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.reset_timeout - now)

    @property
    def state(self) -> CircuitState:
        """The current state; OPEN reads as HALF_OPEN once the timeout has passed."""
        now = self._clock()
        with self._lock:
            return self._current_locked(now)

    def before_call(self) -> None:
        """Admit a call, or reject it; in HALF_OPEN, admitting takes the one trial.

        Raises:
            CircuitOpenError: When OPEN, or HALF_OPEN with the trial already taken.
        """
        now = self._clock()
        with self._lock:
            state = self._current_locked(now)
            if state is CircuitState.CLOSED:
                return
            if state is CircuitState.HALF_OPEN and not self._trial_taken:
                self._trial_taken = True
                return
            self._rejected += 1
            retry_in = self._retry_in_locked(now)
        label = f"circuit breaker {self.name!r}" if self.name else "circuit breaker"
        if state is CircuitState.OPEN:
            detail = f"retry in {retry_in:.3f}s"
        else:
            detail = "its one trial call is in progress; retry when it ends"
        raise CircuitOpenError(f"{label} is {state.value}: {detail}")

    def record_success(self) -> None:
        """Count a success; it closes a HALF_OPEN breaker."""
        now = self._clock()
        with self._lock:
            self._successes += 1
            if self._current_locked(now) is not CircuitState.OPEN:
                self._state = CircuitState.CLOSED
                self._trial_taken = False
                self._consecutive_failures = 0

    def record_failure(self) -> None:
        """Count a failure; open at the threshold, reopen from HALF_OPEN."""
        now = self._clock()
        with self._lock:
            self._failures += 1
            self._consecutive_failures += 1
            state = self._current_locked(now)
            if state is CircuitState.HALF_OPEN or (
                state is CircuitState.CLOSED
                and self._consecutive_failures >= self.failure_threshold
            ):
                self._state = CircuitState.OPEN
                self._opened_at = now
                self._trial_taken = False
                self._opened_count += 1

    def release(self) -> None:
        """End an admitted call without judging it; frees a HALF_OPEN trial."""
        with self._lock:
            if self._state is CircuitState.HALF_OPEN:
                self._trial_taken = False

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` through the breaker.

        An ``Exception`` from ``fn`` is recorded as a failure and re-raised; any
        other ``BaseException`` (``KeyboardInterrupt``) releases the call.

        Raises:
            CircuitOpenError: When the call is rejected; ``fn`` is not called.
        """
        self.before_call()
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self.record_failure()
            raise
        except BaseException:
            self.release()
            raise
        self.record_success()
        return result

    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot of the state, counters, settings and ``retry_in``."""
        now = self._clock()
        with self._lock:
            return {
                "state": self._current_locked(now).value,
                "consecutive_failures": self._consecutive_failures,
                "failures": self._failures,
                "successes": self._successes,
                "rejected": self._rejected,
                "opened_count": self._opened_count,
                "failure_threshold": self.failure_threshold,
                "reset_timeout": self.reset_timeout,
                "retry_in": self._retry_in_locked(now),
            }

    def reset(self) -> None:
        """Close the breaker and zero every counter; the settings stay."""
        with self._lock:
            self._reset_locked()

    def serialize(self) -> dict[str, Any]:
        """The settings (not the state) as a JSON-ready dict."""
        return {key: getattr(self, key) for key in _SETTINGS}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> CircuitBreaker:
        """Build a closed breaker from :meth:`serialize` output; missing keys default.

        Raises:
            SerializationError: For a non-dict, an unknown key or a bad value.
        """
        if not isinstance(data, dict) or not set(data) <= set(_SETTINGS):
            raise SerializationError(
                f"circuit breaker: expected an object with keys among {_SETTINGS}, "
                f"got {data!r}"
            )
        try:
            return cls(**data)
        except ConfigurationError as exc:
            raise SerializationError(f"circuit breaker: {exc}") from exc

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.serialize().items())
        return f"CircuitBreaker({settings}, name={self.name!r}, state={self.state})"
