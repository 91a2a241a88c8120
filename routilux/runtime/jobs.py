"""The active jobs of one flow: what ``wait_for_completion`` waits for."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..checks import wait_limit

if TYPE_CHECKING:
    from .ledger import JobLedger

__all__ = ["FlowJobs"]


class FlowJobs:
    """The active jobs of one flow, for ``wait_for_completion``. Thread-safe."""

    def __init__(self) -> None:
        # Guards _active.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._active: dict[str, JobLedger] = {}

    def add(self, run: JobLedger) -> None:
        """Count ``run`` as active."""
        with self._lock:
            self._active[run.job_state.job_id] = run

    def discard(self, run: JobLedger) -> None:
        """Stop counting ``run``; wake waiters when none is left."""
        with self._lock:
            self._active.pop(run.job_state.job_id, None)
            if not self._active:
                self._changed.notify_all()

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
            return self._changed.wait_for(lambda: not self._active, wait_limit(timeout))

    def __len__(self) -> int:
        with self._lock:
            return len(self._active)
