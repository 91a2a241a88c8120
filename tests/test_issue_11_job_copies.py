"""Issue 11: a copy of a JobState is an independent, unowned snapshot.

0.9 code copies job states (``job.model_copy()``, ``copy.deepcopy(job)``) to keep
one aside. A copy of a job a flow runs used to share the flow's read-only
containers (and stay "owned"), and a deep copy raised ``TypeError``.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from routilux import Flow, JobState, JobStateError, Routine


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("output", ["value", "box"])

    def start(self, count: int = 3) -> None:
        for value in range(count):
            self.emit("output", value=value, box={"items": [value]})


class Sink(Routine):
    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.gate = gate
        self.define_slot("input", handler=self.take)

    def take(self, value: int, box: dict[str, Any]) -> int:
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        return value


def _flow(strategy: str, sink: Sink | None = None, workers: int = 5) -> Flow:
    flow = Flow("copies", execution_strategy=strategy, max_workers=workers)
    flow.add_routine(Source(), "source")
    flow.add_routine(sink or Sink(), "sink")
    flow.connect("source", "output", "sink", "input")
    return flow


COPIES = {
    "model_copy": lambda job: job.model_copy(),
    "copy.copy": copy.copy,
    "deepcopy": copy.deepcopy,
    "model_copy-deep": lambda job: job.model_copy(deep=True),
}


@pytest.mark.parametrize("how", list(COPIES))
def test_a_copy_of_a_finished_job_is_unowned_and_its_own(
    strategy: str, how: str
) -> None:
    with _flow(strategy) as flow:
        job = flow.execute("source", {"count": 3})
        assert job.wait(10)
        before = job.serialize()
        twin = COPIES[how](job)
    assert job.is_owned and not twin.is_owned
    assert twin.serialize() == before
    assert twin.result() == job.result() == {"sink": 2}
    assert twin.is_done and twin.wait(0)
    # The copy is editable, and what it changes is its own.
    for name in ("errors", "pending_tasks", "pause_points"):
        assert type(getattr(twin, name)) is list
        getattr(twin, name).append({"mine": True})
    twin.routine_states["extra"] = twin.routine_states["sink"]
    twin.status = "failed"
    twin.record_execution("me", "note", {})
    assert job.serialize() == before
    with pytest.raises(JobStateError, match="read-only"):
        job.errors.append(None)  # type: ignore[arg-type]


def test_a_deep_copy_does_not_share_payloads() -> None:
    job = _flow("sequential").execute("source", {"count": 2})
    twin = copy.deepcopy(job)
    twin.execution_history  # noqa: B018 - records are built on reading
    box = twin.get_execution_history("source")[1].data["box"]
    box["items"].append("changed")
    assert twin.get_execution_history("source")[1].data["box"]["items"] == [
        0,
        "changed",
    ]
    assert job.get_execution_history("source")[1].data["box"]["items"] == [0]
    shallow = copy.copy(job)
    assert shallow.execution_history[1].data is job.execution_history[1].data


def test_a_job_built_by_hand_copies_deeply_too() -> None:
    mine = JobState("mine")
    mine.record_execution("a", "start", {"nested": [1, 2]})
    mine.pending_tasks.append({"routine_id": "a", "slot": "trigger", "payload": {}})
    twin = copy.deepcopy(mine)
    assert twin.serialize() == mine.serialize()
    twin.pending_tasks.clear()
    assert len(mine.pending_tasks) == 1
    updated = mine.model_copy(update={"status": "paused"})
    assert updated.status == "paused" and mine.status == "pending"


def test_a_copy_of_a_running_job_is_a_snapshot() -> None:
    gate = threading.Event()
    with _flow("concurrent", Sink(gate), workers=2) as flow:
        job = flow.execute("source", {"count": 4})
        twin = job.model_copy()
        deep = copy.deepcopy(job)
        gate.set()
        assert job.wait(10) and job.status == "completed"
    for snapshot in (twin, deep):
        assert snapshot.status == "running" and not snapshot.is_owned
        assert not snapshot.is_done
        assert snapshot.wait(0) is False  # nobody runs the copy: no hang, no lie
        with pytest.raises(JobStateError, match="no flow runs it"):
            snapshot.result(0)
    assert len(twin.execution_history) < len(job.execution_history)


def test_copies_taken_while_workers_write_are_consistent() -> None:
    for _ in range(5):
        gate = threading.Event()
        with _flow("concurrent", Sink(gate), workers=8) as flow:
            job = flow.execute("source", {"count": 200})
            sizes = []
            while not job.is_done:
                if len(sizes) == 5:  # five copies of a job surely running
                    gate.set()
                twin = job.model_copy()
                assert not twin.is_owned
                sizes.append((len(twin.execution_history), len(twin.routine_states)))
            gate.set()
            assert job.wait(10)
            final = copy.deepcopy(job)
        assert len(sizes) >= 5
        assert sizes == sorted(sizes)  # each copy holds all its predecessor held
        # source: start, 200 emits, completed; the copy has exactly what the job has.
        assert len(job.get_execution_history("source")) == 202
        assert len(final.execution_history) == len(job.execution_history)
        assert final.serialize() == job.serialize()
