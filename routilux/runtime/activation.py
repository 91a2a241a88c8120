"""Activations and the routing table they follow.

The flow compiles its connections into a :class:`RouteTable` once per change; each
job keeps the table it started with, so rewiring a flow never disturbs running jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..connection import apply_mapping

if TYPE_CHECKING:
    from ..resilience import ErrorHandler
    from ..routine import Routine
    from ..slot import Slot
    from .scheduler import JobRun

__all__ = ["Activation", "Route", "RouteTable"]


class Route:
    """Where one connection delivers: a slot of a routine, with a param mapping."""

    __slots__ = (
        "_mapping",
        "_targets",
        "merger",
        "routine",
        "routine_id",
        "rx",
        "slot",
    )

    def __init__(
        self,
        routine_id: str,
        routine: Routine,
        slot: Slot,
        mapping: dict[str, str] | None,
    ) -> None:
        self.routine_id = routine_id
        self.routine = routine
        self.rx = routine._rx  # the routine's settings, read on the hot path
        self.slot = slot
        self.merger = slot.merger
        self._mapping = dict(mapping) if mapping else None
        self._targets = (
            frozenset(self._mapping.values()) if self._mapping else frozenset()
        )

    def map(self, data: dict[str, Any]) -> dict[str, Any]:
        """A new dict: ``data`` after the param mapping."""
        if self._mapping is None:
            return dict(data)
        return apply_mapping(data, self._mapping, self._targets)

    def error_handler(self) -> ErrorHandler | None:
        """The routine's own error handler, read when needed (it may change)."""
        return self.routine.get_error_handler()


class RouteTable:
    """A flow's connections compiled for the hot path.

    Attributes:
        by_event: ``(routine_id, event_name)`` -> routes, in connection order.
        targets: ``(routine_id, event_name)`` -> target routine ids.
        ids: ``id(routine)`` -> routine id in the flow.
    """

    __slots__ = ("_routines", "by_event", "ids", "targets")

    def __init__(
        self,
        routines: dict[str, Routine],
        links: list[tuple[str, str, str, str, dict[str, str] | None]],
    ) -> None:
        self._routines = dict(routines)
        self.ids = {id(routine): rid for rid, routine in routines.items()}
        grouped: dict[tuple[str, str], list[Route]] = {}
        for source_id, event_name, target_id, slot_name, mapping in links:
            target = routines[target_id]
            slot = target.get_slot(slot_name)
            if slot is None:  # the flow checks this on connect; keep the table safe
                continue
            grouped.setdefault((source_id, event_name), []).append(
                Route(target_id, target, slot, mapping)
            )
        self.by_event = {key: tuple(routes) for key, routes in grouped.items()}
        self.targets = {
            key: tuple(route.routine_id for route in routes)
            for key, routes in self.by_event.items()
        }

    def route_to(self, routine_id: str, slot_name: str) -> Route | None:
        """A route straight into a routine's slot; None when either is unknown."""
        routine = self._routines.get(routine_id)
        slot = routine.get_slot(slot_name) if routine is not None else None
        if routine is None or slot is None:
            return None
        return Route(routine_id, routine, slot, None)

    def entry_route(self, routine_id: str) -> Route:
        """The route into ``routine_id``'s ``trigger`` slot (checked by the flow)."""
        routine = self._routines[routine_id]
        slot = routine.get_slot("trigger")
        assert slot is not None
        return Route(routine_id, routine, slot, None)


class Activation:
    """One handler call to make: a route and the merged payload, in a job.

    Implements the strategies' Task protocol.
    """

    __slots__ = (
        "attempts",
        "children",
        "job",
        "key",
        "limit",
        "limit_key",
        "params",
        "payload",
        "route",
        "settled",
        "timed_out",
        "watched",
    )

    def __init__(
        self,
        job: JobRun,
        route: Route,
        payload: dict[str, Any],
        params: dict[str, Any] | None = None,
    ) -> None:
        self.job = job
        self.route = route
        self.payload = payload
        # What arrived, before merging: the tracker keeps this, not the merged
        # payload, whose accumulated lists would make its memory grow quadratically.
        self.params = payload if params is None else params
        self.attempts = 1
        self.limit_key = route.routine_id
        self.limit = route.rx.max_concurrency
        self.watched = False  # a watchdog enforces a timeout on it
        self.settled = False
        self.timed_out = False
        self.key: str | None = None  # its id in a checkpoint store
        self.children: list[Activation] = []  # emitted, not yet checkpointed

    def run(self) -> None:
        """Run the handler within the job (never raises)."""
        self.job.execute(self)

    def drop(self, reason: str) -> None:
        """Account for the activation without running it."""
        self.job.drop(self, reason)

    def claim(self) -> bool:
        """Settle the activation once: True for the first caller only.

        The handler's return and the watchdog's timeout race for it; activations
        without a timeout have no race and skip the lock.
        """
        if not self.watched:
            return True
        with self.job._lock:
            if self.settled:
                return False
            self.settled = True
            return True

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for ``JobState.pending_tasks``."""
        return {
            "routine_id": self.route.routine_id,
            "slot": self.route.slot.name,
            "payload": self.payload,
            "params": self.params,
        }

    def checkpoint(self) -> dict[str, Any]:
        """The pending-activation entry a checkpoint store keeps."""
        return {
            "id": self.key,
            "routine_id": self.route.routine_id,
            "slot": self.route.slot.name,
            "payload": self.payload,
        }

    def __repr__(self) -> str:
        return f"Activation({self.route.routine_id}.{self.route.slot.name})"
