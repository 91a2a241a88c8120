"""Running and settling: a job's activations from their handler call to settled.

The one gate from ``queued`` to ``running`` (or to ``parked``/``dropped`` after a
pause or halt), the handler call through the invoker (sync in the calling thread,
async on the event loop behind its routine's gate), and the one gate to
``settled`` with the outcome, after which a checkpointed activation's step is
written and its children are released to the lane. Starting jobs and queuing
emits is :class:`~routilux.runtime.ledger.JobLedger`'s part.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..._locks import take_contended
from ...exceptions import CheckpointError
from ...hooks import Outcome
from ...records import COMPLETED_STATE
from .. import aio
from ..activation import QUEUED, RUNNING, SETTLED
from ..invoker import error_record, invoke, invoke_async, safe_text
from .streaming import Streaming

if TYPE_CHECKING:
    from ...dead_letter import DeadLetter
    from ...resilience import ErrorHandler
    from ..activation import Activation
    from ..step_writer import StepWriter, Written
    from .failures import Verdict

__all__ = ["Running"]

_perf = time.perf_counter


class Running(Streaming):
    """Runs a job's activations and settles their outcomes."""

    __slots__ = ()

    # -- running --

    def run(self, activation: Activation) -> Future[None] | None:
        """Run one activation (a strategy's task). Never raises.

        Returns a future when the handler went on to the event loop.
        """
        if self._pressure is not None:
            return self._run_counted(activation)
        return self._run(activation)

    def _run_counted(self, activation: Activation) -> Future[None] | None:
        # Under max_pending: the activation's place frees once it has finished.
        pending = self._run(activation)
        if pending is None:
            self._uncount(activation)
        else:
            pending.add_done_callback(lambda _: self._uncount(activation))
        return pending

    def _run(self, activation: Activation) -> Future[None] | None:
        try:
            if activation.state is not QUEUED:
                raise RuntimeError(f"{activation!r} was run twice")
            if self._halted is None and not self._paused:
                # Only the thread running a queued activation touches it, and a
                # halt or pause that lands now finds it running, as it would a
                # moment later: this move needs no lock.
                activation.state = RUNNING
                return self._invoke(activation)
            lock = self._lock
            if not lock.acquire(False):
                take_contended(lock)
            try:
                if self._halted is not None:
                    self._drop_locked((activation,))
                    verdict = 1
                elif self._paused:
                    self._park_locked((activation,))
                    verdict = 0
                else:
                    activation.state = RUNNING
                    verdict = -1
            finally:
                lock.release()
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
        if route.slot.is_async or self.remote is not None:
            # A remote call is awaited on the event loop like an async handler:
            # no pool thread waits for the worker's answer.
            return self._start_async(activation, None, handler, timeout)
        if timeout is not None:  # after the start hooks: theirs is not handler time
            activation.watch = self._watchdog.watch(
                activation, timeout, self.on_timeout
            )
        start = _perf()
        outcome = invoke(activation, handler, self.stop_signal, self._retry_error)
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

    def _async_gate(self, activation: Activation) -> asyncio.Semaphore | None:
        """The semaphore holding an async routine to its max_concurrency, if any."""
        limit = activation.routine_spec.max_concurrency
        gates = self._async_gates
        return gates.gate(activation.routine_id, limit) if limit and gates else None

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
        gate = self._async_gate(activation) if first is None else None
        with self._lock:
            self._await_locked(activation)

        def finish(task: asyncio.Task[Outcome]) -> None:
            try:
                outcome = _task_outcome(task, activation, first)
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
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            if self._awaiting:
                self._awaiting.discard(activation)
            if activation.state is not RUNNING:
                self._late_locked(activation, error, verdict)
                return
            activation.state = SETTLED
            children, activation.children = activation.children, None
            failed, letter = self._record_outcome_locked(activation, outcome, verdict)
            parked = self._take_parked_if_halted()
        finally:
            lock.release()
        if activation.watch is not None:
            activation.watch.cancel()
        self._note_interrupt(error)
        if letter is not None:  # kept before the activation counts as settled
            self._keep_letter(activation, letter)
        if activation.emitted is not None:
            outcome.emitted = activation.emitted
        assert self.observers is not None
        # Observers hear of the activation before it is counted as settled, so
        # the job's end (which the count may trigger) follows every end.
        self.observers.activation_ended(activation, outcome, start, end, failed)
        if (children is not None or self._checkpoint is not None) and self._release(
            activation, children, 1 + parked, queue=True
        ):
            return  # the step writer counts it once its step is durable
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
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            if activation.state is not RUNNING:
                raise RuntimeError(f"{activation!r} settled twice")
            activation.state = SETTLED
            self._record_success_locked(activation.routine_id, outcome.value)
            action = self._count_locked(1 + self._take_parked_if_halted())
        finally:
            lock.release()
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
        states = self._states_locked()
        if routine_id not in states:
            dict.__setitem__(states, routine_id, COMPLETED_STATE)
        if value is not None and routine_id in self.routes.sinks:
            self._outputs_locked().returned[routine_id] = value

    def _record_outcome_locked(
        self, activation: Activation, outcome: Outcome, verdict: Verdict | None
    ) -> tuple[bool, DeadLetter | None]:
        """Write an outcome to the JobState (lock held).

        Returns whether the job fails, and the dead letter to keep, if any.
        """
        error = outcome.error
        if error is None:
            self._record_success_locked(activation.routine_id, outcome.value)
            return False, None
        if isinstance(error, asyncio.CancelledError) and self._halted:
            return False, None  # our own cancel of an awaiting handler
        assert verdict is not None
        return self._apply_error(activation, error, verdict)

    def _release(
        self,
        activation: Activation,
        children: list[Activation] | None,
        settled: int = 0,
        queue: bool = False,
    ) -> bool:
        """Checkpoint a finished activation's step, then let its children run.

        With ``queue`` (a pool worker settling) and a step writer, the step may
        be queued to it instead: then True is returned, and the writer's thread
        lets the children run and counts ``settled`` activations once the step
        is durable (:meth:`steps_written`); this thread waits only while the
        store's window is full. Otherwise the caller counts them.
        """
        writer = self._writer_here() if queue else None
        stream = activation.stream
        if stream is None:
            queued = self._write_step(activation, children, writer, settled)
        else:
            self._end_stream(activation, stream)
            try:
                queued = self._write_step(activation, children, writer, settled)
            finally:
                stream.lock.release()
        if writer is not None and queued:
            writer.wait_for_room()
            return True
        if children:
            self._dispatch(children)
        return False

    def _writer_here(self) -> StepWriter | None:
        """The job's step writer, unless this thread must write its own steps.

        The event loop's thread (async handlers, remote calls) writes its own:
        it must never wait for the window. So does a job after a Ctrl-C.
        """
        checkpoint = self._checkpoint
        if checkpoint is None or checkpoint.writer is None or self.interrupt:
            return None
        if threading.get_ident() == aio.loop_thread_id():
            return None
        return checkpoint.writer

    def _write_step(
        self,
        activation: Activation,
        children: list[Activation] | None,
        writer: StepWriter | None = None,
        settled: int = 0,
    ) -> bool:
        """Write (or queue) a settled activation's step; True when queued.

        A failure fails the job, here for what is written or encoded here, on
        the writer's thread for a queued step.
        """
        checkpoint = self._checkpoint
        if checkpoint is not None and self.interrupt is None:
            # After a Ctrl-C (see _write_final) no step is recorded: what was
            # interrupted stays pending in the store and runs again on resume.
            try:
                step = checkpoint.step(
                    activation, children or (), self.job_state, queue=writer is not None
                )
            except BaseException as exc:  # noqa: BLE001 - a store failure fails the job
                self._step_failed(activation, exc)
                return False
            if step is not None:
                assert writer is not None
                try:
                    writer.submit(step, self, activation, children, settled)
                except BaseException as exc:  # noqa: BLE001 - no thread: the job fails
                    self._step_failed(activation, exc)
                    return False
                return True
            if activation.held:  # its held rows are in the store now
                self._stored(activation)
        return False

    def _step_failed(self, activation: Activation, exc: BaseException) -> None:
        self._break(
            activation, CheckpointError(f"checkpoint failed: {safe_text(exc)}"), exc
        )

    def steps_written(self, written: list[Written]) -> None:
        """Queued steps of this job are durable or failed (the writer's thread).

        As after steps written inline: a failure fails the job (its children
        are then dropped, as a halted job drops what it hands on), else the held
        rows count as stored; the children go to the lane and the activations
        (with those a halt took back) count as settled, in one go. Never
        raises: whatever fails here fails the job, and every activation is
        counted. The job's end, if this is it, runs on a thread of its own
        (:meth:`_finish_elsewhere`): the writer serves every job of the store.
        """
        settled = sum(count for _, _, count, _ in written)
        children = [child for _, made, _, _ in written if made for child in made]
        try:
            for activation, _, _, error in written:
                if error is not None:
                    self._step_failed(activation, error)
                elif activation.held:
                    self._stored(activation)
            if children:
                self._dispatch(children)
        except BaseException as exc:  # noqa: BLE001 - ends in the job, never lost
            self.fail(None, exc)
            # The lane takes what it is handed or says so (_hand): what is
            # still queued here never reached it.
            settled += self._drop_queued(children)
        finally:
            self._finish_elsewhere(settled)

    def _finish_elsewhere(self, settled: int) -> None:
        """Count ``settled``; a job's end (hooks, final checkpoint) off this thread.

        A hook that is slow, or waits for another job of the same store, must
        not hold up the writer every job of the store needs.
        """
        with self._lock:
            action = self._count_locked(settled)
        if not action:
            return
        ending = threading.Thread(
            target=self._conclude,
            args=(action,),
            name=f"routilux-job-end-{self.job_state.job_id}",
            daemon=True,
        )
        try:
            ending.start()
        except BaseException:  # noqa: BLE001 - no thread: end it here, as before
            self._conclude(action)

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
            self._hand(activations)
        else:
            self._finish(0)


def _task_outcome(
    task: asyncio.Task[Outcome], activation: Activation, first: Any
) -> Outcome:
    """The outcome of an activation's task on the event loop."""
    if not task.cancelled():
        return task.result()
    if inspect.iscoroutine(first) and (
        inspect.getcoroutinestate(first) == inspect.CORO_CREATED
    ):
        first.close()  # cancelled before it began: it will never be awaited
    return Outcome(error=asyncio.CancelledError(), attempts=activation.attempts)
