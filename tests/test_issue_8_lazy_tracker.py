"""Issue 8: a job's ExecutionTracker is made only when somebody reads it.

A job waiting in a backlog holds no tracker and no record lists (objects the
garbage collector walks again and again); ``flow.execution_tracker`` still
describes the job started last, with every record, on both strategies.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

import pytest

from routilux import ExecutionTracker, Flow, JobState, JobStatus, Routine


class _Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, value: int = 0) -> None:
        self.emit("output", value=value)


class _Sink(Routine):
    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.gate = gate
        self.define_slot("input", handler=self.take)

    def take(self, value: int) -> int:
        if self.gate is not None:
            assert self.gate.wait(10)
        return value


def _flow(strategy: str, gate: threading.Event | None = None) -> Flow:
    flow = Flow(execution_strategy=strategy, max_workers=2)
    flow.add_routine(_Source(), "source")
    flow.add_routine(_Sink(gate), "sink")
    flow.connect("source", "output", "sink", "input")
    return flow


def _runs(tracker: ExecutionTracker) -> dict[str, int]:
    return {rid: len(runs) for rid, runs in tracker.routine_executions.items()}


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_8_the_tracker_describes_the_job_started_last(strategy: str) -> None:
    with _flow(strategy) as flow:
        assert flow.execution_tracker is None  # no job yet
        for value in range(5):
            flow.execute("source", {"value": value})
        assert flow.wait_for_completion(10)
        tracker = flow.execution_tracker
        assert tracker is not None
        assert tracker is flow.execution_tracker  # the same object each time
        assert _runs(tracker) == {"source": 1, "sink": 1}
        [event] = tracker.event_flow
        assert (event["source_routine_id"], event["target_routine_id"]) == (
            "source",
            "sink",
        )
        assert event["data"] == {"value": 4}
        assert tracker.get_flow_performance()["total_events"] == 1


def test_issue_8_a_tracker_read_before_the_job_runs_sees_its_records() -> None:
    gate = threading.Event()
    with _flow("concurrent", gate) as flow:
        job = flow.execute("source", {"value": 7})
        tracker = flow.execution_tracker  # made now, while the sink waits
        assert tracker is not None
        gate.set()
        assert job.wait(10)
        assert _runs(tracker) == {"source": 1, "sink": 1}
        assert flow.execution_tracker is tracker


def test_issue_8_a_tracker_set_by_hand_stays_until_the_next_job() -> None:
    with _flow("sequential") as flow:
        mine = ExecutionTracker("mine")
        flow.execution_tracker = mine
        assert flow.execution_tracker is mine
        flow.execute("source", {"value": 1})
        assert flow.execution_tracker is not mine
        assert _runs(flow.execution_tracker) == {"source": 1, "sink": 1}
        flow.execution_tracker = None
        assert flow.execution_tracker is None


def test_issue_8_the_tracker_keeps_no_finished_job_alive() -> None:
    with _flow("sequential") as flow:
        job = flow.execute("source", {"value": 1})
        ref: weakref.ref[JobState] = weakref.ref(job)
        del job
        gc.collect()
        assert ref() is None
        assert _runs(flow.execution_tracker) == {"source": 1, "sink": 1}


def test_issue_8_the_tracker_honours_history_limit() -> None:
    class Many(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.fire)
            self.define_event("output", ["value"])

        def fire(self) -> None:
            for value in range(50):
                self.emit("output", value=value)

    flow = Flow(execution_strategy="concurrent", max_workers=2, history_limit=5)
    flow.add_routine(Many(), "source")
    flow.add_routine(_Sink(), "sink")
    flow.connect("source", "output", "sink", "input")
    with flow:
        assert flow.execute("source").wait(10)
        tracker = flow.execution_tracker
        assert sum(_runs(tracker).values()) == 5
        assert len(tracker.event_flow) == 5


def test_issue_8_readers_racing_the_runtime_share_one_tracker() -> None:
    # Many threads read the tracker of a job as its activations end: they all
    # get the same tracker, and it holds every record exactly once.
    for _ in range(20):
        gate = threading.Event()
        with _flow("concurrent", gate) as flow:
            job = flow.execute("source", {"value": 1})
            seen: list[Any] = []
            start = threading.Barrier(9)

            def read(start: threading.Barrier, seen: list[Any]) -> None:
                start.wait(10)
                seen.append(flow.execution_tracker)

            readers = [
                threading.Thread(target=read, args=(start, seen)) for _ in range(8)
            ]
            for reader in readers:
                reader.start()
            start.wait(10)
            gate.set()
            for reader in readers:
                reader.join(10)
            assert job.wait(10)
            assert job.status is JobStatus.COMPLETED
            assert len(seen) == 8
            assert all(tracker is seen[0] for tracker in seen)
            assert _runs(seen[0]) == {"source": 1, "sink": 1}
