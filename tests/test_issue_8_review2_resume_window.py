"""Review 2: a resume racing the worker that files a job as paused.

When a job's pause settles, the worker that ran its last handler files the
run as paused (``FlowRunner._paused``) and then forgets it as active
(``FlowJobs.discard``). A ``resume`` from another thread used to look in the
paused runs first and in the active ones second, so two windows lost the job:

* resumed between the filing and the discard: the restarted job was added as
  active, then the worker's discard removed it. ``wait_for_completion``
  returned while it ran, and ``pause`` called it "running, not running";
* looked for in the paused runs just before the filing, and among the active
  ones just after the discard: found in neither, the JobState (paused, not in
  a store) was rebuilt into a second run, which took the job over from the
  first (left behind, with its records: the tracker lost the work done
  before the pause).

Each test steers the two threads through one window with wrappers around
the runner's lookups (no sleeps): exact counts, every time.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import Flow, JobStatus

from .resume_routines import WAIT, Held, Last, wire

pytestmark = pytest.mark.timeout(60)
REPEATS = 10


class _Filing(dict[str, Any]):
    """``FlowRunner._paused``, calling ``on_file`` before a job is filed."""

    on_file: Any = None

    def __setitem__(self, key: str, value: Any) -> None:
        if self.on_file is not None:
            self.on_file()
        super().__setitem__(key, value)


def _paused_job(
    flow: Flow,
) -> tuple[Any, Last, threading.Event, threading.Event]:
    """Run a job to a pause that holds one task for ``Last``; keep it settling.

    Returns the job, the last routine, the gate that lets the held routine go
    on (the pause settles when it returns) and the last routine's gate.
    """
    held_in, held_gate = threading.Event(), threading.Event()
    last_in, last_gate = threading.Event(), threading.Event()
    last = Last(last_in, last_gate)
    wire(flow, Held(held_in, held_gate), last)
    job = flow.execute("start", {"value": 7})
    assert held_in.wait(WAIT)
    assert flow.pause(job, "review")
    return job, last, held_gate, last_gate


def _finish(flow: Flow, job: Any, last: Last, last_gate: threading.Event) -> None:
    """The resumed job runs its held task once, counted active, and completes."""
    assert last.entered.wait(WAIT)
    assert flow.get_stats().active_jobs == 1  # it runs, and the flow knows
    last_gate.set()
    assert job.wait(WAIT)
    assert flow.wait_for_completion(WAIT)
    assert job.status is JobStatus.COMPLETED
    assert last.runs == [7]  # the held task ran once
    # One run from start to end: its tracker saw the work before the pause
    # too (a run rebuilt from the paused JobState starts with no records).
    tracker = flow.execution_tracker
    assert tracker is not None
    assert sorted(tracker.routine_executions) == ["held", "last", "start"]
    stats = flow.get_stats()
    assert (stats.active_jobs, stats.paused_jobs) == (0, 0)


def test_issue_8_review2_a_resume_between_filing_and_discard_stays_active() -> None:
    for _ in range(REPEATS):
        _resume_between_filing_and_discard()


def test_issue_8_review2_a_resume_looking_while_the_job_is_filed_finds_it() -> None:
    for _ in range(REPEATS):
        _resume_looking_while_filed()


def _resume_between_filing_and_discard() -> None:
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    with flow:
        runner = flow._runner
        job, last, held_gate, last_gate = _paused_job(flow)
        jobs = runner._jobs
        discard, lookup = jobs.discard, jobs.get
        looked = threading.Event()
        resumer: list[threading.Thread] = []

        def get(job_id: str) -> Any:
            run = lookup(job_id)
            if resumer and threading.current_thread() is resumer[0]:
                looked.set()
            return run

        def resume() -> None:
            flow.resume(job)
            looked.set()

        def discard_late(run: Any) -> None:
            # The job is filed as paused and still counted active: a caller
            # resumes it now, before the worker forgets it.
            if run.job_state is job and not resumer:
                resumer.append(threading.Thread(target=resume))
                resumer[0].start()
                assert looked.wait(WAIT)  # it looked, or it resumed the job
            discard(run)

        jobs.get = get  # type: ignore[method-assign]
        jobs.discard = discard_late  # type: ignore[method-assign]
        held_gate.set()
        _finish(flow, job, last, last_gate)
        resumer[0].join(WAIT)
        assert not resumer[0].is_alive()


def _resume_looking_while_filed() -> None:
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    with flow:
        runner = flow._runner
        job, last, held_gate, last_gate = _paused_job(flow)
        jobs = runner._jobs
        discard, lookup = jobs.discard, jobs.get
        looked, discarded = threading.Event(), threading.Event()
        resumer: list[threading.Thread] = []
        filing = _Filing(runner._paused)

        def mine() -> bool:
            return bool(resumer) and threading.current_thread() is resumer[0]

        def get(job_id: str) -> Any:
            run = lookup(job_id)
            if mine():
                looked.set()
            return run

        def pop(job_id: str, default: Any = None) -> Any:
            run = dict.pop(filing, job_id, default)
            if mine() and run is None and not looked.is_set():
                # Not filed yet: the worker files it and forgets it as active
                # before this caller looks among the active runs.
                looked.set()
                assert discarded.wait(WAIT)
            return run

        def on_file() -> None:
            if not resumer and job.status is JobStatus.PAUSED:
                resumer.append(threading.Thread(target=flow.resume, args=(job,)))
                resumer[0].start()
                assert looked.wait(WAIT)

        def discard_then_say(run: Any) -> None:
            discard(run)
            discarded.set()

        filing.on_file = on_file
        filing.pop = pop  # type: ignore[method-assign]
        runner._paused = filing
        jobs.get = get  # type: ignore[method-assign]
        jobs.discard = discard_then_say  # type: ignore[method-assign]
        held_gate.set()
        _finish(flow, job, last, last_gate)
        resumer[0].join(WAIT)
        assert not resumer[0].is_alive()
