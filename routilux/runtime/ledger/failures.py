"""Failures: a handler's error by its policy, timeouts, and errors around a task.

Every error ends in the job's ``errors`` and, when it fails the job, halts it; an
error that escaped the runtime itself (a store, a strategy, a bug) fails the job
with its cause recorded and settles the activation, so no waiter hangs.

A handler's error that ends its activation (whatever its policy then does, and a
timeout) also makes a dead letter (:mod:`..dead_letters`): made with the verdict,
outside the lock, chosen under it, and kept after the lock is released, before
the activation counts as settled. A letter the store cannot keep fails the job
with a :class:`~routilux.CheckpointError`, as any store failure does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from ...exceptions import CheckpointError, JoinIncompleteError, RoutineTimeoutError
from ...hooks import Outcome
from ...records import RoutineState, RoutineStatus
from .. import aio
from ..activation import DROPPED, PARKED, QUEUED, RUNNING, SETTLED, Activation
from ..dead_letters import make_letter
from ..invoker import error_record, outcome_status, safe_text
from .base import STOP_ON_ERROR, _put, _wall
from .completion import Completion

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...dead_letter import DeadLetter
    from ...records import ErrorRecord
    from ...resilience import ErrorHandler
    from .inboxes import InboxError

__all__ = ["Failures", "Verdict"]


class Verdict(NamedTuple):
    """What an error means for the job, decided before the ledger's lock is taken.

    Attributes:
        status: The routine status its error policy gives.
        record: The error's record.
        text: The error's message.
        policy_error: The record of an error the policy itself raised, or None.
        letter: The activation's dead letter, kept if the error ends it (None:
            the flow keeps none).
    """

    status: RoutineStatus
    record: ErrorRecord
    text: str
    policy_error: ErrorRecord | None
    letter: DeadLetter | None = None


_perf = time.perf_counter


class Failures(Completion):
    """Records errors and fails jobs; never lets an error escape."""

    __slots__ = ()

    def _judge(
        self, activation: Activation, exc: BaseException, handler: ErrorHandler | None
    ) -> Verdict:
        """Decide what an error means, outside any lock (it runs user code).

        Never raises: an error policy that raises fails the job, and its own
        error is recorded too.
        """
        route = activation.route
        rid, slot, attempt = route.routine_id, route.slot.name, activation.attempts
        record = error_record(rid, slot, exc, attempt)
        text = safe_text(exc)
        letter = None
        if self.dead_letters is not None:
            letter = make_letter(activation, exc, text)
        try:
            status = outcome_status(handler, exc)
        except BaseException as broken:  # noqa: BLE001 - recorded, and the job fails
            policy = error_record(rid, slot, broken, attempt)
            return Verdict(RoutineStatus.FAILED, record, text, policy, letter)
        return Verdict(status, record, text, None, letter)

    def _apply_error(
        self, activation: Activation, exc: BaseException, verdict: Verdict
    ) -> tuple[bool, DeadLetter | None]:
        """Record a handler's error by its verdict (lock held).

        Returns whether the job fails, and the dead letter to keep once the lock
        is released (see :meth:`_keep_letter`).
        """
        route = activation.route
        rid = route.routine_id
        if activation.aborted:
            # The job halted during a retry's wait: the error was recorded when
            # the retry was scheduled, and the halt is already decided. It is a
            # dead letter all the same: it will never run again.
            failed = RoutineState(
                status=RoutineStatus.FAILED.value,
                error=verdict.text,
                error_type=type(exc).__name__,
            )
            _put(self._states_locked(), rid, failed)
            return False, verdict.letter
        self._error(verdict.record, exc)
        if verdict.policy_error is not None:
            self._add_error_locked(verdict.policy_error)
        status = verdict.status
        handler = self._handler_of(activation)
        error = {"error": verdict.text, "error_type": type(exc).__name__}
        retried = handler is not None and handler.strategy == "retry"
        state = RoutineState(
            status=status.value,
            **error,
            retry_count=max(activation.attempts - 1, 0) if retried else None,
        )
        _put(self._states_locked(), rid, state)
        event = "error" if status is RoutineStatus.FAILED else status.value
        self._history.extend((rid, event, error, _wall()))
        if status is not RoutineStatus.FAILED:
            return False, verdict.letter
        self._halt_locked(
            STOP_ON_ERROR, f"{type(exc).__name__} in routine {rid!r}: {error['error']}"
        )
        return True, verdict.letter

    def _keep_letter(self, activation: Activation, letter: DeadLetter) -> None:
        """Keep a dead letter (no lock held). Never raises.

        A store that cannot keep it fails the job with a CheckpointError
        recorded; the letter stays in memory.
        """
        assert self.dead_letters is not None
        store = self._checkpoint.store if self._checkpoint is not None else None
        try:
            self.dead_letters.keep(letter, store)
        except BaseException as exc:  # noqa: BLE001 - a store failure fails the job
            self._break(
                activation,
                CheckpointError(
                    f"dead letter {letter.letter_id!r} of routine "
                    f"{letter.routine_id!r} could not be stored: "
                    f"{type(exc).__name__}: {safe_text(exc)}"
                ),
                exc,
            )

    def on_timeout(self, activation: Activation, timeout: float) -> None:
        """Settle an activation still running past its deadline (watchdog thread)."""
        route = activation.route
        error = RoutineTimeoutError(
            f"routine {route.routine_id!r} (slot {route.slot.name!r}) ran longer than "
            f"its timeout of {timeout:g}s; what it emits from now on is discarded"
        )
        verdict = self._judge(activation, error, self._handler_of(activation))
        with self._lock:
            if activation.state is not RUNNING:
                return  # it finished just in time
            # The handler still runs in its lane's thread: a blocking lane must
            # wait for what this thread submits, not end once the handler returns.
            held = self._hold_lane()
            activation.state = SETTLED
            activation.timed_out = True
            children, activation.children = activation.children, None
            failed, letter = self._apply_error(activation, error, verdict)
            parked = self._take_parked_if_halted()
            task = activation.task
        if task is not None:
            aio.call_soon(task.cancel)  # an async handler is stopped for real
        if letter is not None:
            self._keep_letter(activation, letter)
        outcome = Outcome(error=error, attempts=activation.attempts, timed_out=True)
        if activation.emitted is not None:
            outcome.emitted = activation.emitted
        assert self.observers is not None
        now = _perf()
        try:
            self.observers.activation_ended(
                activation, outcome, now - timeout, now, failed
            )
            self._release(activation, children)
        finally:
            if held is not None:
                held()
        self._finish(1 + parked)

    def _hold_lane(self) -> Callable[[], None] | None:
        """Hold a blocking lane (see ``JobLane``); returns its release, or None.

        Called with the lock held, while a handler of the job still runs in
        the lane's thread.
        """
        lane = self.lane
        hold = getattr(lane, "hold", None)
        if hold is None:
            return None
        hold()
        release: Callable[[], None] = lane.release  # type: ignore[union-attr]
        return release

    # -- failures around a handler --

    def _inbox_failed_locked(self, broken: InboxError) -> None:
        """A slot policy raised (a join that must fail): fail the job (lock held)."""
        route, error = broken.route, broken.error
        where = f"routine {route.routine_id!r} slot {route.slot.name!r}"
        if isinstance(error, JoinIncompleteError):
            error = JoinIncompleteError(
                f"{where}: {safe_text(error)}", error.missing, error.arrived
            )
            error.__cause__ = broken.error
        policy = route.policy.name if route.policy is not None else "each"
        self._error(error_record(route.routine_id, route.slot.name, error, 1), error)
        self._halt_locked(
            STOP_ON_ERROR,
            f"{type(error).__name__} in the {policy!r} policy of {where}: "
            f"{safe_text(error)}",
        )

    def fail(self, activation: Activation | None, exc: BaseException) -> None:
        """An error escaped a task or the runtime itself: fail the job, settle it.

        Never raises. Called by strategies (``Task.fail``) and by the ledger.
        """
        try:
            self._break(activation, exc, exc, settle=True)
        except BaseException:  # noqa: BLE001 - the very last resort
            from ..observers import log

            log.exception("job %s could not record a failure", self.job_state.job_id)
            self.job_state._mark_done()

    def _break(
        self,
        activation: Activation | None,
        error: BaseException,
        cause: BaseException,
        settle: bool = False,
    ) -> None:
        if error is not cause:
            error.__cause__ = cause
        settled = 0
        rid = activation.route.routine_id if activation is not None else ""
        slot = activation.route.slot.name if activation is not None else ""
        attempt = activation.attempts if activation is not None else 1
        record = error_record(rid, slot, error, attempt)
        reason = f"{type(error).__name__}: {safe_text(error)}"
        with self._lock:
            if settle and activation is not None:
                if activation.state in (QUEUED, RUNNING):
                    activation.state = SETTLED
                    if self._awaiting:
                        self._awaiting.discard(activation)
                    settled = 1
                    children, activation.children = activation.children, None
                    if children:  # counted as pending, never to be released
                        self._drop_locked(children)
                        settled += len(children)
                elif activation.state is PARKED:
                    self._parked.remove(activation)
                    activation.state = DROPPED
                    settled = 1
            self._error(record, error)
            self._halt_locked(STOP_ON_ERROR, reason)
            parked = self._take_parked_if_halted()
        assert self.observers is not None
        self.observers.job_failed(error)
        if settled or parked:
            self._finish(settled + parked)

    def _drop_queued(self, activations: list[Activation]) -> int:
        """Drop those of ``activations`` still queued; return how many."""
        with self._lock:
            left = [a for a in activations if a.state is QUEUED]
            self._drop_locked(left)
        if self._pressure is not None:
            for activation in left:
                self._uncount(activation)
        return len(left)

    def _refused(self, activations: list[Activation], error: BaseException) -> None:
        """The lane refused ``activations`` (counted, queued): fail, drop them."""
        self._break(None, error, error)
        left = self._drop_queued(activations)
        if left:
            self._finish(left)

    def drop(self, activation: Activation, reason: str) -> None:
        """Account for an activation that will not run (its strategy shut down)."""
        if self._pressure is not None:
            self._uncount(activation)
        with self._lock:
            if activation.state is not QUEUED:
                return
            self._drop_locked((activation,))
        self.halt(reason)
        self._finish(1)
