"""Issue 11: a resume the flow refuses leaves the job (and the flow) as they were.

A paused JobState made elsewhere (loaded from a document, as 0.9 code and the
cross-host recipe do) is checked in full before the flow takes it over: a pending
task aimed at a routine or slot the flow lacks, a payload that is not a dict or a
bad lane raises ConfigurationError, and the job stays unowned and editable, so it
can be fixed and resumed.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import ConfigurationError, Flow, JobState, QueueFullError, Routine
from routilux.persistence import JsonFileCheckpointStore


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("output", ["value"])

    def start(self) -> None:
        self.emit("output", value=1)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.define_slot("input", handler=self.take)

    def take(self, value: Any) -> None:
        self.seen.append(value)


def _flow(strategy: str = "sequential", **options: Any) -> Flow:
    flow = Flow("resumed", execution_strategy=strategy, **options)
    flow.add_routine(Source(), "source")
    flow.add_routine(Sink(), "sink")
    flow.connect("source", "output", "sink", "input")
    return flow


def _paused(*tasks: dict[str, Any]) -> JobState:
    """A paused job made elsewhere (by hand, as 0.9 code may build one)."""
    job = JobState("resumed")
    job.status = "paused"
    job.current_routine_id = "source"
    job.pending_tasks.extend(tasks)
    return job


GOOD = {"routine_id": "sink", "slot": "input", "payload": {"value": 7}}


@pytest.mark.parametrize(
    ("task", "says"),
    [
        ({**GOOD, "routine_id": "elsewhere"}, "pending_tasks[1] of job"),
        ({**GOOD, "slot": "nope"}, "'sink'.'nope', which flow 'resumed'"),
        ({**GOOD, "payload": [1, 2]}, "pending_tasks[1].payload of job"),
        ({**GOOD, "lane": True}, "pending_tasks[1].lane"),
    ],
    ids=["routine", "slot", "payload", "lane"],
)
def test_a_refused_resume_leaves_the_job_as_it_was(
    strategy: str, task: dict[str, Any], says: str
) -> None:
    with _flow(strategy) as flow:
        job = _paused(GOOD, task)
        before = job.serialize()
        tracker = flow.execution_tracker
        with pytest.raises(ConfigurationError) as caught:
            flow.resume(job)
        assert says in str(caught.value)
        assert not job.is_owned and job.serialize() == before
        assert flow.execution_tracker is tracker  # no run was started
        # Still the caller's: fix it and resume.
        job.pending_tasks.pop()
        resumed = flow.resume(job)
        assert resumed is job and job.wait(10) and job.status == "completed"
        assert flow.routines["sink"].seen == [7]  # type: ignore[attr-defined]


class Pauser(Sink):
    """Pauses its job at the first value, leaving the rest pending in the store."""

    def take(self, value: Any) -> None:
        super().take(value)
        context = self.get_execution_context()
        assert context is not None
        if len(self.seen) == 1:
            context.flow.pause(context.job_state, reason="after one")


class Many(Source):
    def start(self) -> None:
        for value in range(3):
            self.emit("output", value=value)


def test_a_refused_resume_from_a_checkpoint_store_starts_no_run(tmp_path: Any) -> None:
    store = JsonFileCheckpointStore(tmp_path / "jobs")
    first = Flow("resumed", checkpoint_store=store)
    first.add_routine(Many(), "source")
    first.add_routine(Pauser(), "sink")
    first.connect("source", "output", "sink", "input")
    job = first.execute("source")
    assert job.status == "paused" and len(store.pending(job.job_id)) == 2
    first.shutdown()
    # "After a restart", a flow whose sink is called otherwise cannot take it.
    other = Flow("resumed", checkpoint_store=store)
    other.add_routine(Many(), "source")
    other.add_routine(Sink(), "renamed")
    tracker = other.execution_tracker
    # The topology check (issue 10) reports the missing routine first.
    with pytest.raises(ConfigurationError, match=r"routines removed: sink"):
        other.resume(job.job_id)
    assert other.execution_tracker is tracker  # no run was started
    assert len(store.pending(job.job_id)) == 2
    assert store.load(job.job_id)["status"] == "paused"
    other.shutdown()
    # The flow it belongs to resumes it from the store.
    again = Flow("resumed", checkpoint_store=store)
    again.add_routine(Many(), "source")
    sink = Sink()
    again.add_routine(sink, "sink")
    again.connect("source", "output", "sink", "input")  # its shape (issue 10)
    resumed = again.resume(job.job_id)
    assert resumed.wait(10) and resumed.status == "completed"
    assert sink.seen == [1, 2]
    again.shutdown()
    store.close()


class Held(Source):
    """An entry routine that holds its place in the flow until told."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def start(self) -> None:
        assert self.gate.wait(10), "the test never opened the gate"
        super().start()


def test_a_resume_a_full_flow_refuses_leaves_the_job_as_it_was() -> None:
    flow = _flow("concurrent", max_workers=2, max_pending=1, on_full="raise")
    held = Held()
    flow.remove_routine("source")
    flow.add_routine(held, "source")
    flow.connect("source", "output", "sink", "input")
    try:
        busy = flow.execute("source")  # takes the flow's one place
        job = _paused(GOOD)
        before = job.serialize()
        tracker = flow.execution_tracker
        with pytest.raises(QueueFullError, match="max_pending=1"):
            flow.resume(job)
        assert not job.is_owned and job.serialize() == before
        assert flow.execution_tracker is tracker
        held.gate.set()
        assert busy.wait(10)
        resumed = flow.resume(job)
        assert resumed is job and job.wait(10) and job.status == "completed"
        assert sorted(flow.routines["sink"].seen) == [1, 7]  # type: ignore[attr-defined]
    finally:
        held.gate.set()
        flow.shutdown()
