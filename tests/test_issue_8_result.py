"""Issue 8: job results, and JobStates the runtime owns are read-only views."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import (
    Flow,
    JobCancelledError,
    JobFailedError,
    JobState,
    JobStateError,
    JobStatus,
    Routine,
)
from tests.routines import Boom

WAIT = 10.0


class Step(Routine):
    """Adds one to ``value``; emits it and returns it."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.step)
        self.define_slot("trigger", handler=self.step)
        self.define_event("output", ["value"])

    def step(self, value: int = 0) -> int:
        self.emit("output", value=value + 1)
        return value + 1


class Emitter(Routine):
    """Emits ``value * 10`` on an event nothing consumes; returns None."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.define_event("spare", ["value"])

    def take(self, value: int) -> None:
        self.emit("spare", value=value * 10)


def three_chain(strategy: str) -> Flow:
    flow = Flow(execution_strategy=strategy)
    for rid in ("a", "b", "c"):
        flow.add_routine(Step(), rid)
    flow.connect("a", "output", "b", "input")
    flow.connect("b", "output", "c", "input")
    return flow


def test_issue_8_result_of_a_three_routine_chain(strategy: str) -> None:
    with three_chain(strategy) as flow:
        job = flow.execute("a", {"value": 1})
        assert job.result(WAIT) == {"c": 4}


def test_issue_8_result_holds_unconsumed_emits_of_sinks(strategy: str) -> None:
    with three_chain(strategy) as flow:
        flow.add_routine(Emitter(), "e")
        flow.connect("b", "output", "e", "input")
        job = flow.execute("a", {"value": 0})
        assert job.result(WAIT) == {"c": 3, "e": {"value": 20}}


def test_issue_8_failed_job_raises_job_failed_error(strategy: str) -> None:
    with Flow(execution_strategy=strategy) as flow:
        flow.add_routine(Boom(), "boom")
        job = flow.execute("boom")
        with pytest.raises(JobFailedError, match="boom") as raised:
            job.result(WAIT)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert str(raised.value.__cause__) == str(job.errors[0].message)


class Blocker(Routine):
    """Blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.define_slot("trigger", handler=self.block)

    def block(self) -> str:
        self.entered.set()
        self.release.wait(WAIT)
        return "done"


def test_issue_8_result_times_out_then_cancelled_job_raises() -> None:
    with Flow(execution_strategy="concurrent", max_workers=2) as flow:
        blocker = Blocker()
        flow.add_routine(blocker, "b")
        job = flow.execute("b")
        assert blocker.entered.wait(WAIT)
        with pytest.raises(TimeoutError):
            job.result(timeout=0.01)
        flow.cancel(job, "stop it")
        blocker.release.set()
        with pytest.raises(JobCancelledError, match="stop it"):
            job.result(WAIT)


def test_issue_8_status_of_an_owned_job_is_read_only(strategy: str) -> None:
    with three_chain(strategy) as flow:
        job = flow.execute("a", {"value": 0})
        assert job.wait(WAIT)
    assert job.is_owned
    with pytest.raises(JobStateError, match="read-only"):
        job.status = JobStatus.FAILED
    with pytest.raises(JobStateError):
        job.cancel_reason = "nope"
    assert job.status is JobStatus.COMPLETED


def test_issue_8_a_hand_built_job_state_stays_editable(tmp_path: Any) -> None:
    state = JobState("flow")
    state.status = "running"  # type: ignore[assignment]
    assert state.status is JobStatus.RUNNING
    state.save(tmp_path / "job.json")
    loaded = JobState.load(tmp_path / "job.json")
    loaded.status = JobStatus.PAUSED
    assert not loaded.is_owned
    with pytest.raises(JobStateError, match="not run by a flow"):
        JobState("f", status="completed").result(0)


def test_issue_8_runtime_job_states_equal_validated_ones() -> None:
    fast = JobState._for_run("f")
    slow = JobState("f", job_id=fast.job_id)
    slow_fields = slow.model_dump()
    fast_fields = fast.model_dump()
    for moment in ("created_at", "updated_at"):
        slow_fields.pop(moment)
        fast_fields.pop(moment)
    assert fast_fields == slow_fields
    assert set(fast.__dict__) == set(JobState.model_fields)
    assert fast.__pydantic_private__ is not None
    assert slow.__pydantic_private__ is not None
    assert set(fast.__pydantic_private__) == set(slow.__pydantic_private__)


def test_issue_8_a_kept_job_does_not_keep_its_ledger(strategy: str) -> None:
    import gc
    import weakref

    from routilux.hooks import FlowHooks

    ledgers: list[weakref.ref[Any]] = []

    class Grab(FlowHooks):
        def on_job_start(self, job: JobState) -> None:
            import inspect

            frame = inspect.currentframe()
            while frame is not None and "self" not in frame.f_locals:
                frame = frame.f_back
            while frame is not None:
                owner = frame.f_locals.get("self")
                if type(owner).__name__ == "JobLedger":
                    ledgers.append(weakref.ref(owner))
                    return
                frame = frame.f_back

    with three_chain(strategy) as flow:
        flow.add_hooks(Grab())
        jobs = [flow.execute("a", {"value": 0}) for _ in range(3)]
        assert flow.wait_for_completion(WAIT)
    gc.collect()
    assert len(ledgers) == 3
    assert all(ref() is None for ref in ledgers)
    assert [job.result() for job in jobs] == [{"c": 3}] * 3
