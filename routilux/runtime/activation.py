"""Activations and the routing table they follow.

The flow compiles its connections into a :class:`RouteTable` once per change; each
job keeps the table it started with, so rewiring a flow never disturbs running jobs.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from ..connection import apply_mapping
from ..exceptions import SessionError
from ..policies import EACH
from .context import ExecutionContext
from .sessions import lane_of

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ..routine import Routine
    from ..slot import Slot
    from .held import Held
    from .ledger import JobLedger
    from .sessions import Lane, SessionState
    from .stream import Stream

__all__ = ["Activation", "ActivationState", "Route", "RouteTable"]


class Route:
    """Where one connection delivers: a slot of a routine, with a param mapping."""

    __slots__ = (
        "_mapping",
        "_targets",
        "lane_key",
        "merger",
        "number",
        "policy",
        "routine",
        "routine_id",
        "slot",
        "sources",
    )

    def __init__(
        self,
        routine_id: str,
        routine: Routine,
        slot: Slot,
        mapping: dict[str, str] | None,
        lane_key: str | None = None,
    ) -> None:
        self.routine_id = routine_id
        #: The payload key whose value is an activation's lane (None: the job's).
        self.lane_key = lane_key
        self.routine = routine
        self.slot = slot
        self.merger = slot.merger
        #: The slot's policy when it is not ``each`` (its arrivals wait in an inbox).
        self.policy = None if slot.policy is EACH else slot.policy
        #: The routines connected to the slot (set by the route table).
        self.sources: tuple[str, ...] = ()
        #: Its place in the table's ``numbered`` (set by the table; -1: none).
        self.number = -1
        self._mapping = dict(mapping) if mapping else None
        self._targets = (
            frozenset(self._mapping.values()) if self._mapping else frozenset()
        )

    @property
    def mapped(self) -> bool:
        """True when the connection renames params (else a payload is the emit's)."""
        return self._mapping is not None

    def map(self, data: dict[str, Any]) -> dict[str, Any]:
        """A new dict: ``data`` after the param mapping."""
        if self._mapping is None:
            return dict(data)
        return apply_mapping(data, self._mapping, self._targets)


class RouteTable:
    """A flow's connections compiled for the hot path.

    Attributes:
        by_event: ``(routine_id, event_name)`` -> routes, in connection order.
        targets: ``(routine_id, event_name)`` -> target routine ids.
        ids: ``id(routine)`` -> routine id in the flow.
        numbered: Every route of ``by_event``, at the index its ``number`` says.
    """

    __slots__ = (
        "_entries",
        "_routines",
        "by_event",
        "ids",
        "joined",
        "laned",
        "numbered",
        "sinks",
        "targets",
    )

    def __init__(
        self,
        routines: dict[str, Routine],
        links: list[tuple[str, str, str, str, dict[str, str] | None, str | None]],
    ) -> None:
        self._routines = dict(routines)
        self._entries: dict[str, Route] = {}  # entry routes, made on first use
        self.ids = {id(routine): rid for rid, routine in routines.items()}
        grouped: dict[tuple[str, str], list[Route]] = {}
        for source_id, event_name, target_id, slot_name, mapping, lane in links:
            target = routines[target_id]
            slot = target.get_slot(slot_name)
            if slot is None:  # the flow checks this on connect; keep the table safe
                continue
            grouped.setdefault((source_id, event_name), []).append(
                Route(target_id, target, slot, mapping, lane)
            )
        self.by_event = {key: tuple(routes) for key, routes in grouped.items()}
        #: Every connection's route, by its ``number`` (what a spec names).
        self.numbered = tuple(
            route for routes in self.by_event.values() for route in routes
        )
        for number, route in enumerate(self.numbered):
            route.number = number
        feeders: dict[tuple[str, str], list[str]] = {}
        for (source_id, _), routes in self.by_event.items():
            for route in routes:
                fed = feeders.setdefault((route.routine_id, route.slot.name), [])
                if source_id not in fed:
                    fed.append(source_id)
        for routes in self.by_event.values():
            for route in routes:
                route.sources = tuple(feeders[(route.routine_id, route.slot.name)])
        #: Events with a route into a slot whose policy is not ``each``.
        self.joined = frozenset(
            key
            for key, routes in self.by_event.items()
            if any(route.policy is not None for route in routes)
        )
        #: Events with a route whose lane comes from the payload (``lane_key``).
        self.laned = frozenset(
            key
            for key, routes in self.by_event.items()
            if any(route.lane_key is not None for route in routes)
        )
        self.targets = {
            key: tuple(route.routine_id for route in routes)
            for key, routes in self.by_event.items()
        }
        sources = {source_id for source_id, *_ in links}
        #: Routines with no outgoing connection: what they return is the result.
        self.sinks = frozenset(routines) - sources

    def check_lanes(self, key: tuple[str, str], data: dict[str, Any]) -> None:
        """Check the lanes an emit on a laned event names, before any is made.

        Raises:
            ConfigurationError: For the first connection whose lane key the data
                lacks or holds a value of the wrong type.
        """
        for route in self.by_event[key]:
            if route.lane_key is not None:
                lane_of(route.lane_key, route, route.map(data))

    def route_to(self, routine_id: str, slot_name: str) -> Route | None:
        """A route straight into a routine's slot; None when either is unknown.

        ``"trigger"`` of a routine that starts jobs without declaring it (a 0.9
        routine with ``__call__``) is its entry route.
        """
        routine = self._routines.get(routine_id)
        if routine is None:
            return None
        slot = routine.get_slot(slot_name)
        if slot is None:
            if slot_name == "trigger" and routine.entry_slot() is not None:
                return self.entry_route(routine_id)
            return None
        return Route(routine_id, routine, slot, None)

    def entry_route(self, routine_id: str) -> Route:
        """The route into ``routine_id``'s ``trigger`` slot (checked by the flow)."""
        route = self._entries.get(routine_id)
        if route is None:
            routine = self._routines[routine_id]
            slot = routine.entry_slot()
            assert slot is not None
            # Routes hold nothing of a job: one per table serves every job.
            route = self._entries.setdefault(
                routine_id, Route(routine_id, routine, slot, None)
            )
        return route


class ActivationState(str, Enum):
    """Where an activation is in its life; the ledger alone moves it.

    ``queued -> running -> settled``, or ``queued -> parked -> queued`` (a pause),
    or ``queued/parked -> dropped`` (a halt).
    """

    QUEUED = "queued"
    RUNNING = "running"
    SETTLED = "settled"
    PARKED = "parked"
    DROPPED = "dropped"

    def __str__(self) -> str:
        return self.value


QUEUED = ActivationState.QUEUED
RUNNING = ActivationState.RUNNING
SETTLED = ActivationState.SETTLED
PARKED = ActivationState.PARKED
DROPPED = ActivationState.DROPPED


class Activation:
    """One handler call to make: a route and the merged payload, in a job.

    Implements the strategies' Task protocol; its state changes only through the
    job's ledger.
    """

    __slots__ = (
        "aborted",
        "attempts",
        "children",
        "counted",  # set while the flow's max_pending counts it (see pressure.py)
        "emitted",
        "fair_key",
        "held",
        "job",
        "key",
        "limit",
        "limit_key",
        "params",
        "payload",
        "route",
        "routine",
        "routine_id",
        "routine_spec",
        "serial_key",
        "session_entry",
        "spent",
        "state",
        "stream",
        "task",
        "timed_out",
        "watch",
    )

    #: Set while the flow's ``max_pending`` counts it (unset: not counted).
    counted: bool

    def __init__(
        self,
        job: JobLedger,
        route: Route,
        payload: dict[str, Any],
        params: dict[str, Any] | None = None,
    ) -> None:
        self.job = job
        self.route = route
        self.routine = route.routine
        self.routine_id = route.routine_id
        self.payload = payload
        # What arrived, before merging: the tracker keeps this, not the merged
        # payload, whose accumulated lists would make its memory grow quadratically.
        self.params = payload if params is None else params
        self.attempts = 1
        self.aborted = False  # the job halted while a retry waited
        self.limit_key = route.routine_id
        #: The routine's settings when the activation was made.
        self.routine_spec = spec = route.routine.get_spec()
        self.limit = None if route.slot.is_async else spec.max_concurrency
        self.state = QUEUED
        self.timed_out = False
        self.watch: Any = None  # the watchdog's handle while a timeout applies
        self.task: Any = None  # the asyncio task of an async handler
        self.key: str | None = None  # its id in a checkpoint store
        #: Emitted, not yet checkpointed (a flow with a store); made on first use.
        self.children: list[Activation] | None = None
        #: ``(event, payload)`` of every emit; made on first use.
        self.emitted: list[tuple[str, dict[str, Any]]] | None = None
        #: Held rows its step stores, and held keys it removes (see ``held``).
        self.held: list[Held] | None = None
        self.spent: list[str] | None = None
        #: Its partial steps' state, once it emits with a store (see ``stream``).
        self.stream: Stream | None = None
        #: Strategies take ready activations round-robin over jobs (by job id:
        #: a strategy may hold the key after the job ended, never the job).
        self.fair_key = job.job_state.job_id
        #: ``(routine_id, lane)`` when it has a session lane: from the payload
        #: (its connection's ``lane_key``), else the job's session.
        self.serial_key: tuple[str, Lane] | None = (
            (None if job.session is None else (self.routine_id, job.session))
            if route.lane_key is None
            else (self.routine_id, lane_of(route.lane_key, route, self.params))
        )

    def queued_cells(
        self,
    ) -> tuple[int, dict[str, Any], dict[str, Any], str | None] | None:
        """``(number, payload, params, key)``, all a lane needs to queue it.

        None when the cells would not make it again: it ran or was held
        before, holds inbox rows, or enters by a route no connection names.
        """
        if (
            self.route.number < 0
            or self.state is not QUEUED
            or self.attempts != 1
            or self.held is not None
            or self.spent is not None
            or self.children is not None
            or self.stream is not None
        ):
            return None
        return (self.route.number, self.payload, self.params, self.key)

    @property
    def activation(self) -> Activation:
        """Itself: an activation is the execution context of its handler."""
        return self

    def as_context(self) -> ExecutionContext:
        """The public view of the running handler's context."""
        job = self.job
        return ExecutionContext(job.flow, job.job_state, self.routine_id)

    @property
    def lane(self) -> Lane | None:
        """Its session lane (a session id or a ``lane_key`` value), or None."""
        serial = self.serial_key
        return None if serial is None else serial[1]

    def set_lane(self, lane: Lane | None) -> None:
        """Put the activation in ``lane`` (a resumed one keeps the lane it had)."""
        self.serial_key = None if lane is None else (self.routine_id, lane)

    #: The session state its handler read, released when the handler ends
    #: (unset until then: most activations never read one).
    session_entry: SessionState | None

    def session_state(self) -> dict[str, Any]:
        """The routine's state for this activation's lane (see ``sessions``).

        Raises:
            SessionError: When the activation has no lane.
        """
        entry: SessionState | None = getattr(self, "session_entry", None)
        if entry is None:
            lane = self.lane
            sessions = self.job.sessions
            if lane is None or sessions is None:
                raise SessionError(
                    f"routine {self.routine_id!r} read session_state in an "
                    "activation without a session: start the job with "
                    "flow.execute(..., session=...) or connect with lane_key=..."
                )
            ttl = self.routine_spec.session_ttl
            entry = self.session_entry = sessions.acquire(self.routine_id, lane, ttl)
        return entry.data

    def end_session(self) -> None:
        """The handler has ended: its session state starts to idle."""
        entry: SessionState | None = getattr(self, "session_entry", None)
        if entry is not None:
            self.session_entry = None
            sessions = self.job.sessions
            assert sessions is not None
            sessions.release(entry)

    def run(self) -> Future[None] | None:
        """Run the handler within the job (never raises)."""
        pending = self.job.run(self)
        if pending is not None and self.serial_key is not None:
            # The invoker ends the session when the awaited handler ends; a
            # handler cancelled before it began never got there.
            pending.add_done_callback(self._end_session_when_done)
        return pending

    def _end_session_when_done(self, _: Future[None]) -> None:
        self.end_session()

    def drop(self, reason: str) -> None:
        """Account for the activation without running it."""
        self.job.drop(self, reason)

    def fail(self, error: BaseException) -> None:
        """Report an error raised around the activation (by its strategy)."""
        self.job.fail(self, error)

    def spec(self) -> dict[str, Any]:
        """The activation as JSON-ready data (the strategies' Task protocol).

        With ``lane`` when it has one.
        """
        spec: dict[str, Any] = {
            "job_id": self.job.job_state.job_id,
            "routine_id": self.routine_id,
            "slot": self.route.slot.name,
            "payload": self.payload,
            "attempt": self.attempts,
        }
        if self.lane is not None:
            spec["lane"] = self.lane
        return spec

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for ``JobState.pending_tasks``.

        With ``lane`` when it has one, so that a resumed job keeps it.
        """
        described: dict[str, Any] = {
            "routine_id": self.route.routine_id,
            "slot": self.route.slot.name,
            "payload": self.payload,
            "params": self.params,
        }
        if self.lane is not None:
            described["lane"] = self.lane
        return described

    def checkpoint(self) -> dict[str, Any]:
        """The pending-activation entry a checkpoint store keeps."""
        return {
            "id": self.key,
            "routine_id": self.route.routine_id,
            "slot": self.route.slot.name,
            "payload": self.payload,
        }

    def __repr__(self) -> str:
        return (
            f"Activation({self.route.routine_id}.{self.route.slot.name}, "
            f"{self.state.value})"
        )
