"""Flow statistics over every job a flow has run: counts, failures, percentiles.

Workers only append ``(routine_id, seconds, failed)`` to a deque (atomic, no lock);
the figures are folded in under ``FlowStats._lock`` when read, or when the deque
grows long. Durations keep a bounded window per routine (the latest
``WINDOW``), so memory stays flat however long the flow runs.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

from ..tracking import percentile

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
        self._inbox: deque[tuple[str, float, bool]] = deque()
        # Guards _routines and _jobs (folding the inbox).
        self._lock = threading.Lock()
        self._routines: dict[str, _RoutineFigures] = {}
        self._jobs: Counter[str] = Counter()

    def add(self, routine_id: str, seconds: float, failed: bool) -> None:
        """Count one activation."""
        self._inbox.append((routine_id, seconds, failed))
        if len(self._inbox) > _FOLD_AT:
            self._fold()

    def job_ended(self, status: str) -> None:
        """Count a job that stopped with ``status``."""
        with self._lock:
            self._jobs[status] += 1

    def _fold(self) -> None:
        inbox = self._inbox
        popleft = inbox.popleft
        with self._lock:
            routines = self._routines
            last_id: str | None = None
            figures = _RoutineFigures()
            for _ in range(len(inbox)):  # what is there now; later ones wait
                routine_id, seconds, failed = popleft()
                if routine_id != last_id:  # runs of one routine are common
                    found = routines.get(routine_id)
                    if found is None:
                        found = routines[routine_id] = _RoutineFigures()
                    figures, last_id = found, routine_id
                figures.runs += 1
                if failed:
                    figures.failed += 1
                figures.total_time += seconds
                figures.durations.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        """``{"jobs": {status: count}, "routines": {id: figures}}``."""
        self._fold()
        with self._lock:
            routines = {
                rid: _describe(figures)
                for rid, figures in sorted(self._routines.items())
            }
            jobs = dict(self._jobs)
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
