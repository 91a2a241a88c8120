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

import functools
import inspect
import itertools
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from . import membership
from .checks import optional_positive_int
from .event import Event
from .exceptions import ConfigurationError, DuplicateNameError, UnknownEventError
from .registry import class_key, register_routine_class
from .resilience import ErrorHandler
from .routine_settings import RoutineSettings, _RoutineInternals
from .runtime.context import ExecutionContext, current_frame
from .runtime.sessions import SessionStateAttribute
from .slot import Slot
from .spec import EventSpec, RoutineSpec, SlotSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .flow import Flow
    from .merge import UserMerge
    from .policies import SlotPolicy

__all__ = ["Routine", "spec_of"]

_ids = itertools.count(1)


def spec_of(routine: Routine) -> RoutineSpec | None:
    """``routine.get_spec()``, or None when its ``__init__`` never ran the base's."""
    if not hasattr(routine, "_rx"):
        return None
    return routine.get_spec()


class Routine(RoutineSettings):
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
        # The constructor that runs last (its own, or a mixin's before Routine
        # in the MRO) notes what it declared.
        init = cls.__dict__.get("__init__", cls.__init__)
        if inspect.isfunction(init) and not (
            init is Routine.__init__ or getattr(init, "_notes_declared", False)
        ):
            type.__setattr__(cls, "__init__", _noting_declared(init))
        register_routine_class(cls)

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}
        self._stats: dict[str, Any] = {}
        self._rx = _RoutineInternals(
            f"{type(self).__name__.lower()}_{next(_ids)}", type(self).max_concurrency
        )
        if type(self).__init__ is Routine.__init__:  # no subclass __init__ to wait for
            self._note_declared()

    def _note_declared(self) -> None:
        """Remember what the constructor declared.

        Slots and events defined later are the instance's own: a document
        describes them in full to rebuild them.
        """
        rx = self._rx
        rx.declared = frozenset(rx.slots), frozenset(rx.events)

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
        slots = {name: slot.describe() for name, slot in rx.slots.items()}
        events = {
            name: EventSpec(name, tuple(event.output_params))
            for name, event in rx.events.items()
        }
        declared = rx.declared
        own = declared is not None and not (
            declared[0].issuperset(slots) and declared[1].issuperset(events)
        )
        if own:
            assert declared is not None  # for mypy: own implies it
            slots = _on_instance(slots, declared[0])
            events = _on_instance(events, declared[1])
        return RoutineSpec(
            class_key=class_key(type(self)),
            default_id=rx.default_id,
            slots=MappingProxyType(slots),
            events=MappingProxyType(events),
            instance_defined=own,
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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._rx.default_id}>"


# A bare Routine() is rebuilt from a document too: its slots and events are all
# defined on the instance, and the document describes them in full.
register_routine_class(Routine)


_S = TypeVar("_S", SlotSpec, EventSpec)


def _on_instance(specs: dict[str, _S], declared: frozenset[str]) -> dict[str, _S]:
    """``specs``, those not ``declared`` marked as defined on the instance."""
    return {
        name: spec if name in declared else replace(spec, on_instance=True)
        for name, spec in specs.items()
    }


def _noting_declared(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a subclass's ``__init__`` so the outermost one notes what it declared."""

    @functools.wraps(init)
    def __init__(self: Routine, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        # Only the constructor of the object's own class (the outermost) is done
        # declaring; a base's __init__ returning is not the end of construction.
        if type(self).__init__ is __init__ and hasattr(self, "_rx"):
            self._note_declared()

    __init__._notes_declared = True  # type: ignore[attr-defined]
    return __init__
