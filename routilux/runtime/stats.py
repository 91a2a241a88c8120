"""Flow statistics over every job a flow has run: counts, failures, percentiles.

Workers only append a duration to their routine's deque, and a job's status to
the deque of ended jobs (atomic, no lock, and no object for the garbage
collector to follow); the figures are folded in under
``FlowStats._lock`` when read, or when a deque grows long. Durations keep a
bounded window per routine (the latest ``WINDOW``), so memory stays flat however
long the flow runs.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from ..tracking import percentile

if TYPE_CHECKING:
    from ..job_status import JobStatus

__all__ = ["WINDOW", "FlowStats"]

#: Durations kept per routine for the percentiles.
WINDOW = 4096
_FOLD_AT = 8192


class _RoutineFigures:
    __slots__ = ("durations", "failed", "runs", "total_time")

    def __init__(self) -> None:
        self.runs = 0
        self.failed = 0
        self.total_time = 0.0
        self.durations: deque[float] = deque(maxlen=WINDOW)


class FlowStats:
    """Activation and job figures of one flow. Thread-safe."""

    def __init__(self) -> None:
        # routine id -> durations not yet folded in (floats: nothing for the
        # garbage collector to track). A routine's deque is made once, under the
        # lock; appends to it need none.
        self._inbox: dict[str, deque[float]] = {}
        # Guards _inbox's keys, _failures, _routines, _jobs and folding.
        self._lock = threading.Lock()
        self._failures: Counter[str] = Counter()  # failures not yet folded in
        self._routines: dict[str, _RoutineFigures] = {}
        self._jobs: Counter[JobStatus] = Counter()
        # Statuses of ended jobs not yet folded into _jobs: appending needs no
        # lock (every job ends here, from any worker).
        self._ended: deque[JobStatus] = deque()

    def add(self, routine_id: str, seconds: float, failed: bool) -> None:
        """Count one activation."""
        inbox = self._inbox.get(routine_id)
        if inbox is None:
            with self._lock:
                inbox = self._inbox.setdefault(routine_id, deque())
        inbox.append(seconds)
        if failed:
            with self._lock:
                self._failures[routine_id] += 1
        if len(inbox) > _FOLD_AT:
            self._fold()

    def job_ended(self, status: JobStatus) -> None:
        """Count a job that stopped with ``status``."""
        ended = self._ended
        ended.append(status)
        if len(ended) > _FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        with self._lock:
            for routine_id, inbox in self._inbox.items():
                figures = self._routines.get(routine_id)
                if figures is None:
                    figures = self._routines[routine_id] = _RoutineFigures()
                popleft = inbox.popleft
                taken = [popleft() for _ in range(len(inbox))]  # later ones wait
                figures.runs += len(taken)
                figures.total_time += sum(taken)
                figures.durations.extend(taken)
            jobs, take = self._jobs, self._ended.popleft
            for _ in range(len(self._ended)):  # later ones wait for the next fold
                jobs[take()] += 1
            for routine_id, count in self._failures.items():
                self._routines[routine_id].failed += count
            self._failures.clear()

    def snapshot(self) -> dict[str, Any]:
        """``{"jobs": {status: count}, "routines": {id: figures}}``."""
        self._fold()
        with self._lock:
            routines = {
                rid: _describe(figures)
                for rid, figures in sorted(self._routines.items())
            }
            jobs = {status.value: count for status, count in self._jobs.items()}
        return {"jobs": jobs, "routines": routines}


def _describe(figures: _RoutineFigures) -> dict[str, Any]:
    times = list(figures.durations)
    completed = figures.runs - figures.failed
    return {
        "total_executions": figures.runs,
        "completed": completed,
        "failed": figures.failed,
        "success_rate": completed / figures.runs if figures.runs else 0.0,
        "avg_execution_time": figures.total_time / figures.runs
        if figures.runs
        else 0.0,
        "min_execution_time": min(times, default=0.0),
        "max_execution_time": max(times, default=0.0),
        "p50_execution_time": percentile(times, 0.5),
        "p95_execution_time": percentile(times, 0.95),
    }
