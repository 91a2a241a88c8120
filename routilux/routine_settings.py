"""Routine settings: concurrency, error policy, timeout, session TTL, circuit breaker.

:class:`RoutineSettings` gives :class:`~routilux.Routine` its ``set_*``/``get_*``
setting methods; :class:`_RoutineInternals` holds the base class's own state (the
settings, slots, events and the spec built from them), apart from subclass
attributes. Every setter checks its value first, so a refused value leaves the
routine as it was.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._spec_drops import count_drop
from .checks import instance_of, optional_positive_int, optional_seconds
from .resilience import ErrorHandler, ErrorStrategy
from .runtime.context import current_frame
from .runtime.sessions import optional_ttl

if TYPE_CHECKING:
    from collections.abc import Callable

    from .event import Event
    from .resilience.circuit_breaker import CircuitBreaker
    from .slot import Slot
    from .spec import RoutineSpec

__all__ = ["RoutineSettings"]


class _RoutineInternals:
    """The base class's own state, kept apart from subclass attributes."""

    __slots__ = (
        "breaker",
        "declared",
        "default_id",
        "error_handler",
        "events",
        "max_concurrency",
        "session_ttl",
        "slots",
        "spec",
        "stats_lock",
        "timeout",
    )

    spec: RoutineSpec | None  # built on demand, dropped on change
    default_id: str
    # The slot and event names the class's constructor declared; None until the
    # outermost __init__ returns. Later ones are defined on the instance.
    declared: tuple[frozenset[str], frozenset[str]] | None
    slots: dict[str, Slot]
    events: dict[str, Event]
    error_handler: ErrorHandler | None
    max_concurrency: int | None
    timeout: float | None
    breaker: CircuitBreaker | None
    session_ttl: float | None
    stats_lock: threading.Lock  # guards _stats: handlers on many threads update it

    def __init__(self, default_id: str, max_concurrency: int | None) -> None:
        # Set without __setattr__: there is no spec to drop yet.
        init = object.__setattr__
        init(self, "spec", None)
        init(self, "default_id", default_id)
        init(self, "declared", None)
        init(self, "slots", {})
        init(self, "events", {})
        init(self, "error_handler", None)
        init(self, "max_concurrency", max_concurrency)
        init(self, "timeout", None)
        init(self, "breaker", None)
        init(self, "session_ttl", None)
        init(self, "stats_lock", threading.Lock())

    def __setattr__(self, name: str, value: Any) -> None:
        # A setting that changes invalidates the spec built from the settings;
        # setting the same object again (loading a default, say) keeps it.
        if name == "spec":
            object.__setattr__(self, name, value)
            if value is None:
                count_drop()  # after the drop: see routilux._spec_drops
            return
        if self.spec is not None and getattr(self, name) is not value:
            object.__setattr__(self, "spec", None)
            count_drop()
        object.__setattr__(self, name, value)


