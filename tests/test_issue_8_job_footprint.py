"""Issue 8: what a job holds while it runs or waits, and that sharing stays safe.

A job that has not written its ``errors``, ``pause_points`` or outputs yet holds
shared empty ones (the garbage collector walks every object a backlog of jobs
holds, again and again). These tests check that a write always gives the job
its own, so that nothing one job records shows up in another, on both
strategies and under many threads.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from routilux import Flow, JobStatus, Routine
from routilux.runtime.ledger import JobLedger


class _Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, value: int = 0, fail: bool = False) -> None:
        if fail:
            raise ValueError(f"failed on {value}")
        self.emit("output", value=value)


class _Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: int) -> int:
        return value * 10


def _flow(strategy: str) -> Flow:
    flow = Flow(execution_strategy=strategy, max_workers=4)
    flow.add_routine(_Source(), "source")
    flow.add_routine(_Sink(), "sink")
    flow.connect("source", "output", "sink", "input")
    return flow


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_8_errors_and_results_stay_with_their_job(strategy: str) -> None:
    for _ in range(3):
        with _flow(strategy) as flow:
            jobs = []
            for value in range(60):
                params = {"value": value, "fail": value % 3 == 0}
                jobs.append((value, flow.execute("source", params)))
            assert flow.wait_for_completion(30)
            for value, job in jobs:
                if value % 3 == 0:
                    assert job.status is JobStatus.FAILED
                    assert len(job.errors) == 1
                    assert job.errors[0].message == f"failed on {value}"
                else:
                    assert job.status is JobStatus.COMPLETED
                    assert list(job.errors) == []
                    assert job.result() == {"sink": value * 10}


def test_issue_8_a_pause_point_is_the_paused_job_s_own() -> None:
    gate = threading.Event()

    class Slow(_Sink):
        def take(self, value: int) -> int:
            gate.wait(10)
            return value

    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(_Source(), "source")
    flow.add_routine(Slow(), "sink")
    flow.connect("source", "output", "sink", "input")
    with flow:
        paused = flow.execute("source", {"value": 1})
        other = flow.execute("source", {"value": 2})
        assert flow.pause(paused, reason="look")
        gate.set()
        assert paused.wait(10)
        assert paused.status is JobStatus.PAUSED
        assert [point["reason"] for point in paused.pause_points] == ["look"]
        assert other.wait(10)
        assert list(other.pause_points) == []
        fresh = flow.execute("source", {"value": 3})
        assert fresh.wait(10)
        assert list(fresh.pause_points) == []
        flow.resume(paused)
        assert paused.wait(10)
        assert paused.status is JobStatus.COMPLETED


def test_issue_8_a_job_without_outputs_shares_the_empty_ones() -> None:
    # A sink that returns nothing: the job holds no outputs of its own, and its
    # result is still right.
    class Quiet(_Sink):
        def take(self, value: int) -> None:  # type: ignore[override]
            return None

    flow = Flow()
    flow.add_routine(_Source(), "source")
    flow.add_routine(Quiet(), "sink")
    flow.connect("source", "output", "sink", "input")
    first = flow.execute("source", {"value": 1})
    second = flow.execute("source", {"value": 2})
    assert first.result() == {} and second.result() == {}
    assert first._outputs is second._outputs  # one shared, empty
    failing = flow.execute("source", {"value": 3, "fail": True})
    assert failing._outputs is not first._outputs
    with pytest.raises(Exception, match="failed on 3"):
        failing.result()
    assert first.result() == {}


def test_issue_8_a_ledger_has_no_instance_dict() -> None:
    assert not hasattr(JobLedger, "__dictoffset__") or JobLedger.__dictoffset__ == 0


def test_issue_8_a_waiting_job_holds_few_objects() -> None:
    # What a backlog of queued jobs costs the garbage collector: objects per job.
    gate = threading.Event()

    class Blocking(_Sink):
        def take(self, value: int) -> int:
            gate.wait(10)
            return value

    flow = Flow(execution_strategy="concurrent", max_workers=1)
    flow.add_routine(_Source(), "source")
    flow.add_routine(Blocking(), "sink")
    flow.connect("source", "output", "sink", "input")
    with flow:
        flow.execute("source", {"value": 0})
        gc.collect()
        before = len(gc.get_objects())
        jobs: list[Any] = [flow.execute("source", {"value": 1}) for _ in range(200)]
        per_job = (len(gc.get_objects()) - before) / len(jobs)
        gate.set()
        assert flow.wait_for_completion(30)
    # JobState (3), history (2), latch, ledger and its lock, observers and
    # activation: 10 (no tracker: made only if somebody reads it; no FIFO: a
    # job's only ready task waits as itself). Before the diet it was 24.
    assert per_job <= 11, per_job


def test_issue_8_routine_states_written_by_hand_stay_with_their_job() -> None:
    # update_routine_state on a job a flow runs, before its first activation
    # settled: the job gets states of its own; no other job sees them.
    gate = threading.Event()

    class Blocking(_Sink):
        def take(self, value: int) -> int:
            gate.wait(10)
            return value

    flow = Flow(execution_strategy="concurrent", max_workers=1)
    flow.add_routine(_Source(), "source")
    flow.add_routine(Blocking(), "sink")
    flow.connect("source", "output", "sink", "input")
    with flow:
        first = flow.execute("source", {"value": 1})
        queued = flow.execute("source", {"value": 2})
        other = flow.execute("source", {"value": 3})
        queued.update_routine_state("sink", {"status": "noted"})
        assert queued.get_routine_state("sink").status == "noted"
        assert other.get_routine_state("sink") is None
        assert first.get_routine_state("sink") is None
        gate.set()
        assert flow.wait_for_completion(10)
    # What the job recorded by hand stays; its routines' own ends are recorded.
    assert queued.get_routine_state("sink").status == "noted"
    assert queued.get_routine_state("source").status == "completed"
    assert other.get_routine_state("sink").status == "completed"
    fresh = Flow()
    fresh.add_routine(_Source(), "source")
    assert fresh.execute("source").get_routine_state("sink") is None
