"""RoutineSpec: a frozen description of a routine, as the rest of routilux reads it.

A routine builds its :class:`RoutineSpec` when first asked (:meth:`Routine.spec`)
and keeps it until one of its settings changes (a slot or event declared, a
handler, merge strategy, timeout, concurrency limit, error handler or circuit
breaker set), when the next call builds a new one. The runtime, serialization,
validation and graph export read routines only through their specs and public
methods, never through a routine's private attributes.

.. versionadded:: 1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .resilience import CircuitBreaker, ErrorHandler
    from .slot import HandlerBinding

__all__ = ["EventSpec", "RoutineSpec", "SlotSpec"]


@dataclass(frozen=True)
class SlotSpec:
    """One input slot of a routine.

    Attributes:
        name: The slot's name.
        binding: How its handler is called (see :class:`HandlerBinding`).
        handler_name: The handler's ``__name__`` (None without a handler).
        handler_label: The handler's qualified name, for messages.
        merge_strategy: The merge strategy's registered name, or None for an
            anonymous callable.
        is_async: True when the handler is ``async def``.
        policy: The name of the slot's policy (``"each"``, ``"all_sources"``,
            ``"batch"``, ``"window"`` or one's own).
        on_instance: True when the slot was defined on the routine after its
            constructor returned (a bare ``Routine()``'s slots, say), so a flow
            document must describe it in full.
    """

    name: str
    binding: HandlerBinding
    handler_name: str | None
    handler_label: str
    merge_strategy: str | None
    is_async: bool
    policy: str = "each"
    on_instance: bool = False


@dataclass(frozen=True)
class EventSpec:
    """One output event of a routine.

    Attributes:
        name: The event's name.
        output_params: The parameter names it documents.
        on_instance: True when the event was defined on the routine after its
            constructor returned.
    """

    name: str
    output_params: tuple[str, ...]
    on_instance: bool = False


@dataclass(frozen=True)
class RoutineSpec:
    """A routine as a flow sees it.

    Attributes:
        class_key: ``module:QualifiedName`` of the routine's class.
        default_id: The id the routine gets when added without one.
        slots: Slot name -> :class:`SlotSpec`, in declaration order.
        events: Event name -> :class:`EventSpec`, in declaration order.
        timeout: Seconds one activation may run (None: no limit of its own).
        max_concurrency: Activations that may run at once (None: any).
        error_handler: The routine's own error policy, or None (the flow's).
        circuit_breaker: Its circuit breaker, or None.
        session_ttl: Seconds its idle session states are kept (None: the flow's
            setting).
        instance_defined: True when some slot or event is ``on_instance``.
    """

    class_key: str
    default_id: str
    slots: Mapping[str, SlotSpec]
    events: Mapping[str, EventSpec]
    timeout: float | None
    max_concurrency: int | None
    error_handler: ErrorHandler | None
    circuit_breaker: CircuitBreaker | None
    session_ttl: float | None = None
    instance_defined: bool = False
