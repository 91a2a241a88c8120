"""Routine: the unit of work of a flow.

The contract, in one place:

* Subclass :class:`Routine`, call ``super().__init__()`` first, then declare input
  slots with :meth:`Routine.define_slot` and output events with
  :meth:`Routine.define_event`. A routine that can start a job has a slot named
  ``trigger``.
* Handlers receive what arrives at their slot (see :mod:`routilux.slot` for the four
  call rules) and send results on with :meth:`Routine.emit`. Inside a job, ``emit``
  never runs a handler inline: it queues one activation per connected slot.
* Configuration (:meth:`set_config`) is read-only while jobs run and is what
  serialization keeps. Statistics (:meth:`set_stat`, :meth:`increment_stat`) are
  thread-safe.
* The base keeps its own state in ``_config``, ``_stats`` and ``_rx``, leaving every
  other name free for subclasses.
* Every subclass registers itself on definition, so serialized flows can name it.
"""

from __future__ import annotations

import itertools
import threading
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from . import membership
from .checks import instance_of, optional_positive_int, optional_seconds
from .event import Event
from .exceptions import ConfigurationError, DuplicateNameError, UnknownEventError
from .registry import class_key, register_routine_class
from .resilience import ErrorHandler, ErrorStrategy
from .runtime.context import ExecutionContext, current_frame
from .runtime.sessions import SessionStateAttribute, optional_ttl
from .slot import Slot
from .spec import EventSpec, RoutineSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .flow import Flow
    from .merge import UserMerge
    from .policies import SlotPolicy
    from .resilience.circuit_breaker import CircuitBreaker

__all__ = ["Routine", "spec_of"]

_ids = itertools.count(1)


