"""Review 2 (open, pre-existing): two threads resuming one paused job at once.

The first ``resume`` takes the run out of the flow's paused runs and, before
it is active again, waits for room (``max_pending``). A second ``resume`` in
that window finds the job neither active nor paused, sees a PAUSED JobState,
and rebuilds it into a second run: the held task runs twice. Marked xfail
(strict) until the runner keeps a run in transit where ``resume`` can see it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import Flow, JobStatus, Routine

pytestmark = pytest.mark.timeout(60)

WAIT = 20.0


class _Start(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, value: int = 0) -> None:
        self.emit("out", value=value)


class _Held(Routine):
    def __init__(self, entered: threading.Event, gate: threading.Event) -> None:
        super().__init__()
        self.entered, self.gate = entered, gate
        self.define_slot("inp", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: int) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT)
        self.emit("out", value=value)


class _Last(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.runs: list[int] = []
        self.define_slot("inp", handler=self.take)

    def take(self, value: int) -> None:
        self.runs.append(value)


@pytest.mark.xfail(strict=True, reason="open: a second resume rebuilds the job")
def test_issue_8_review2_two_resumes_at_once_run_the_held_task_once() -> None:
    entered, gate = threading.Event(), threading.Event()
    last = _Last()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(_Start(), "start")
    flow.add_routine(_Held(entered, gate), "held")
    flow.add_routine(last, "last")
    flow.connect("start", "out", "held", "inp")
    flow.connect("held", "out", "last", "inp")
    with flow:
        job = flow.execute("start", {"value": 7})
        assert entered.wait(WAIT)
        assert flow.pause(job)
        gate.set()
        assert job.wait(WAIT)
        assert job.status is JobStatus.PAUSED
        runner = flow._runner
        wait_for_room = runner._wait_for_room
        second: list[Any] = []

        def resume_twice() -> None:
            # The first resume holds the run it took, not active yet: a
            # second caller resumes the same job now, and finishes first.
            if not second:
                thread = threading.Thread(
                    target=lambda: second.append(_resume(flow, job))
                )
                second.append(thread)
                thread.start()
                thread.join(WAIT)
            wait_for_room()

        runner._wait_for_room = resume_twice  # type: ignore[method-assign]
        flow.resume(job)
        assert flow.wait_for_completion(WAIT)
        assert job.status is JobStatus.COMPLETED
        assert last.runs == [7]  # the held task ran once


def _resume(flow: Flow, job: Any) -> Any:
    try:
        return flow.resume(job)
    except Exception as exc:  # refusing the second resume is fine too
        return exc
