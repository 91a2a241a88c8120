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

from routilux import Flow, JobStatus

from .resume_routines import WAIT, Held, Last, wire

pytestmark = pytest.mark.timeout(60)


@pytest.mark.xfail(strict=True, reason="open: a second resume rebuilds the job")
def test_issue_8_review2_two_resumes_at_once_run_the_held_task_once() -> None:
    entered, gate = threading.Event(), threading.Event()
    last = Last()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    wire(flow, Held(entered, gate), last)
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
