"""Per-job bookkeeping: the only place that decides a job is complete.

A :class:`JobRun` owns one job: its pending count (queued plus running activations),
the slot data kept for the job, its JobState and tracker, and the halt flag set by a
STOP error. ``emit`` turns into activations handed to the strategy's lane; a job is
complete when its pending count reaches zero.

Locks and their order (never held while user code runs, except the built-in
``append`` merge which is not user code):

1. ``JobRun._lock``: the pending count, halt flag and the job's slot data.
2. ``FlowJobs._lock``: the set of a flow's active jobs.

A thread may take 2 while holding nothing; 1 is never taken while 2 is held.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
)

from ..job_state import JobState, JobStatus, RoutineStatus
from ..resilience import ErrorHandler, ErrorStrategy
from .activation import Activation, Route, RouteTable
from .context import Frame, enter, leave

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..strategies.base import JobLane
    from ..tracking import ExecutionTracker

__all__ = ["FlowJobs", "JobRun"]

_perf = time.perf_counter
_wall = time.time


class FlowJobs:
    """The active jobs of one flow, for ``wait_for_completion``. Thread-safe."""

    def __init__(self) -> None:
        # Guards _active.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._active: set[JobRun] = set()

    def add(self, run: JobRun) -> None:
        """Count ``run`` as active."""
        with self._lock:
            self._active.add(run)

    def discard(self, run: JobRun) -> None:
        """Stop counting ``run``; wake waiters when none is left."""
        with self._lock:
            self._active.discard(run)
            if not self._active:
                self._changed.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is active; False when ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._active, timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._active)


class JobRun:
    """Runs one job: routes emits, runs activations, decides completion.

    Args:
        flow: The flow (for the execution context).
        routes: The flow's routing table, frozen for this job.
        job_state: The job's public state.
        tracker: Where timings and events are recorded.
        lane: The strategy's lane for this job's activations.
        flow_error_handler: The flow's error handler (a routine's own one wins).
        on_done: Called once when the job is complete.
    """

    def __init__(
        self,
        flow: Any,
        routes: RouteTable,
        job_state: JobState,
        tracker: ExecutionTracker,
        lane: JobLane,
        flow_error_handler: ErrorHandler | None,
        on_done: Callable[[JobRun], None],
    ) -> None:
        self.flow = flow
        self.routes = routes
        self.job_state = job_state
        self.tracker = tracker
        self._lane = lane
        self._flow_error_handler = flow_error_handler
        self._on_done = on_done
        self._history = job_state._history
        self._states = job_state.routine_states
        # Guards _pending, _halted, _dropped and _slot_data.
        self._lock = threading.Lock()
        self._pending = 0
        self._dropped = 0
        self._halted: str | None = None
        self._stop_event = threading.Event()  # set on halt: ends retry waits early
        self._slot_data: dict[Any, dict[str, Any]] = {}
        self._entry_id = ""

    # -- starting ----------------------------------------------------------------------

    def start(self, entry_id: str, params: dict[str, Any]) -> None:
        """Activate the entry routine's ``trigger`` slot with ``params``."""
        route = self.routes.entry_route(entry_id)
        self._entry_id = entry_id
        state = self.job_state
        state.current_routine_id = entry_id
        state.status = JobStatus.RUNNING
        self._history.append((entry_id, "start", dict(params), _wall()))
        self._pending = 1
        self._lane.start(Activation(self, route, dict(params)))

    def id_of(self, routine: Any) -> str | None:
        """The id of ``routine`` in this job's flow, or None."""
        return self.routes.ids.get(id(routine))

    # -- emitting ----------------------------------------------------------------------

    def emit(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """Record the emit and queue one activation per connected slot."""
        now = _wall()
        self._history.append((routine_id, event_name, data, now))
        key = (routine_id, event_name)
        routes = self.routes.by_event.get(key, ())
        self.tracker.add_event(
            now, routine_id, event_name, self.routes.targets.get(key, ()), data
        )
        if not routes:
            return
        activations = [self._activation(route, data) for route in routes]
        with self._lock:
            if self._halted is not None:
                self._dropped += len(activations)
                return
            self._pending += len(activations)
        submit = self._lane.submit
        for activation in activations:
            submit(activation)

    def _activation(self, route: Route, data: dict[str, Any]) -> Activation:
        incoming = route.map(data)
        merger = route.merger
        if merger.replaces:
            self._slot_data[route.slot] = incoming
            return Activation(self, route, incoming)
        if not merger.is_user_code:
            with self._lock:
                kept = self._slot_data.setdefault(route.slot, {})
                payload = merger.merge(kept, incoming)[1]
        else:
            payload = self._merge_user(route, incoming)
        return Activation(self, route, payload, incoming)

    def _merge_user(self, route: Route, incoming: dict[str, Any]) -> dict[str, Any]:
        # User merges run outside the lock: read, merge, then store only if nobody
        # stored in between (else merge again with the newer data).
        slot_data = self._slot_data
        while True:
            with self._lock:
                before = slot_data.get(route.slot)
            kept, payload = route.merger.merge(before or {}, incoming)
            with self._lock:
                if slot_data.get(route.slot) is before:
                    slot_data[route.slot] = kept
                    return payload

    def slot_data(self, slot: Any) -> dict[str, Any]:
        """A copy of what ``slot`` keeps for this job."""
        with self._lock:
            return dict(self._slot_data.get(slot) or {})

    # -- running -----------------------------------------------------------------------

    def execute(self, activation: Activation) -> None:
        """Run one activation's handler and settle its outcome. Never raises."""
        try:
            if self._halted is None:
                self._run_handler(activation)
            else:
                with self._lock:
                    self._dropped += 1
        finally:
            self._finish_one()

    def drop(self, activation: Activation, reason: str) -> None:
        """Account for an activation that will not run."""
        with self._lock:
            self._dropped += 1
            if self._halted is None:
                self._halted = reason
                self._stop_event.set()
        self._finish_one()

    def _run_handler(self, activation: Activation) -> None:
        route = activation.route
        routine_id = route.routine_id
        handler = route.error_handler() or self._flow_error_handler
        token = enter(Frame(self, route.routine, routine_id))
        start = _perf()
        try:
            if handler is not None and handler.strategy is ErrorStrategy.RETRY:
                self._invoke_with_retry(activation, handler)
            else:
                route.slot.invoke(activation.payload)
        except Exception as exc:  # noqa: BLE001 - any handler error is the job's to record
            leave(token)
            self.tracker.add_run(
                routine_id, start, _perf(), activation.params, "failed", exc
            )
            self._on_error(activation, exc, handler)
            return
        leave(token)
        self.tracker.add_run(
            routine_id, start, _perf(), activation.params, "completed", None
        )
        if routine_id not in self._states:
            self._states[routine_id] = {"status": RoutineStatus.COMPLETED.value}

    def _invoke_with_retry(self, activation: Activation, handler: ErrorHandler) -> None:
        def wait(state: RetryCallState) -> float:
            return handler.delay_before(state.attempt_number)

        retrying = Retrying(
            stop=stop_after_attempt(handler.max_retries + 1)
            | stop_when_event_set(self._stop_event),
            wait=wait,
            retry=retry_if_exception_type(handler.retryable_exceptions),
            sleep=self._sleep,
            reraise=True,
        )
        attempts = 0
        invoke = activation.route.slot.invoke
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    invoke(activation.payload)
        finally:
            activation.attempts = attempts
            handler.retry_count = attempts - 1

    def _sleep(self, seconds: float) -> None:
        # Backoff waits end early when the job halts (stop, cancel, shutdown).
        self._stop_event.wait(seconds)

    def _on_error(
        self, activation: Activation, exc: Exception, handler: ErrorHandler | None
    ) -> None:
        route = activation.route
        strategy = handler.strategy if handler is not None else ErrorStrategy.STOP
        error = {"error": str(exc), "error_type": type(exc).__name__}
        self.job_state.errors.append(
            {
                "routine_id": route.routine_id,
                "slot": route.slot.name,
                "error_type": type(exc).__name__,
                "message": str(exc),
                "traceback": "".join(traceback.format_exception(exc)),
                "attempt": activation.attempts,
                "time": _wall(),
            }
        )
        tolerated = handler is not None and handler.handle_error(
            exc, route.routine, route.routine_id
        )
        if strategy is ErrorStrategy.SKIP:
            status = RoutineStatus.SKIPPED
        elif tolerated:
            status = RoutineStatus.ERROR_CONTINUED
        else:
            status = RoutineStatus.FAILED
        state: dict[str, Any] = {"status": status.value, **error}
        if strategy is ErrorStrategy.RETRY:
            state["retry_count"] = max(activation.attempts - 1, 0)
        self._states[route.routine_id] = state
        event = "error" if status is RoutineStatus.FAILED else status.value
        self._history.append((route.routine_id, event, error, _wall()))
        if status is RoutineStatus.FAILED:
            self._halt("stop-on-error")

    def _halt(self, reason: str) -> None:
        with self._lock:
            if self._halted is None:
                self._halted = reason
        self._stop_event.set()

    def _finish_one(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending:
                return
        self._complete()

    def _complete(self) -> None:
        state = self.job_state
        if self._halted is None:
            state.status = JobStatus.COMPLETED
            self._history.append((self._entry_id, "completed", {}, _wall()))
        elif self._halted == "stop-on-error":
            state.status = JobStatus.FAILED
            if self._dropped:
                self._history.append(
                    (self._entry_id, "dropped", {"count": self._dropped}, _wall())
                )
        else:
            state.status = JobStatus.CANCELLED
            record = {"source": self._halted, "dropped": self._dropped}
            self._history.append((self._entry_id, "cancelled", record, _wall()))
        state.updated_at = state.created_at.fromtimestamp(
            _wall(), state.created_at.tzinfo
        )
        state._done.set()
        self._on_done(self)