class _RoutineInternals:
    """The base class's own state, kept apart from subclass attributes."""

    __slots__ = (
        "breaker",
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
        if (
            name != "spec"
            and self.spec is not None
            and getattr(self, name) is not value
        ):
            object.__setattr__(self, "spec", None)
        object.__setattr__(self, name, value)


def spec_of(routine: Routine) -> RoutineSpec | None:
    """``routine.get_spec()``, or None when its ``__init__`` never ran the base's."""
    if not hasattr(routine, "_rx"):
        return None
    return routine.get_spec()


class Routine:
    """Base class of every routine.

    Attributes:
        max_concurrency: Class-level default for :meth:`set_max_concurrency`: at most
            this many activations of the routine run at once (None: unlimited).
    """

    max_concurrency: ClassVar[int | None] = None

    #: The routine's state for the session of the running activation: a dict,
    #: kept per session while the session is in use and dropped after
    #: ``session_ttl`` idle seconds (see :meth:`set_session_ttl` and
    #: :doc:`/guide/sessions`). Raises :class:`SessionError` outside the
    #: routine's handlers or in an activation without a session.
    #:
    #: .. versionadded:: 1.0
    session_state = SessionStateAttribute()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        optional_positive_int(cls.max_concurrency, "max_concurrency")
        register_routine_class(cls)

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}
        self._stats: dict[str, Any] = {}
        self._rx = _RoutineInternals(
            f"{type(self).__name__.lower()}_{next(_ids)}", type(self).max_concurrency
        )

    # -- declaration ---------------------------------------------------------------

    def define_slot(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        merge_strategy: str | UserMerge = "override",
        policy: str | SlotPolicy | None = None,
    ) -> Slot:
        """Declare an input slot.

        ``policy`` says when the handler is called: ``"each"`` arrival (the
        default), ``"all_sources"``, ``Batch(n)``, ``Window(seconds)`` or a policy
        of one's own (see :mod:`routilux.policies`).

        Raises:
            DuplicateNameError: When the routine already has a slot called ``name``.
            UnknownMergeStrategyError: For an unknown merge strategy name.
            ConfigurationError: For an unknown policy, or a merge strategy with a
                policy other than ``each``.
        """
        if name in self._rx.slots:
            raise DuplicateNameError(
                f"{self._describe()} already has a slot named {name!r}"
            )
        slot = Slot(name, self, handler, merge_strategy, policy)
        slot._on_change = self._forget_spec
        self._rx.slots[name] = slot
        self._rx.spec = None
        return slot

    def define_event(
        self, name: str, output_params: Iterable[str] | None = None
    ) -> Event:
        """Declare an output event with the parameter names it carries.

        Raises:
            DuplicateNameError: When the routine already has an event called ``name``.
        """
        if name in self._rx.events:
            raise DuplicateNameError(
                f"{self._describe()} already has an event named {name!r}"
            )
        event = Event(name, self, list(output_params or []))
        self._rx.events[name] = event
        self._rx.spec = None
        return event

    def get_spec(self) -> RoutineSpec:
        """The routine's :class:`~routilux.spec.RoutineSpec`, built once per change.

        .. versionadded:: 1.0
        """
        rx = self._rx
        spec = rx.spec
        if spec is None:
            spec = rx.spec = self._build_spec()
        return spec

    def _forget_spec(self) -> None:
        self._rx.spec = None

    def _build_spec(self) -> RoutineSpec:
        rx = self._rx
        return RoutineSpec(
            class_key=class_key(type(self)),
            default_id=rx.default_id,
            slots=MappingProxyType(
                {name: slot.describe() for name, slot in rx.slots.items()}
            ),
            events=MappingProxyType(
                {
                    name: EventSpec(name, tuple(event.output_params))
                    for name, event in rx.events.items()
                }
            ),
            timeout=rx.timeout,
            max_concurrency=self.get_max_concurrency(),
            error_handler=rx.error_handler,
            circuit_breaker=rx.breaker,
            session_ttl=rx.session_ttl,
        )

    def get_slot(self, name: str) -> Slot | None:
        """The slot called ``name``, or None."""
        return self._rx.slots.get(name)

    def entry_slot(self) -> Slot | None:
        """The slot a job starts through, or None when the routine cannot start one.

        That is the ``trigger`` slot. A routine written the routilux 0.9 way, with
        a ``__call__`` method and no ``trigger`` slot, starts a job through a new
        slot (not declared on the routine) whose handler is ``__call__``, so
        ``flow.execute(id, params)`` calls ``routine(**params)`` as 0.9 did.
        """
        slot = self._rx.slots.get("trigger")
        if slot is None and callable(self):
            slot = Slot("trigger", self, self.__call__)
        return slot

    def get_event(self, name: str) -> Event | None:
        """The event called ``name``, or None."""
        return self._rx.events.get(name)

    # -- emitting ------------------------------------------------------------------

    def emit(self, event_name: str, flow: Flow | None = None, **data: Any) -> None:
        """Send ``data`` out on the event ``event_name``.

        Inside a job this queues one activation per connected slot (after param
        mapping) and returns at once. Outside a job the connections of ``flow``
        deliver in this thread; without ``flow``, those of the one flow that holds
        the routine; in no flow at all, the slots linked by hand
        (``event.connect(slot)``, 0.9's way) receive the data directly.

        Raises:
            UnknownEventError: When the routine has no such event.
            ConfigurationError: Outside a job, without ``flow``, when several flows
                hold the routine (the message names them).
        """
        if event_name not in self._rx.events:
            raise UnknownEventError(
                f"{self._describe()} has no event named {event_name!r}; "
                f"declared: {sorted(self._rx.events)}"
            )
        frame = current_frame()
        if frame is not None:
            routine_id = (
                frame.routine_id if frame.routine is self else frame.job.id_of(self)
            )
            if routine_id is not None:
                frame.job.emit(routine_id, event_name, data, frame.activation)
                return
        if flow is None:
            flows = [wiring.owner for wiring in membership.wirings_of(self)]
            if len(flows) > 1:
                names = sorted(str(getattr(f, "flow_id", f)) for f in flows)
                raise ConfigurationError(
                    f"{self._describe()} emitted {event_name!r} outside any job, and "
                    f"it is in {len(flows)} flows {names}: pass flow= to say which"
                )
            flow = flows[0] if flows else None
        if flow is not None:
            flow._deliver_now(self, event_name, data)
            return
        self._rx.events[event_name].deliver_by_hand(data)

    # -- configuration -------------------------------------------------------------

    def set_config(self, **config: Any) -> None:
        """Set configuration values (kept by serialization)."""
        self._config.update(config)

    def get_config(self, key: str, default: Any = None) -> Any:
        """A configuration value, or ``default``."""
        return self._config.get(key, default)

    def config(self) -> dict[str, Any]:
        """A copy of the configuration."""
        return dict(self._config)

    # -- statistics ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """A copy of the statistics (with ``circuit_breaker`` when set). Thread-safe."""
        with self._rx.stats_lock:
            stats = dict(self._stats)
        if self._rx.breaker is not None:
            stats["circuit_breaker"] = self._rx.breaker.stats()
        return stats

    def set_stat(self, key: str, value: Any) -> None:
        """Set one statistic. Thread-safe."""
        with self._rx.stats_lock:
            self._stats[key] = value

    def get_stat(self, key: str, default: Any = None) -> Any:
        """One statistic, or ``default``. Thread-safe."""
        with self._rx.stats_lock:
            return self._stats.get(key, default)

    def increment_stat(self, key: str, amount: int | float = 1) -> int | float:
        """Add ``amount`` to a statistic atomically; return it. Thread-safe."""
        with self._rx.stats_lock:
            value: int | float = self._stats.get(key, 0) + amount
            self._stats[key] = value
            return value

    def reset_stats(self, keys: Iterable[str] | None = None) -> None:
        """Clear all statistics, or only ``keys``. Thread-safe."""
        with self._rx.stats_lock:
            if keys is None:
                self._stats.clear()
            else:
                for key in keys:
                    self._stats.pop(key, None)

    def _track_operation(self, name: str, success: bool = True, **meta: Any) -> None:
        """Count an operation: ``total_<name>`` and ``successful_/failed_<name>``.

        ``meta`` is appended to ``<name>_history``. Thread-safe.
        """
        outcome = "successful" if success else "failed"
        with self._rx.stats_lock:
            stats = self._stats
            stats[f"total_{name}"] = stats.get(f"total_{name}", 0) + 1
            stats[f"{outcome}_{name}"] = stats.get(f"{outcome}_{name}", 0) + 1
            stats.setdefault(f"{name}_history", []).append({"success": success, **meta})

    @staticmethod
    def _extract_input_data(data: Any = None, **kwargs: Any) -> Any:
        """Pick the input: ``data``, else ``kwargs["data"]``, else the single value.

        With several keyword values the whole dict is returned, with none an empty dict.
        """
        if data is not None:
            return data
        if "data" in kwargs:
            return kwargs["data"]
        if len(kwargs) == 1:
            return next(iter(kwargs.values()))
        return dict(kwargs)

    # -- concurrency and error policy ------------------------------------------------

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

    def get_execution_context(self) -> ExecutionContext | None:
        """``(flow, job_state, routine_id)`` while this routine's handler runs."""
        frame = current_frame()
        if frame is None or frame.routine is not self:
            return None
        return frame.as_context()

    # -- serialization -----------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """Describe the routine by class and configuration (JSON-ready values)."""
        handler = self._rx.error_handler
        return {
            "class": class_key(type(self)),
            "config": dict(self._config),
            "max_concurrency": self._rx.max_concurrency,
            "error_handler": handler.serialize() if handler is not None else None,
        }

    def deserialize(self, data: dict[str, Any]) -> None:
        """Restore configuration, concurrency limit and error handler."""
        self._config = dict(data.get("config") or {})
        self.set_max_concurrency(data.get("max_concurrency"))
        handler_data = data.get("error_handler")
        if handler_data:
            handler = ErrorHandler()
            handler.deserialize(handler_data)
            self._rx.error_handler = handler

    def _describe(self) -> str:
        return f"routine {type(self).__name__} ({self._rx.default_id})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._rx.default_id}>"
