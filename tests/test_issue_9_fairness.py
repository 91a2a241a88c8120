"""Issue 9, part 4: fairness. The concurrent strategy takes ready activations
round-robin across jobs, so a long job does not starve short jobs started after
it.

The flow-level tests hold every worker until every job of the test has been
started (a *plug* job holds them; the fan-out job's handler holds the last one
once it has queued its 10,000 items), so what runs first is decided by the
strategy alone, not by how fast this thread calls ``execute``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import Flow, FlowHooks, JobState, JobStatus, Routine
from routilux.strategies import ThreadedStrategy
from routilux.testing import ProbeTask

pytestmark = pytest.mark.timeout(120)

WAIT = 60.0
WORKERS = 2
SHORT_JOBS = 50


class Relay(Routine):
    """``hops`` hops: passes ``left - 1`` on to itself until it reaches 0."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.hop)
        self.define_slot("input", handler=self.hop)
        self.define_event("output", ["left"])

    def hop(self, left: int) -> None:
        if left > 0:
            self.emit("output", left=left - 1)


class Hold:
    """Holds pool threads until released."""

    def __init__(self) -> None:
        self.holding = threading.Semaphore(0)
        self.release = threading.Event()

    def hold(self) -> None:
        self.holding.release()
        assert self.release.wait(WAIT), "the hold was never released"


class Spray(Routine):
    """Emits ``count`` items at once from one handler call, then holds its worker."""

    def __init__(self, hold: Hold) -> None:
        super().__init__()
        self.held = hold
        self.define_slot("trigger", handler=self.spray)
        self.define_event("output", ["item"])

    def spray(self, count: int) -> None:
        for item in range(count):
            self.emit("output", item=item)
        self.held.hold()


class Sink(Routine):
    """Takes anything."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, **_: Any) -> None:
        return None


class Plug(Routine):
    """Holds ``threads`` pool threads until released."""

    def __init__(self, hold: Hold) -> None:
        super().__init__()
        self.held = hold
        self.define_slot("trigger", handler=self.fan)
        self.define_slot("hold", handler=self.hold)
        self.define_event("out", ["n"])

    def fan(self, threads: int) -> None:
        for n in range(threads):
            self.emit("out", n=n)

    def hold(self, n: int) -> None:
        self.held.hold()


class EndOrder(FlowHooks):
    """Records the order in which jobs end."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ended: list[str] = []

    def on_job_end(self, job: JobState) -> None:
        with self.lock:
            self.ended.append(job.job_id)


def fairness_flow(hold: Hold) -> tuple[Flow, EndOrder]:
    flow = Flow(execution_strategy="concurrent", max_workers=WORKERS)
    flow.add_routine(Plug(hold), "plug")
    flow.connect("plug", "out", "plug", "hold")
    flow.add_routine(Relay(), "chain")
    flow.connect("chain", "output", "chain", "input")
    flow.add_routine(Spray(hold), "spray")
    flow.add_routine(Sink(), "sprayed")
    flow.connect("spray", "output", "sprayed", "input")
    flow.add_routine(Relay(), "short")
    flow.add_routine(Sink(), "short_end")
    flow.connect("short", "output", "short_end", "input")
    hooks = EndOrder()
    flow.add_hooks(hooks)
    return flow, hooks


def run_long_then_short(long_kind: str) -> tuple[JobState, list[JobState], list[str]]:
    """Hold every worker, with the long job started; start the short ones; go."""
    hold = Hold()
    flow, hooks = fairness_flow(hold)
    with flow:
        if long_kind == "chain":
            # Both workers held by the plug: the chain's first hop waits too.
            plugged = flow.execute("plug", {"threads": WORKERS})
            long_job = flow.execute("chain", {"left": 1000})  # 1,001 activations
        else:
            # One worker held by the plug; the spray queues its 10,000 items on
            # the other one (which nothing else can take), then holds it.
            plugged = flow.execute("plug", {"threads": WORKERS - 1})
            long_job = flow.execute("spray", {"count": 10_000})
        for _ in range(WORKERS):
            assert hold.holding.acquire(timeout=WAIT), "a worker was not held"
        short_jobs = [flow.execute("short", {"left": 1}) for _ in range(SHORT_JOBS)]
        hold.release.set()
        assert flow.wait_for_completion(WAIT)
    for job in (plugged, long_job, *short_jobs):
        assert job.status is JobStatus.COMPLETED, job.errors
    return long_job, short_jobs, hooks.ended


