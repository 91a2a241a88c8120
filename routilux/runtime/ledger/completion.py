"""Completion: how a job ends.

The completion rule (done when nothing is queued, running or parked; paused when
everything pending is parked), the final checkpoint write, observers' ``job_end``
and waking waiters. Waiters are always woken, whatever failed on the way (see
``_stopped``). What the job produced is kept in :mod:`.outputs`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..._locks import take_contended
from ...exceptions import CheckpointError
from ...job_state import JobStatus
from ..invoker import error_record, safe_text
from .base import STOP_ON_ERROR, _wall
from .pausing import Pausing

__all__ = ["Completion"]

_DONE = 1
_PAUSED = 2
_FLUSH = 3  # nothing pending, but inboxes wait: flush them (see JobLedger)


class Completion(Pausing):
    """Ends jobs: completion, pause and the final write."""

    __slots__ = ()

    def abandon(self, error: BaseException) -> None:
        """The job could not start (its store failed): end it as failed, at once."""
        record = error_record(self.job_state.current_routine_id or "", "", error, 1)
        with self._lock:
            self._error(record, error)
            self._halted = STOP_ON_ERROR
            self._pending = 0
            self._set(
                status=JobStatus.FAILED,
                cancel_source=STOP_ON_ERROR,
                cancel_reason=f"the job could not start: {safe_text(error)}",
            )
        if self._stop_event is not None:
            self._stop_event.set()
        self.job_state._mark_done()

    # -- completion --

    def _finish(self, settled: int) -> None:
        with self._lock:
            action = self._count_locked(settled)
        if action:
            self._conclude(action)

    def _count_locked(self, settled: int) -> int:
        """Count ``settled`` activations as done (lock held).

        Returns what the job must do next: 0 nothing, ``_DONE`` complete,
        ``_PAUSED`` pause (its status already written), ``_FLUSH`` flush the
        inboxes still waiting (a join's last round), which may start more work.
        """
        self._pending -= settled
        if self._pending == 0 and not self._ended:
            inboxes = self._inboxes
            if self._halted is None and inboxes is not None and inboxes.waiting():
                return _FLUSH
            self._ended = True  # pause and cancel now find a finished job
            return _DONE
        if self._ended:
            return 0
        if (
            self._paused
            and not self._pause_settled
            and self._pending == len(self._parked)
        ):
            self._pause_settled = True
            self._set(
                pending_tasks=self._tasks([a.describe() for a in self._parked]),
                status=JobStatus.PAUSED,
            )
            return _PAUSED
        return 0

    def _conclude(self, action: int) -> None:
        """Complete or pause the job, as :meth:`_count_locked` decided."""
        if action == _PAUSED:
            self._stopped(save=True)
        else:
            self._complete()

    def _complete(self) -> None:
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            entry = self.job_state.current_routine_id or ""
            if self._halted is None:
                status = JobStatus.COMPLETED
                self._history.extend((entry, "completed", {}, _wall()))
            elif self._halted == STOP_ON_ERROR:
                status = JobStatus.FAILED
                if self._dropped:
                    self._history.extend(
                        (entry, "dropped", {"count": self._dropped}, _wall())
                    )
            else:
                status = JobStatus.CANCELLED
                record = {"source": self._halted, "dropped": self._dropped}
                self._history.extend((entry, "cancelled", record, _wall()))
            values = self.job_state.__dict__  # what _set does, without a kwargs dict
            values["status"] = status
            values["updated_at"] = datetime.now(timezone.utc)
            if values["pending_tasks"]:  # a paused job cancelled: none is left
                self._set(pending_tasks=self._tasks([]))
        finally:
            lock.release()
        self._stopped(save=False)

    def _stopped(self, save: bool) -> None:
        """The job stopped running: write it out, tell observers, wake waiters."""
        try:
            if self._deadline is not None and not save:
                self._deadline.cancel()
            if self._checkpoint is not None:
                self._write_final(save)
            if self.remote is not None:  # before any waiter wakes
                self._remote_ended()
            assert self.observers is not None
            self.observers.job_ended()
        finally:
            if save:  # paused: resume() must find it filed as paused first
                self._on_done(self)
                with self._lock:
                    # A resume may have restarted the job in between: then it
                    # runs, and no waiter must be told it stopped.
                    still_paused = self._pause_settled and self._paused
                if still_paused:
                    self.job_state._mark_done()
            else:
                try:
                    self._share_empty_lists()
                finally:  # waiters are woken, whatever happened
                    self.job_state._mark_done()
                    self._on_done(self)

    def _remote_ended(self) -> None:
        """Let a remote strategy bring back what its workers kept (their stats)."""
        assert self.remote is not None
        try:
            self.remote.job_ended(self.job_state)
        except Exception as exc:  # noqa: BLE001 - recorded in the job
            self.record_hook_error(f"{type(self.remote).__name__}.job_ended", exc)

    def _write_final(self, paused: bool) -> None:
        assert self._checkpoint is not None
        try:
            if self.interrupt is not None:
                # Ctrl-C in a sequential job: the store keeps the job as a crash
                # would leave it (running, the interrupted activation pending)
                # so that resume() runs it again; only the lease is given up.
                self._checkpoint.release()
            elif paused:
                self._checkpoint.save(self.job_state)
            else:
                self._checkpoint.end(self.job_state)
        except BaseException as exc:  # noqa: BLE001 - the job fails, visibly
            error = CheckpointError(
                f"job {self.job_state.job_id!r}: the final checkpoint failed: "
                f"{type(exc).__name__}: {safe_text(exc)}"
            )
            error.__cause__ = exc
            with self._lock:
                self._error(error_record("", "", error, 1), error)
                if self._halted is None:
                    self._halted = STOP_ON_ERROR
                    self._set(
                        cancel_source=STOP_ON_ERROR, cancel_reason=safe_text(error)
                    )
                self._set(status=JobStatus.FAILED)
            assert self.observers is not None
            self.observers.job_failed(error)
