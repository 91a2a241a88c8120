"""FlowRunner: starts a flow's jobs and keeps what running needs.

The flow facade delegates here: the compiled routing table (rebuilt after a change
to the wiring), the strategies by name, the set of active jobs.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..job_state import JobState
from ..strategies.catalog import StrategyCatalog
from ..tracking import ExecutionTracker
from .activation import RouteTable
from .scheduler import FlowJobs, JobRun

if TYPE_CHECKING:
    from ..flow import Flow
    from ..routine import Routine
    from ..strategies.base import ExecutionStrategy

__all__ = ["FlowRunner"]


class FlowRunner:
    """Runs the jobs of one flow.

    Args:
        flow: The flow whose jobs this runs.
    """

    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self._catalog = StrategyCatalog(f"routilux-{flow.flow_id}")
        self._jobs = FlowJobs()
        self._routes: RouteTable | None = None
        self._version = 0
        self.closed = False

    # -- wiring --------------------------------------------------------------------

    def invalidate_routes(self) -> None:
        """Forget the compiled routes: the wiring changed."""
        self._version += 1
        self._routes = None

    def routes(self) -> RouteTable:
        """The routing table for the current wiring, compiled once per change."""
        routes = self._routes
        if routes is None:
            version = self._version
            flow = self._flow
            links = [
                (
                    c.source_routine_id or "",
                    c.source_event.name if c.source_event else "",
                    c.target_routine_id or "",
                    c.target_slot.name if c.target_slot else "",
                    c.param_mapping or None,
                )
                for c in flow.connections
            ]
            routes = RouteTable(dict(flow.routines), links)
            if version == self._version:
                self._routes = routes
        return routes

    # -- strategies ----------------------------------------------------------------

    def strategy(self, name: str, max_workers: int) -> ExecutionStrategy:
        """The flow's strategy ``name`` with ``max_workers`` (made on first use)."""
        return self._catalog.get(name, 1 if name == "sequential" else max_workers)

    def adopt(self, strategy: ExecutionStrategy) -> None:
        """Use a strategy object given by the user."""
        self._catalog.put(strategy)

    # -- jobs ----------------------------------------------------------------------

    def execute(
        self, entry_id: str, params: dict[str, Any], name: str, workers: int
    ) -> JobState:
        """Start a job (checked by the flow) and return its state."""
        flow = self._flow
        lane = self.strategy(name, workers).open_lane()
        job_state = JobState(flow.flow_id)
        if flow.history_limit is not None:
            job_state._history = deque(maxlen=flow.history_limit)  # type: ignore[assignment]
        tracker = ExecutionTracker(flow.flow_id)
        flow.execution_tracker = tracker
        run = JobRun(
            flow,
            self.routes(),
            job_state,
            tracker,
            lane,
            flow.error_handler,
            self._jobs.discard,
        )
        self._jobs.add(run)
        run.start(entry_id, params)
        return job_state

    def wait(self, timeout: float | None) -> bool:
        """Block until no job of the flow is active."""
        return self._jobs.wait(timeout)

    def shutdown(self, wait: bool, timeout: float | None) -> None:
        """Refuse new jobs and shut every strategy down (idempotent)."""
        self.closed = True
        self._catalog.shutdown(wait=wait, timeout=timeout)

    def deliver_now(
        self, routine: Routine, event_name: str, data: dict[str, Any]
    ) -> None:
        """Deliver an emit made outside any job, in this thread, through the routes."""
        routes = self.routes()
        routine_id = routes.ids.get(id(routine))
        if routine_id is None:
            return
        for route in routes.by_event.get((routine_id, event_name), ()):
            route.slot.receive(route.map(data))

    def stats(self) -> dict[str, Any]:
        """Pool statistics, active jobs and routine timings of the latest job."""
        tracker = self._flow.execution_tracker
        routines: dict[str, Any] = {}
        if tracker is not None:
            routines = tracker.performance_metrics["routines"]
        return {
            "flow_id": self._flow.flow_id,
            "strategies": self._catalog.stats(),
            "active_jobs": len(self._jobs),
            "routines": routines,
        }
