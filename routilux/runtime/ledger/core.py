"""The ledger: the one object per job that changes job and activation state.

Every activation moves ``queued -> running -> settled`` (or ``parked`` by a pause,
or ``dropped`` by a halt), each move made here, under the ledger's lock, after
checking the state it moves from: a second settle of the same activation is
refused. The ledger owns the pending count and the completion rule (a job is done
when nothing is queued, running or parked, and paused when everything pending is
parked), the halt and pause flags, the job's result, and every write to its
:class:`JobState`, which users then see as a read-only view.

The invoker turns a handler call into an :class:`~routilux.hooks.Outcome`; the
ledger only reads outcomes. Strategies report whatever escapes a task through
:meth:`JobLedger.fail`, so no error vanishes and every wait returns.

Locks and their order. User code (handlers, merges, hooks, stores) never runs
while one is held, except the built-in ``append`` merge, which is not user code:

1. ``JobLedger._lock`` (also the JobState's snapshot lock): pending count, halt and
   pause flags, parked list, slot data, activation states, JobState fields.
2. ``FlowJobs._lock`` (runtime/jobs.py), ``Watchdog._lock``: taken after 1 is
   released, never while it is held.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ...exceptions import CheckpointError
from ...hooks import Outcome
from ...job_state import JobStatus
from ...records import RoutineState
from .. import aio
from ..activation import QUEUED, RUNNING, SETTLED, Activation
from ..invoker import error_record, invoke, invoke_async, safe_text
from .completion import _FLUSH
from .failures import Failures, Verdict
from .inboxes import InboxError, JobInboxes, Note

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ...resilience import ErrorHandler
    from ...strategies.base import JobLane
    from ..activation import Route

__all__ = ["JobLedger"]

_perf = time.perf_counter
_wall = time.time


class JobLedger(Failures):
    """One job's ledger: routes emits, runs activations, settles their outcomes.

    Built by the runner with the arguments of
    :class:`~routilux.runtime.ledger.base.LedgerBase`.
    """

    # -- starting and resuming --

    def start(self, entry_id: str, params: dict[str, Any]) -> None:
        """Activate the entry routine's ``trigger`` slot with ``params``.

        Raises:
            Exception: Whatever the checkpoint store raised while writing the job's
                start; the job is then ended as failed (see :meth:`abandon`).
        """
        first = Activation(self, self.routes.entry_route(entry_id), dict(params))
        with self._lock:
            self._set(current_routine_id=entry_id, status=JobStatus.RUNNING)
            self._history.append((entry_id, "start", dict(params), _wall()))
            self._pending = 1
        if self._checkpoint is not None:
            try:
                self._checkpoint.begin(self.job_state, [first])
            except BaseException as exc:
                self.abandon(exc)
                raise
        self._launch([first])

    def restart(self, activations: Sequence[Activation], lane: JobLane) -> None:
        """Run ``activations`` (parked by a pause, or loaded) on ``lane``.

        Raises:
            Exception: Whatever the checkpoint store raised; the job is then left
                paused as it was, with the same activations held.
        """
        with self._lock:
            before = {
                "status": self.job_state.status,
                "pending_tasks": self.job_state.pending_tasks,
            }
            self._paused = False
            self._pause_settled = False
            self._pending += len(activations)
            for activation in activations:
                activation.state = QUEUED
            self.lane = lane
            self._set(status=JobStatus.RUNNING, pending_tasks=self._tasks([]))
            self.job_state._done.clear()
        if self._checkpoint is not None:
            try:
                self._checkpoint.begin(self.job_state, activations)
            except BaseException:
                with self._lock:  # as it was: paused, holding the same activations
                    self._set(**before)
                    self._paused = self._pause_settled = True
                    self._park_locked(activations)
                self.job_state._done.set()
                raise
        self._launch(list(activations))

    def _launch(self, activations: list[Activation]) -> None:
        assert self.observers is not None
        assert self.lane is not None
        self.observers.job_started()
        if not activations:
            self._finish(0)
            return
        if self.lane_blocks:
            self._caller = threading.get_ident()
        self.lane.start(list(activations))

    #: True when the lane runs the job in the calling thread (set by the runner).
    lane_blocks = False

    def set_deadline(self, timeout: float) -> None:
        """Cancel the job (source ``timeout``) if it still runs after ``timeout`` s."""
        self._deadline = self._watchdog.watch(self, timeout, self._on_job_timeout)

    def _on_job_timeout(self, _: JobLedger, timeout: float) -> None:
        self.halt("timeout", f"the job ran longer than its timeout of {timeout:g}s")

    def id_of(self, routine: Any) -> str | None:
        """The id of ``routine`` in this job's flow, or None."""
        return self.routes.ids.get(id(routine))

    # -- emitting --

    def emit(
        self,
        routine_id: str,
        event_name: str,
        data: dict[str, Any],
        source: Activation | None,
    ) -> None:
        """Record the emit and queue one activation per connected slot.

        Emits of a handler whose activation is settled (it timed out) are
        discarded; after a halt they are dropped and counted.
        """
        key = (routine_id, event_name)
        routes = self.routes.by_event.get(key)
        joined = routes is not None and key in self.routes.joined
        if not routes:
            activations = []
        elif joined:  # slots with a policy get their calls from their inbox
            activations = [self._activation(r, data) for r in routes if not r.policy]
        else:
            activations = [self._activation(r, data) for r in routes]
        self._queue(key, data, source, routes, joined, activations)

    def _queue(
        self,
        key: tuple[str, str],
        data: dict[str, Any],
        source: Activation | None,
        routes: Sequence[Route] | None,
        joined: bool,
        activations: list[Activation],
    ) -> None:
        routine_id = key[0]
        with self._lock:
            if not self._record_emit_locked(key, data, source, bool(routes)):
                return
            if self._halted is not None:
                self._drop_locked(activations)
                return
            if joined:
                assert routes is not None
                self._offer_locked(routine_id, routes, data, activations)
            self._pending += len(activations)
            if self._checkpoint is not None and source is not None:
                # Outbox: children exist in the store, and run, only once their
                # source's step is recorded (see _release).
                for activation in activations:
                    activation.key = self._checkpoint.key()
                if source.children is None:
                    source.children = activations
                else:
                    source.children.extend(activations)
                return
            if self._paused:
                self._park_locked(activations)
                return
        submit = self.lane.submit  # type: ignore[union-attr]
        for activation in activations:
            submit(activation)

    def _record_emit_locked(
        self,
        key: tuple[str, str],
        data: dict[str, Any],
        source: Activation | None,
        consumed: bool,
    ) -> bool:
        """Write an emit to history and tracker (lock held); False: nothing to queue.

        ``consumed``: some slot is connected to the event.
        """
        routine_id, event_name = key
        now = _wall()
        if source is not None and source.state is not RUNNING:
            self._history.append(
                (routine_id, "late_emit_discarded", {"event": event_name}, now)
            )
            return False
        self._history.append((routine_id, event_name, data, now))
        observers = self.observers
        assert observers is not None
        if source is not None and observers.watching_outcomes:
            # Only hooks read an outcome's emits: without them the list is skipped.
            if source.emitted is None:
                source.emitted = [(event_name, data)]
            else:
                source.emitted.append((event_name, data))
        observers.append_event(
            (now, routine_id, event_name, self.routes.targets.get(key, ()), data)
        )
        if not consumed:
            self.outputs.unconsumed[routine_id] = data
            return False
        return True

    def _conclude(self, action: int) -> None:
        if action == _FLUSH:
            self._flush_inboxes()
        else:
            super()._conclude(action)

    def _flush_inboxes(self) -> None:
        """Nothing else is pending: run the calls the waiting inboxes flush.

        When they make none (or a halt came first), the job is done.
        """
        notes: list[Note] = []
        with self._lock:
            calls = []
            if self._halted is None and self._inboxes is not None:
                try:
                    calls = self._inboxes.flush(notes)
                except InboxError as broken:
                    self._inbox_failed_locked(broken)
            for note in notes:
                self._history.append(note)
            activations = [Activation(self, route, call) for route, call in calls]
            self._pending += len(activations)
            action = 0 if activations else self._count_locked(0)
        if not activations:
            if action:
                self._conclude(action)
            return
        if self._checkpoint is not None:
            try:
                self._checkpoint.begin(self.job_state, activations)
            except BaseException as exc:  # noqa: BLE001 - a store failure fails the job
                self._break(
                    None, CheckpointError(f"checkpoint failed: {safe_text(exc)}"), exc
                )
        self._dispatch(activations)

    def _offer_locked(
        self,
        source_id: str,
        routes: Sequence[Route],
        data: dict[str, Any],
        activations: list[Activation],
    ) -> None:
        """Offer an emit to the inboxes of its policy slots (lock held).

        The calls an inbox answers with join ``activations``. A policy that
        raises fails the job, its error recorded under the slot.
        """
        inboxes = self._inboxes
        if inboxes is None:
            inboxes = self._inboxes = JobInboxes()
        try:
            for route in routes:
                if route.policy is not None:
                    calls = inboxes.offer(route, source_id, route.map(data))
                    activations.extend(Activation(self, route, c) for c in calls)
        except InboxError as broken:
            self._inbox_failed_locked(broken)

    def _activation(self, route: Route, data: dict[str, Any]) -> Activation:
        incoming = route.map(data)
        merger = route.merger
        if merger.replaces:  # override: nothing kept to merge into
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

    # -- running --

    def run(self, activation: Activation) -> Future[None] | None:
        """Run one activation (a strategy's task). Never raises.

        Returns a future when the handler went on to the event loop.
        """
        try:
            if activation.state is not QUEUED:
                raise RuntimeError(f"{activation!r} was run twice")
            if self._halted is None and not self._paused:
                # Only the thread running a queued activation touches it, and a
                # halt or pause that lands now finds it running, as it would a
                # moment later: this move needs no lock.
                activation.state = RUNNING
                return self._invoke(activation)
            with self._lock:
                if self._halted is not None:
                    self._drop_locked((activation,))
                    verdict = 1
                elif self._paused:
                    self._park_locked((activation,))
                    verdict = 0
                else:
                    activation.state = RUNNING
                    verdict = -1
            if verdict >= 0:
                self._finish(verdict)
                return None
            return self._invoke(activation)
        except BaseException as exc:  # noqa: BLE001 - ends in the job, never lost
            self.fail(activation, exc)
            self._note_interrupt(exc)
            return None

    def _invoke(self, activation: Activation) -> Future[None] | None:
        route = activation.route
        handler = self._handler_of(activation)
        timeout = activation.routine_spec.timeout or self._default_timeout
        observers = self.observers
        assert observers is not None
        if observers.watching_starts:
            observers.activation_started(activation)
        if route.slot.is_async:
            return self._start_async(activation, None, handler, timeout)
        if timeout is not None:  # after the start hooks: theirs is not handler time
            activation.watch = self._watchdog.watch(
                activation, timeout, self.on_timeout
            )
        start = _perf()
        outcome = invoke(activation, handler, self._stop_signal, self._on_retry)
        value = outcome.value
        if value is not None and inspect.isawaitable(value):
            return self._start_async(activation, value, handler, None, start)
        self.settle(activation, outcome, handler, start)
        return None

    def _retry_error(self, activation: Activation, exc: BaseException) -> None:
        route = activation.route
        record = error_record(
            route.routine_id, route.slot.name, exc, activation.attempts
        )
        with self._lock:
            self._error(record, exc)

    def _start_async(
        self,
        activation: Activation,
        first: Any,
        handler: ErrorHandler | None,
        timeout: float | None,
        start: float | None = None,
    ) -> Future[None]:
        """Finish an activation on the event loop; the future says when it settled.

        ``first`` is what a sync call already returned (then ``start`` is when it
        began, and its timeout already runs); otherwise the ``async def`` handler
        is called on the loop, after its routine's gate lets it in, and only then
        do its timeout and its duration start.
        """
        done: Future[None] = Future()
        began = [_perf() if start is None else start]
        limit = activation.routine_spec.max_concurrency if first is None else None
        gates = self._async_gates
        gate = gates.gate(activation.routine_id, limit) if limit and gates else None
        with self._lock:
            self._awaiting.add(activation)

        def finish(task: asyncio.Task[Outcome]) -> None:
            try:
                outcome = (
                    Outcome(
                        error=asyncio.CancelledError(), attempts=activation.attempts
                    )
                    if task.cancelled()
                    else task.result()
                )
                self.settle(activation, outcome, handler, began[0])
            except BaseException as exc:  # noqa: BLE001 - ends in the job
                self.fail(activation, exc)
            finally:
                done.set_result(None)

        async def call() -> Outcome:
            if gate is not None:
                await gate.acquire()  # a cancel here ends the wait, and the call
            try:
                if first is None:
                    began[0] = _perf()
                    if timeout is not None:
                        activation.watch = self._watchdog.watch(
                            activation, timeout, self.on_timeout
                        )
                return await invoke_async(
                    activation, first, handler, self.stop_signal, self._retry_error
                )
            finally:
                if gate is not None:
                    gate.release()

        def begin() -> None:
            task = asyncio.ensure_future(call())
            activation.task = task
            if activation.state is not RUNNING or self._halted is not None:
                task.cancel()  # timed out or halted before it began
            task.add_done_callback(finish)

        aio.call_soon(begin)
        return done

    def settle(
        self,
        activation: Activation,
        outcome: Outcome,
        handler: ErrorHandler | None,
        start: float,
    ) -> None:
        """Settle a running activation with its outcome (the one gate to SETTLED)."""
        end = _perf()
        error = outcome.error
        if (
            error is None
            and activation.watch is None
            and activation.task is None
            and activation.children is None
            and self._checkpoint is None
        ):
            self._settle_plain(activation, outcome, start, end)
            return
        verdict = None if error is None else self._judge(activation, error, handler)
        with self._lock:
            if self._awaiting:
                self._awaiting.discard(activation)
            if activation.state is not RUNNING:
                self._late_locked(activation, error, verdict)
                return
            activation.state = SETTLED
            children, activation.children = activation.children, None
            failed = self._record_outcome_locked(activation, outcome, verdict)
            parked = self._take_parked_if_halted()
        if activation.watch is not None:
            activation.watch.cancel()
        self._note_interrupt(error)
        if activation.emitted is not None:
            outcome.emitted = activation.emitted
        assert self.observers is not None
        # Observers hear of the activation before it is counted as settled, so
        # the job's end (which the count may trigger) follows every end.
        self.observers.activation_ended(activation, outcome, start, end, failed)
        if children is not None or self._checkpoint is not None:
            self._release(activation, children)
        self._finish(1 + parked)

    def _settle_plain(
        self, activation: Activation, outcome: Outcome, start: float, end: float
    ) -> None:
        """Settle a handler that returned, with no timeout, task or store.

        Nothing but this thread can settle such an activation, so observers are
        told first and one critical section then settles and counts it.
        """
        if activation.emitted is not None:
            outcome.emitted = activation.emitted
        assert self.observers is not None
        self.observers.activation_ended(activation, outcome, start, end, False)
        with self._lock:
            if activation.state is not RUNNING:
                raise RuntimeError(f"{activation!r} settled twice")
            activation.state = SETTLED
            self._record_success_locked(activation.routine_id, outcome.value)
            action = self._count_locked(1 + self._take_parked_if_halted())
        if action:
            self._conclude(action)

    def _late_locked(
        self,
        activation: Activation,
        error: BaseException | None,
        verdict: Verdict | None,
    ) -> None:
        """A handler returned after its timeout settled it (lock held)."""
        if activation.state is not SETTLED or not activation.timed_out:
            raise RuntimeError(f"{activation!r} settled twice")
        # A late error is still recorded; our own cancel of the task is not one.
        # An aborted retry's error was recorded when the retry was scheduled.
        if (
            verdict is not None
            and not activation.aborted
            and not isinstance(error, asyncio.CancelledError)
        ):
            assert error is not None
            self._error(verdict.record, error)

    def _record_success_locked(self, routine_id: str, value: Any) -> None:
        """A handler returned (lock held): record it, keep a sink's value."""
        if routine_id not in self._states:
            dict.__setitem__(self._states, routine_id, RoutineState._completed())
        if value is not None and routine_id in self.routes.sinks:
            self.outputs.returned[routine_id] = value

    def _record_outcome_locked(
        self, activation: Activation, outcome: Outcome, verdict: Verdict | None
    ) -> bool:
        """Write an outcome to the JobState (lock held); True: the job fails."""
        error = outcome.error
        if error is None:
            self._record_success_locked(activation.routine_id, outcome.value)
            return False
        if isinstance(error, asyncio.CancelledError) and self._halted:
            return False  # our own cancel of an awaiting handler: not its error
        assert verdict is not None
        return self._apply_error(activation, error, verdict)

    def _release(
        self, activation: Activation, children: list[Activation] | None
    ) -> None:
        """Checkpoint a finished activation's step, then let its children run."""
        checkpoint = self._checkpoint
        if checkpoint is not None:
            try:
                checkpoint.step(activation, children or (), self.job_state)
            except BaseException as exc:  # noqa: BLE001 - a store failure fails the job
                self._break(
                    activation,
                    CheckpointError(f"checkpoint failed: {safe_text(exc)}"),
                    exc,
                )
        if children:
            self._dispatch(children)

    def _dispatch(self, activations: list[Activation]) -> None:
        """Hand counted activations to the lane, or park or drop them."""
        with self._lock:
            if self._halted is not None:
                self._drop_locked(activations)
                dropped = len(activations)
            elif self._paused:
                self._park_locked(activations)
                dropped = -1
            else:
                dropped = 0
        if dropped > 0:
            self._finish(dropped)
        elif dropped == 0:
            submit = self.lane.submit  # type: ignore[union-attr]
            for activation in activations:
                submit(activation)
        else:
            self._finish(0)