class RoutineSettings:
    """The setting methods of a routine (a base class of :class:`~routilux.Routine`)."""

    _rx: _RoutineInternals  # set by Routine.__init__

    def _describe(self) -> str:
        return f"routine {type(self).__name__} ({self._rx.default_id})"

    def set_max_concurrency(self, limit: int | None) -> None:
        """Let at most ``limit`` activations of this routine run at once (None: any).

        Raises:
            ConfigurationError: When ``limit`` is not None or an int >= 1 (not bool).
        """
        self._rx.max_concurrency = optional_positive_int(limit, "max_concurrency")

    def get_max_concurrency(self) -> int | None:
        """The concurrency limit, or None.

        An instance attribute ``max_concurrency`` set by a subclass wins over
        :meth:`set_max_concurrency`, as a class attribute would.
        """
        own = self.__dict__.get("max_concurrency")
        if own is None:
            return self._rx.max_concurrency
        return optional_positive_int(own, "max_concurrency")

    def set_error_handler(self, handler: ErrorHandler | None) -> None:
        """Use ``handler`` for errors of this routine (None: the flow's applies).

        Raises:
            ConfigurationError: When ``handler`` is not an ErrorHandler or None.
        """
        if handler is not None:  # the message is written only when needed
            what = f"{self._describe()}: error_handler"
            instance_of(handler, ErrorHandler, what, "None or an ErrorHandler")
        self._rx.error_handler = handler

    def get_error_handler(self) -> ErrorHandler | None:
        """The routine's own error handler, or None."""
        return self._rx.error_handler

    def set_as_optional(self, strategy: ErrorStrategy | str | None = None) -> None:
        """Mark the routine tolerant: its errors never fail the job.

        A routine with an error handler of its own keeps its settings (a RETRY
        handler keeps retrying as set): it gets a copy of the handler marked
        optional (see :meth:`ErrorHandler.as_optional`), so a handler shared
        with other routines is left as it is. Without one it gets a new handler.

        Args:
            strategy: The strategy to use; None keeps the handler's own, or is
                CONTINUE for a routine without a handler.

        Raises:
            ConfigurationError: For an unknown strategy; nothing is changed then.
        """
        own = self._rx.error_handler
        if own is None:
            own = ErrorHandler(strategy or ErrorStrategy.CONTINUE)
        self._rx.error_handler = own.as_optional(strategy)

    def set_as_critical(
        self, max_retries: int = 3, retry_delay: float = 1.0, retry_backoff: float = 2.0
    ) -> None:
        """Retry the routine's failures; when retries run out the job fails.

        Raises:
            ConfigurationError: For settings :class:`ErrorHandler` refuses; the
                routine's error handler is unchanged.
        """
        self._rx.error_handler = ErrorHandler(
            strategy=ErrorStrategy.RETRY,
            max_retries=max_retries,
            retry_delay=retry_delay,
            retry_backoff=retry_backoff,
            is_critical=True,
        )

    def set_timeout(self, seconds: float | None) -> None:
        """Limit how long one activation of this routine may run (None: no limit).

        A late activation is recorded as a :class:`RoutineTimeoutError` and handled
        by the routine's error strategy. Python cannot stop the thread: the handler
        runs on, and what it emits after the deadline is discarded.

        Raises:
            ConfigurationError: When ``seconds`` is not None or a number > 0 and at
                most :data:`routilux.checks.MAX_SECONDS` (one year); the timeout is
                unchanged.
        """
        if seconds is not None:  # the message is written only when needed
            seconds = optional_seconds(seconds, f"{self._describe()}: timeout")
        self._rx.timeout = seconds

    def get_timeout(self) -> float | None:
        """The routine's timeout in seconds, or None."""
        return self._rx.timeout

    def set_session_ttl(self, seconds: float | None) -> None:
        """Keep this routine's idle :attr:`session_state` for ``seconds``.

        A session's state is dropped once no handler of the routine has used it
        for ``seconds`` (0: as soon as the last one ends); the next activation of
        that session starts with an empty dict. None: the flow's
        ``session_ttl``.

        Raises:
            ConfigurationError: When ``seconds`` is not None or a number >= 0 (a
                negative one, NaN, infinity or a bool); the TTL is unchanged.

        .. versionadded:: 1.0
        """
        self._rx.session_ttl = optional_ttl(seconds, f"{self._describe()}: session_ttl")

    def get_session_ttl(self) -> float | None:
        """The routine's own session TTL in seconds, or None (the flow's).

        .. versionadded:: 1.0
        """
        return self._rx.session_ttl

    def get_session(self) -> str | int | None:
        """The session (lane) of this routine's running activation, or None.

        .. versionadded:: 1.0
        """
        frame = current_frame()
        if frame is None or frame.routine is not self:
            return None
        return frame.activation.lane

    def set_circuit_breaker(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        *,
        clock: Callable[[], float] | None = None,
    ) -> CircuitBreaker:
        """Fail fast after ``failure_threshold`` consecutive failures.

        While open, activations fail with :class:`CircuitOpenError` (handled by the
        error strategy) until ``reset_timeout`` seconds pass; then one trial call
        is let through: success closes the circuit, failure opens it again.

        Args:
            failure_threshold: Consecutive failures that open the circuit.
            reset_timeout: Seconds the circuit stays open.
            clock: Monotonic time source (injectable for tests).

        Returns:
            The breaker, whose ``stats()`` also appear in the routine's stats.

        Raises:
            ConfigurationError: For settings :class:`CircuitBreaker` refuses; the
                routine's breaker is unchanged.
        """
        from .resilience.circuit_breaker import CircuitBreaker

        options: dict[str, Any] = {"name": self._rx.default_id}
        if clock is not None:
            options["clock"] = clock
        breaker = CircuitBreaker(failure_threshold, reset_timeout, **options)
        self._rx.breaker = breaker
        return breaker

    def get_circuit_breaker(self) -> CircuitBreaker | None:
        """The routine's circuit breaker, or None."""
        return self._rx.breaker
