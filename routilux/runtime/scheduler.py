"""Per-job bookkeeping: the only place that decides a job is complete.

A :class:`JobRun` owns one job: its pending count, the slot data kept for the job,
its JobState and tracker, and the flags that stop (halt) or hold (pause) it.

* ``emit`` turns into activations handed to the strategy's lane (or parked while the
  job is paused, or dropped once it is halted).
* ``_pending`` counts activations accepted and not yet settled: queued, running and
  parked. The job is complete when it reaches zero, and paused when everything
  pending is parked.
* A halt (STOP error, cancel, shutdown) drops what has not started; running
  handlers finish, and whatever they emit afterwards is dropped. The halt reason is
  the cancel source recorded in the JobState.

Locks and their order (never held while user code runs, except the built-in
``append`` merge which is not user code):

1. ``JobRun._lock``: pending count, halt and pause flags, parked list, slot data.
2. ``FlowJobs._lock`` (runtime/jobs.py): the set of a flow's active jobs.

1 is never taken while 2 is held.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..exceptions import RoutineTimeoutError
from ..job_state import JobState, JobStatus
from ..records import RoutineState, RoutineStatus
from .activation import Activation, Route, RouteTable
from .context import Frame, enter, leave
from .failures import RetryAbortedError, call_handler, error_record, outcome_of

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..resilience import ErrorHandler
    from ..strategies.base import JobLane
    from ..tracking import ExecutionTracker
    from .checkpoint import Checkpointer
    from .watchdog import Watchdog

__all__ = ["JobRun"]

_perf = time.perf_counter
_wall = time.time
_STOP_ON_ERROR = "stop-on-error"


class JobRun:
    """Runs one job: routes emits, runs activations, decides completion.

    Args:
        flow: The flow (for the execution context).
        routes: The flow's routing table, frozen for this job.
        job_state: The job's public state.
        tracker: Where timings and events are recorded.
        lane: The strategy's lane for this job's activations.
        flow_error_handler: The flow's error handler (a routine's own one wins).
        on_done: Called once when the job stops running (complete or paused).
        watchdog: Enforces routine timeouts.
        default_timeout: Timeout for routines that set none (None: no limit).
        checkpoint: Writes the job's progress to a store, if the flow has one.
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
        watchdog: Watchdog,
        default_timeout: float | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> None:
        self.flow = flow
        self.routes = routes
        self.job_state = job_state
        self.tracker = tracker
        self.lane = lane
        self._flow_error_handler = flow_error_handler
        self._on_done = on_done
        self._watchdog = watchdog
        self._default_timeout = default_timeout
        self._checkpoint = checkpoint
        self._history = job_state._history
        self._add_run = tracker.append_run
        self._add_event = tracker.append_event
        self._states = job_state.routine_states
        # Guards _pending, _dropped, _halted, _paused, _pause_settled, _parked and
        # _slot_data.
        self._lock = threading.Lock()
        self._pending = 0
        self._dropped = 0
        self._halted: str | None = None
        self._paused = False
        self._pause_settled = False
        self._parked: list[Activation] = []
        self._stop_event = threading.Event()  # set on halt: ends retry waits early
        self._slot_data: dict[Any, dict[str, Any]] = {}

    # -- starting and resuming ---------------------------------------------------------

    def start(self, entry_id: str, params: dict[str, Any]) -> None:
        """Activate the entry routine's ``trigger`` slot with ``params``."""
        route = self.routes.entry_route(entry_id)
        state = self.job_state
        state.current_routine_id = entry_id
        state.status = JobStatus.RUNNING
        self._history.append((entry_id, "start", dict(params), _wall()))
        self._pending = 1
        first = Activation(self, route, dict(params))
        if self._checkpoint is not None:
            self._checkpoint.begin(state, [first])
        self.lane.start([first])

    def restart(self, activations: Sequence[Activation], lane: JobLane) -> None:
        """Run ``activations`` (parked by a pause, or loaded) on ``lane``."""
        with self._lock:
            self._paused = False
            self._pending += len(activations)
            self.lane = lane
        self.job_state.status = JobStatus.RUNNING
        self.job_state.pending_tasks = []
        self.job_state._done.clear()
        if self._checkpoint is not None:
            self._checkpoint.begin(self.job_state, activations)
        if activations:
            lane.start(list(activations))
        else:
            self._finish(0)

    def set_deadline(self, timeout: float) -> None:
        """Cancel the job (source ``timeout``) if it still runs after ``timeout`` s."""
        self._watchdog.watch(self, timeout, self._on_job_timeout)

    @property
    def settled(self) -> bool:
        """True once the job stopped running (for the watchdog)."""
        return self.job_state.is_done

    def _on_job_timeout(self, run: JobRun, timeout: float) -> None:
        self.halt("timeout", f"the job ran longer than its timeout of {timeout:g}s")

    def id_of(self, routine: Any) -> str | None:
        """The id of ``routine`` in this job's flow, or None."""
        return self.routes.ids.get(id(routine))

    # -- emitting ----------------------------------------------------------------------

    def emit(
        self,
        routine_id: str,
        event_name: str,
        data: dict[str, Any],
        source: Activation | None,
    ) -> None:
        """Record the emit and queue one activation per connected slot.

        Emits of a handler whose activation timed out are discarded.
        """
        now = _wall()
        if source is not None and source.timed_out:
            self._history.append(
                (routine_id, "late_emit_discarded", {"event": event_name}, now)
            )
            return
        self._history.append((routine_id, event_name, data, now))
        key = (routine_id, event_name)
        routes = self.routes.by_event.get(key, ())
        self._add_event(
            (now, routine_id, event_name, self.routes.targets.get(key, ()), data)
        )
        if not routes:
            return
        activations = [self._activation(route, data) for route in routes]
        checkpoint = self._checkpoint
        if checkpoint is not None and source is not None:
            # Outbox: children exist in the store, and run, only once their
            # source's step is recorded (see _release).
            for activation in activations:
                activation.key = checkpoint.key()
            with self._lock:
                if self._halted is not None:
                    self._dropped += len(activations)
                    return
                self._pending += len(activations)
            source.children.extend(activations)
            return
        with self._lock:
            if self._halted is not None:
                self._dropped += len(activations)
                return
            self._pending += len(activations)
            if self._paused:
                self._parked.extend(activations)
                return
        submit = self.lane.submit
        for activation in activations:
            submit(activation)

    def _dispatch(self, activations: list[Activation]) -> None:
        """Hand counted activations to the lane, or park or drop them."""
        with self._lock:
            if self._halted is not None:
                self._dropped += len(activations)
                dropped = len(activations)
            elif self._paused:
                self._parked.extend(activations)
                dropped = -1
            else:
                dropped = 0
        if dropped > 0:
            self._finish(dropped)
        elif dropped == 0:
            submit = self.lane.submit
            for activation in activations:
                submit(activation)
        else:
            self._finish(0)

    def _release(self, activation: Activation) -> None:
        """Checkpoint a finished activation's step, then let its children run."""
        checkpoint = self._checkpoint
        if checkpoint is None:
            return
        children, activation.children = activation.children, []
        try:
            checkpoint.step(activation, children, self.job_state)
        except Exception as exc:  # noqa: BLE001 - a store failure fails the job, visibly
            self._record_error(activation, exc)
            self.halt(_STOP_ON_ERROR, f"checkpoint failed: {exc}")
        if children:
            self._dispatch(children)

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

    # -- running -----------------------------------------------------------------------

    def execute(self, activation: Activation) -> None:
        """Run one activation's handler and settle it. Never raises."""
        with self._lock:
            if self._halted is not None:
                self._dropped += 1
                verdict = "drop"
            elif self._paused:
                self._parked.append(activation)
                verdict = "park"
            else:
                verdict = "run"
        if verdict == "run":
            try:
                self._run_handler(activation)
            finally:
                if activation.claim():
                    self._release(activation)
                    self._finish(1)
        elif verdict == "drop":
            self._finish(1)
        else:
            self._finish(0)

    def drop(self, activation: Activation, reason: str) -> None:
        """Account for an activation that will not run (its strategy shut down)."""
        with self._lock:
            self._dropped += 1
        self.halt(reason)
        self._finish(1)

    def _run_handler(self, activation: Activation) -> None:
        route = activation.route
        routine_id = route.routine_id
        rx = route.rx
        handler = rx.error_handler or self._flow_error_handler
        timeout = rx.timeout or self._default_timeout
        if timeout is not None:
            activation.watched = True
            self._watchdog.watch(activation, timeout, self.on_timeout)
        token = enter(Frame(self, route.routine, routine_id, activation))
        start = _perf()
        try:
            if rx.breaker is None and (handler is None or handler.strategy != "retry"):
                route.slot.invoke(activation.payload)  # the common case, kept short
            else:
                call_handler(
                    activation,
                    handler,
                    self._stop_event,
                    lambda exc: self._record_error(activation, exc),
                )
        except RetryAbortedError as aborted:
            leave(token)
            self._add_run(
                (routine_id, start, _perf(), activation.params, "failed", aborted.error)
            )
            self._states[routine_id] = RoutineState(
                status=RoutineStatus.FAILED.value,
                error=str(aborted.error),
                error_type=type(aborted.error).__name__,
            )
            return
        except Exception as exc:  # noqa: BLE001 - any handler error is the job's to record
            leave(token)
            self._add_run(
                (routine_id, start, _perf(), activation.params, "failed", exc)
            )
            if activation.timed_out:
                # Already handled as a timeout; the late error is still recorded.
                self._record_error(activation, exc)
            else:
                self._on_error(activation, exc, handler)
            return
        leave(token)
        self._add_run(
            (routine_id, start, _perf(), activation.params, "completed", None)
        )
        if routine_id not in self._states and not activation.timed_out:
            self._states[routine_id] = RoutineState.model_construct(
                status=RoutineStatus.COMPLETED.value
            )

    def on_timeout(self, activation: Activation, timeout: float) -> None:
        """Settle an activation still running past its deadline (watchdog thread)."""
        if not activation.claim():
            return  # it finished just in time
        activation.timed_out = True
        route = activation.route
        error = RoutineTimeoutError(
            f"routine {route.routine_id!r} (slot {route.slot.name!r}) ran longer than "
            f"its timeout of {timeout:g}s; what it emits from now on is discarded"
        )
        handler = route.routine._rx.error_handler or self._flow_error_handler
        self._on_error(activation, error, handler)
        self._release(activation)
        self._finish(1)

    def _record_error(self, activation: Activation, exc: BaseException) -> None:
        self.job_state.errors.append(error_record(activation, exc))
        if self._checkpoint is not None:
            self._checkpoint.dirty = True  # the error goes to the store with the step

    def _on_error(
        self, activation: Activation, exc: BaseException, handler: ErrorHandler | None
    ) -> None:
        route = activation.route
        self._record_error(activation, exc)
        status = outcome_of(handler, exc)
        error = {"error": str(exc), "error_type": type(exc).__name__}
        retried = handler is not None and handler.strategy == "retry"
        self._states[route.routine_id] = RoutineState(
            status=status.value,
            **error,
            retry_count=max(activation.attempts - 1, 0) if retried else None,
        )
        event = "error" if status is RoutineStatus.FAILED else status.value
        self._history.append((route.routine_id, event, error, _wall()))
        if status is RoutineStatus.FAILED:
            reason = f"{type(exc).__name__} in routine {route.routine_id!r}: {exc}"
            self.halt(_STOP_ON_ERROR, reason)

    # -- halting and pausing -----------------------------------------------------------

    def halt(self, source: str, reason: str = "") -> bool:
        """Stop the job: drop what has not started. Returns False if already halted."""
        with self._lock:
            if self._halted is not None:
                return False
            self._halted = source
            parked, self._parked = self._parked, []
            self._dropped += len(parked)
        self.job_state.cancel_source = source  # type: ignore[assignment]
        self.job_state.cancel_reason = reason
        self._stop_event.set()
        if parked:
            self._finish(len(parked))
        return True

    def pause(self, reason: str, checkpoint: Any) -> None:
        """Hold new activations; the job is paused once running ones finish."""
        with self._lock:
            self._paused = True
        self.job_state.pause_points.append(
            {"reason": reason, "checkpoint": checkpoint, "timestamp": _wall()}
        )
        self._finish(0)

    def unpause(self) -> bool:
        """Call off a pause that has not settled; False when it already has."""
        with self._lock:
            if self._pause_settled:
                return False
            self._paused = False
            parked, self._parked = self._parked, []
        submit = self.lane.submit
        for activation in parked:
            submit(activation)
        return True

    def take_parked(self) -> list[Activation]:
        """The activations held by a settled pause (for resume)."""
        with self._lock:
            parked, self._parked = self._parked, []
            self._pending -= len(parked)
            self._pause_settled = False
            return parked

    def _finish(self, settled: int) -> None:
        with self._lock:
            self._pending -= settled
            if self._pending == 0:
                pending_tasks = None
            elif (
                self._paused
                and not self._pause_settled
                and self._pending == len(self._parked)
            ):
                self._pause_settled = True
                pending_tasks = [a.describe() for a in self._parked]
            else:
                return
        if pending_tasks is None:
            self._complete()
            return
        state = self.job_state
        state.pending_tasks = pending_tasks
        state.status = JobStatus.PAUSED
        if self._checkpoint is not None:
            self._checkpoint.save(state)
        self._on_done(self)  # before waking waiters: resume() finds it paused
        state._done.set()

    def _complete(self) -> None:
        state = self.job_state
        entry = state.current_routine_id or ""
        if self._halted is None:
            state.status = JobStatus.COMPLETED
            self._history.append((entry, "completed", {}, _wall()))
        elif self._halted == _STOP_ON_ERROR:
            state.status = JobStatus.FAILED
            if self._dropped:
                self._history.append(
                    (entry, "dropped", {"count": self._dropped}, _wall())
                )
        else:
            state.status = JobStatus.CANCELLED
            record = {"source": self._halted, "dropped": self._dropped}
            self._history.append((entry, "cancelled", record, _wall()))
        state.pending_tasks = []
        state.updated_at = datetime.now(timezone.utc)
        if self._checkpoint is not None:
            self._checkpoint.end(state)
        state._done.set()
        self._on_done(self)
