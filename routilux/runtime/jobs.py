"""The active jobs of one flow: what ``wait_for_completion`` waits for."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .._locks import take_contended
from ..checks import wait_limit

if TYPE_CHECKING:
    from ..tracking import ExecutionTracker
    from .ledger import JobLedger
    from .observers import Observers

__all__ = ["FlowJobs"]


class FlowJobs:
    """The active jobs of one flow, for ``wait_for_completion``. Thread-safe.

    It also keeps what ``flow.execution_tracker`` reads (:attr:`latest`): the
    observers of the job added last while it runs, which make its tracker only
    if somebody asks; once it stops, that tracker, which holds its records but
    not the job.
    """

    def __init__(self) -> None:
        # Guards _active and _waiting.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._active: dict[str, JobLedger] = {}
        # Threads in wait(): a job's end wakes no one when there are none (a
        # Condition's notify costs more than the rest of discard).
        self._waiting = 0
        #: The observers of the job added last, or its tracker once it stopped
        #: (or a tracker a user set). Written under the lock.
        self.latest: Observers | ExecutionTracker | None = None

    def add(self, run: JobLedger) -> None:
        """Count ``run`` as active."""
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            self._active[run.job_state.job_id] = run
            self.latest = run.observers
        finally:
            lock.release()

    def discard(self, run: JobLedger) -> None:
        """Stop counting ``run``; wake waiters when none is left."""
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            self._active.pop(run.job_state.job_id, None)
            observers = run.observers
            if observers is not None and self.latest is observers:
                self.latest = observers.tracker()
            if not self._active and self._waiting:
                self._changed.notify_all()
        finally:
            lock.release()

    def set_latest(self, tracker: ExecutionTracker | None) -> None:
        """What ``flow.execution_tracker`` reads until the next job is added."""
        with self._lock:
            self.latest = tracker

    def get(self, job_id: str) -> JobLedger | None:
        """The active run of ``job_id``, or None."""
        with self._lock:
            return self._active.get(job_id)

    def all(self) -> list[JobLedger]:
        """Every active run."""
        with self._lock:
            return list(self._active.values())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is active; False when ``timeout`` passed first."""
        with self._changed:
            self._waiting += 1
            try:
                return self._changed.wait_for(
                    lambda: not self._active, wait_limit(timeout)
                )
            finally:
                self._waiting -= 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._active)