@pytest.mark.parametrize("long_kind", ["chain", "fan_out"])
def test_issue_9_short_jobs_finish_before_a_long_one_started_before_them(
    long_kind: str,
) -> None:
    long_job, short_jobs, ended = run_long_then_short(long_kind)

    last_short = max(ended.index(job.job_id) for job in short_jobs)
    assert last_short < ended.index(long_job.job_id), (
        f"a short job ended after the long {long_kind} job"
    )


def test_issue_9_the_long_job_still_gets_its_turns() -> None:
    # Round-robin, not priority: the long job moves while short ones run, and
    # every one of its 10,000 activations runs.
    long_job, _, _ = run_long_then_short("fan_out")
    assert long_job.routine_states["sprayed"]["status"] == "completed"
    records = [r for r in long_job.execution_history if r.event_name == "output"]
    assert len(records) == 10_000


def test_issue_9_ready_tasks_are_taken_in_turns_across_jobs() -> None:
    # One worker, held by a plug while 100 tasks of job "a", then 3 of job "b",
    # then 1 of job "c" are queued: the worker then alternates between jobs.
    order: list[str] = []
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        holding.set()
        assert release.wait(WAIT)

    def note(name: str) -> ProbeTask:
        return ProbeTask(action=lambda: order.append(name), fair_key=name[0])

    strategy = ThreadedStrategy(max_workers=1, name_prefix="fair-test")
    try:
        strategy.submit(ProbeTask(action=hold, fair_key="plug"))
        assert holding.wait(WAIT)
        for index in range(100):
            strategy.submit(note(f"a{index}"))
        for index in range(3):
            strategy.submit(note(f"b{index}"))
        strategy.submit(note("c0"))
        release.set()
        assert strategy.wait_idle(WAIT)
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)

    assert order[:8] == ["a0", "b0", "c0", "a1", "b1", "a2", "b2", "a3"]
    assert order[8:] == [f"a{index}" for index in range(4, 100)]


def test_issue_9_a_job_that_empties_and_refills_queues_at_the_back() -> None:
    # A job whose queue ran dry rejoins the rotation behind the jobs waiting.
    order: list[str] = []
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        holding.set()
        assert release.wait(WAIT)

    strategy = ThreadedStrategy(max_workers=1, name_prefix="fair-test")

    def refill() -> None:
        order.append("a0")
        strategy.submit(ProbeTask(action=lambda: order.append("a1"), fair_key="a"))

    try:
        strategy.submit(ProbeTask(action=hold, fair_key="plug"))
        assert holding.wait(WAIT)
        strategy.submit(ProbeTask(action=refill, fair_key="a"))
        for index in range(2):
            strategy.submit(
                ProbeTask(action=lambda i=index: order.append(f"b{i}"), fair_key="b")
            )
        release.set()
        assert strategy.wait_idle(WAIT)
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)

    assert order == ["a0", "b0", "a1", "b1"]


def test_issue_9_turns_keep_the_concurrency_limit() -> None:
    # Tasks parked at a routine's limit join their job's turn when let through.
    running = 0
    most = 0
    guard = threading.Lock()

    def step() -> None:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        with guard:
            running -= 1

    strategy = ThreadedStrategy(max_workers=4, name_prefix="fair-test")
    try:
        tasks = [
            ProbeTask("limited", 2, step, fair_key=f"job{index % 7}")
            for index in range(300)
        ]
        for task in tasks:
            strategy.submit(task)
        assert strategy.wait_idle(WAIT)
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)
    assert sum(task.runs for task in tasks) == 300
    assert most <= 2


def test_issue_9_shutdown_without_waiting_drops_queued_turns() -> None:
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        holding.set()
        assert release.wait(WAIT)

    strategy = ThreadedStrategy(max_workers=1, name_prefix="fair-test")
    blocker = ProbeTask(action=hold, fair_key="plug")
    strategy.submit(blocker)
    assert holding.wait(WAIT)
    queued = [ProbeTask(fair_key=f"job{index % 3}") for index in range(30)]
    for task in queued:
        strategy.submit(task)
    strategy.shutdown(wait=False)
    release.set()
    assert strategy.wait_idle(WAIT)
    assert blocker.runs == 1
    assert all(task.runs == 0 and task.drops == ["shutdown"] for task in queued)
    stats = strategy.stats()
    assert stats["dropped"] == 30
    assert stats["completed"] == 1
