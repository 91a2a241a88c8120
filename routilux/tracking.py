"""ExecutionTracker: per-routine timings and the flow of events during one job.

While a job runs the tracker appends its records' cells to two flat lists (cheap,
and kept out of the garbage collector's way, see :mod:`routilux.record_log`); the
dict views that 0.9 users read are built when asked for.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import TYPE_CHECKING, Any

from .record_log import new_cells, records_of

if TYPE_CHECKING:
    from collections import deque

__all__ = ["ExecutionTracker", "percentile"]

#: (routine_id, start, end, params, status, result_or_error)
RunEntry = tuple[str, float, float, Any, str, Any]
#: (timestamp, source_routine_id, event_name, target_routine_ids, data)
EventEntry = tuple[float, str, str, tuple[str, ...], Any]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank); 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class ExecutionTracker:
    """Records routine executions and events of one job, by flow routine id.

    Args:
        flow_id: The flow's id.
        limit: Keep at most this many runs and this many events (the oldest go
            first); None keeps all. Flows pass their ``history_limit``.

    Thread-safe: records may come from many worker threads at once.
    """

    #: Guards ``_open``, the pairing of record_routine_start/end calls: one lock
    #: for all trackers (every job has one, and few make those calls).
    _lock = threading.Lock()

    def __init__(self, flow_id: str = "", limit: int | None = None) -> None:
        self._set_up(flow_id, new_cells(6, limit), new_cells(5, limit))

    def _set_up(
        self,
        flow_id: str,
        runs: list[Any] | deque[Any],
        events: list[Any] | deque[Any],
    ) -> None:
        self.flow_id = flow_id
        # The flat cells of the run and event records (see routilux.record_log):
        # a RecordLog around each would be two more objects per job.
        self._runs = runs
        self._events = events
        # Made by the first record_routine_start (most trackers get none).
        self._open: dict[tuple[str, int], tuple[float, Any]] | None = None

    @classmethod
    def over(
        cls,
        flow_id: str,
        runs: list[Any] | deque[Any],
        events: list[Any] | deque[Any],
    ) -> ExecutionTracker:
        """A tracker reading (and writing) cells the runtime keeps for a job.

        ``runs`` holds a :data:`RunEntry` per activation, ``events`` an
        :data:`EventEntry` per emit, one cell after another (see
        :mod:`routilux.record_log`).
        """
        tracker = cls.__new__(cls)
        tracker._set_up(flow_id, runs, events)
        return tracker

    # -- recording -------------------------------------------------------------------

    def record_routine_start(self, routine_id: str, params: Any = None) -> None:
        """Mark the start of an execution of ``routine_id`` in this thread."""
        with self._lock:
            if self._open is None:
                self._open = {}
            self._open[(routine_id, threading.get_ident())] = (time.time(), params)

    def record_routine_end(
        self,
        routine_id: str,
        status: str = "completed",
        result: Any = None,
        error: Any = None,
    ) -> None:
        """Close the execution opened by :meth:`record_routine_start` in this thread.

        Ignored when no start was recorded for ``routine_id`` in this thread (a
        run without a start has no duration to report).
        """
        now = time.time()
        with self._lock:
            key = (routine_id, threading.get_ident())
            opened = None if self._open is None else self._open.pop(key, None)
        if opened is None:
            return
        start, params = opened
        outcome = error if error is not None else result
        self._runs.extend((routine_id, start, now, params, status, outcome))

    def record_event(
        self,
        source_id: str,
        event_name: str,
        target_id: str | None = None,
        data: Any = None,
    ) -> None:
        """Record an event from ``source_id`` (to ``target_id`` if known)."""
        targets = (target_id,) if target_id is not None else ()
        self._events.extend((time.time(), source_id, event_name, targets, data))

    # -- views -----------------------------------------------------------------------

    def _run_records(self) -> list[RunEntry]:
        return records_of(self._runs, 6)

    @property
    def routine_executions(self) -> dict[str, list[dict[str, Any]]]:
        """Routine id -> execution records, oldest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        for routine_id, start, end, params, status, outcome in self._run_records():
            record = {
                "routine_id": routine_id,
                "start_time": start,
                "end_time": end,
                "params": params,
                "status": status,
                "execution_time": end - start,
            }
            record["error" if status == "failed" else "result"] = outcome
            out.setdefault(routine_id, []).append(record)
        return out

    @property
    def event_flow(self) -> list[dict[str, Any]]:
        """One record per event and target routine, oldest first."""
        events: list[EventEntry] = records_of(self._events, 5)
        return [
            {
                "timestamp": timestamp,
                "source_routine_id": source_id,
                "event_name": event_name,
                "target_routine_id": target,
                "data": data,
            }
            for timestamp, source_id, event_name, targets, data in events
            for target in targets or (None,)
        ]

    @property
    def performance_metrics(self) -> dict[str, Any]:
        """Per-routine performance plus the flow totals."""
        routine_ids = sorted({entry[0] for entry in self._run_records()})
        return {
            "routines": {rid: self.get_routine_performance(rid) for rid in routine_ids},
            "flow": self.get_flow_performance(),
        }

    def get_routine_performance(self, routine_id: str) -> dict[str, Any] | None:
        """Counts and timings of ``routine_id``, or None when it never ran."""
        runs = [entry for entry in self._run_records() if entry[0] == routine_id]
        if not runs:
            return None
        times = [end - start for _, start, end, *_ in runs]
        completed = sum(1 for entry in runs if entry[4] != "failed")
        return {
            "total_executions": len(runs),
            "completed": completed,
            "failed": len(runs) - completed,
            "success_rate": completed / len(runs),
            "avg_execution_time": statistics.fmean(times),
            "min_execution_time": min(times),
            "max_execution_time": max(times),
            "p50_execution_time": percentile(times, 0.5),
            "p95_execution_time": percentile(times, 0.95),
        }

    def get_flow_performance(self) -> dict[str, Any]:
        """Totals over the job: routines run, events, execution time."""
        runs = self._run_records()
        total = sum(end - start for _, start, end, *_ in runs)
        return {
            "total_routines": len({entry[0] for entry in runs}),
            "total_events": len(self._events) // 5,
            "total_execution_time": total,
            "avg_routine_time": total / len(runs) if runs else 0.0,
        }
