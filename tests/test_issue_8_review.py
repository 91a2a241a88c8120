"""Review of the rebuilt runtime core: each test reproduces one suspected bug.

Every test here is deterministic (threading.Event / bounded waits, no sleeps used
to synchronise). A test marked ``xfail(strict=True)`` reproduces a bug that is
still present; it starts passing (and so fails the suite) once the bug is fixed.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from routilux import (
    ErrorHandler,
    Flow,
    FlowHooks,
    JobState,
    JobStateError,
    JobStatus,
    Routine,
)
from tests.routines import Boom, Collector, Source

WAIT = 5.0
SHORT = 1.0


def _execute_in_daemon(flow: Flow, entry: str) -> tuple[threading.Thread, list[Any]]:
    """Run ``flow.execute(entry)`` in a daemon thread (it may hang for good)."""
    box: list[Any] = []

    def go() -> None:
        try:
            box.append(flow.execute(entry))
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, box


# ---------------------------------------------------------------------------
# 1. An ErrorHandler whose handle_error raises: the activation is settled but
#    never counted, so the job never completes.
# ---------------------------------------------------------------------------


class RaisingPolicy(ErrorHandler):
    """A user error policy whose decision itself fails."""

    def handle_error(
        self, error: BaseException, routine: Any = None, routine_id: str = ""
    ) -> bool:
        raise ValueError("the policy itself broke")


def test_raising_error_policy_hangs_the_job(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy, max_workers=2)
    flow.add_routine(Boom(), "boom")
    flow.set_error_handler(RaisingPolicy(strategy="continue"))
    thread, box = _execute_in_daemon(flow, "boom")
    thread.join(WAIT if strategy == "concurrent" else SHORT)
    try:
        if strategy == "sequential":
            assert not thread.is_alive(), "execute() never returned"
        job = box[0]
        assert isinstance(job, JobState)
        assert job.wait(SHORT), f"job still {job.status.value} (never settled)"
        assert job.status is JobStatus.FAILED
    finally:
        flow.shutdown(wait=False)


# ---------------------------------------------------------------------------
# 2. Ctrl-C raised by user code in the caller's thread outside the handler
#    (a hook) is recorded and then swallowed: execute() never re-raises it.
# ---------------------------------------------------------------------------


class InterruptingHook(FlowHooks):
    def on_activation_end(self, job: JobState, activation: Any, outcome: Any) -> None:
        raise KeyboardInterrupt


def test_keyboard_interrupt_in_hook_is_reraised_sequential() -> None:
    flow = Flow(execution_strategy="sequential")
    flow.add_routine(Source(), "src")
    flow.add_routine(Collector(), "sink")
    flow.connect("src", "output", "sink", "input")
    flow.add_hooks(InterruptingHook())
    try:
        with pytest.raises(KeyboardInterrupt):
            flow.execute("src")
    finally:
        flow.shutdown(wait=False)


# ---------------------------------------------------------------------------
# 3. A pause (or cancel) that lands while the job is ending (on_job_end running,
#    the job still listed as active) completes the job a second time.
# ---------------------------------------------------------------------------


class BlockingEndHook(FlowHooks):
    """Blocks the first on_job_end until released; counts every call."""

    def __init__(self) -> None:
        self.ends = 0
        self.in_end = threading.Event()
        self.release = threading.Event()

    def on_job_end(self, job: JobState) -> None:
        self.ends += 1
        if self.ends == 1:
            self.in_end.set()
            self.release.wait(WAIT)


def test_pause_while_job_ends_completes_it_twice() -> None:
    hook = BlockingEndHook()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Source(), "src")
    flow.add_hooks(hook)
    try:
        job = flow.execute("src")
        assert hook.in_end.wait(WAIT)
        try:
            # still listed active, but done: no effect, and it says so (issue 11)
            assert flow.pause(job, reason="late") is False
        finally:
            hook.release.set()
        assert job.wait(WAIT)
        assert flow.wait_for_completion(WAIT)
        completed = [r for r in job.execution_history if r.event_name == "completed"]
        assert hook.ends == 1, f"on_job_end called {hook.ends} times"
        assert len(completed) == 1
    finally:
        hook.release.set()
        flow.shutdown(wait=True, timeout=WAIT)


def test_cancel_while_job_ends_reports_success_on_completed_job() -> None:
    hook = BlockingEndHook()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Source(), "src")
    flow.add_hooks(hook)
    try:
        job = flow.execute("src")
        assert hook.in_end.wait(WAIT)
        try:
            cancelled = flow.cancel(job, reason="too late")
        finally:
            hook.release.set()
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED
        assert not cancelled, "cancel() said it cancelled a job that completed"
        assert job.cancel_source is None
    finally:
        hook.release.set()
        flow.shutdown(wait=True, timeout=WAIT)


# ---------------------------------------------------------------------------
# 4. A wait_async() that timed out leaves its wake-up callback behind; when its
#    loop is closed by the time the job ends, _mark_done raises and the job is
#    never filed as stopped (wait_for_completion hangs, an error lands on a
#    completed job).
# ---------------------------------------------------------------------------


class Gate(Routine):
    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.define_slot("trigger", handler=self.go)

    def go(self, **_: Any) -> int:
        self.release.wait(WAIT)
        return 1


def test_timed_out_wait_async_breaks_job_end() -> None:
    release = threading.Event()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Gate(release), "gate")
    try:
        job = flow.execute("gate")
        assert asyncio.run(job.wait_async(0.01)) is False  # its loop is now closed
        release.set()
        assert job.wait(WAIT)
        assert flow.wait_for_completion(SHORT), "the job never left the active set"
        assert job.status is JobStatus.COMPLETED
        assert not job.errors, [e.message for e in job.errors]
    finally:
        release.set()
        flow.shutdown(wait=True, timeout=WAIT)


# ---------------------------------------------------------------------------
# 5. A pause files the job as paused (_on_done) *before* waking waiters
#    (_mark_done). A resume landing in between restarts the job, and the stale
#    _mark_done then tells every waiter the running job is done.
# ---------------------------------------------------------------------------


class Starter(Routine):
    """Waits for ``go``, then emits once."""

    def __init__(self, go: threading.Event) -> None:
        super().__init__()
        self.go = go
        self.define_slot("trigger", handler=self.start)
        self.define_event("output", ["value"])

    def start(self, **_: Any) -> None:
        self.go.wait(WAIT)
        self.emit("output", value=1)


class Blocker(Routine):
    """Blocks on ``release``; returns its value."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.define_slot("input", handler=self.hold)

    def hold(self, value: int = 0) -> int:
        self.release.wait(WAIT)
        return value


def test_resume_between_pause_filing_and_wakeup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from routilux.runtime.runner import FlowRunner

    filed = threading.Event()
    go_on = threading.Event()
    original = FlowRunner._job_stopped

    def job_stopped(self: FlowRunner, run: Any) -> None:
        original(self, run)
        if run.job_state.status is JobStatus.PAUSED and not filed.is_set():
            filed.set()
            go_on.wait(WAIT)  # stands for the thread being preempted right here

    monkeypatch.setattr(FlowRunner, "_job_stopped", job_stopped)
    go, release = threading.Event(), threading.Event()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Starter(go), "a")
    flow.add_routine(Blocker(release), "b")
    flow.connect("a", "output", "b", "input")
    try:
        job = flow.execute("a")
        flow.pause(job, reason="hold b")
        go.set()  # a emits: b is parked, a settles, the pause settles
        assert filed.wait(WAIT)
        flow.resume(job)  # b runs again (and blocks on `release`)
        go_on.set()  # the pausing thread now wakes the waiters
        woke = job.wait(SHORT)
        status = job.status
        assert not (woke and status is JobStatus.RUNNING), (
            "job.wait() returned True while the job is still running"
        )
    finally:
        go_on.set()
        release.set()
        flow.wait_for_completion(WAIT)
        flow.shutdown(wait=True, timeout=WAIT)


class SlowBoom(Routine):
    """Blocks on ``release`` (past its timeout), then returns."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.define_slot("trigger", handler=self.go)

    def go(self, **_: Any) -> None:
        self.release.wait(WAIT)


def test_raising_error_policy_on_timeout_hangs_the_job() -> None:
    release = threading.Event()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    routine = SlowBoom(release)
    routine.set_timeout(0.05)
    routine.set_error_handler(RaisingPolicy(strategy="continue"))
    flow.add_routine(routine, "slow")
    try:
        job = flow.execute("slow")
        # The watchdog settles the activation at its deadline, whatever happens
        # to the handler: the job must stop without the handler returning.
        assert job.wait(2.0), f"job still {job.status.value} after its timeout"
    finally:
        release.set()
        flow.shutdown(wait=True, timeout=WAIT)


# ---------------------------------------------------------------------------
# 6. Concurrent strategy: a task parked behind its routine's max_concurrency is
#    moved to the FIFO when an awaited task of that routine ends after the pool
#    started dropping -- but no drainer is started, so it is neither run nor
#    dropped, and its job never ends.
# ---------------------------------------------------------------------------


class AwaitableLimited(Routine):
    """A sync handler that returns a coroutine; one activation at a time."""

    max_concurrency = 1

    def __init__(self, started: threading.Event) -> None:
        super().__init__()
        self.started = started
        self.define_slot("input", handler=self.handle)

    def handle(self, value: int = 0) -> Any:
        return self._wait_forever(value)

    async def _wait_forever(self, value: int) -> int:
        self.started.set()
        await asyncio.get_running_loop().create_future()  # until cancelled
        return value


def test_shutdown_timeout_strands_gated_task_behind_awaited_one() -> None:
    started = threading.Event()
    source = Source()
    source.set_config(count=2)
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(source, "src")
    flow.add_routine(AwaitableLimited(started), "lim")
    flow.connect("src", "output", "lim", "input")
    job = flow.execute("src")
    assert started.wait(WAIT)  # first activation awaits; the second is gated
    flow.shutdown(wait=True, timeout=0.2)  # times out: dropping, then halt
    assert job.wait(WAIT), f"job still {job.status.value} after shutdown"
    assert job.status is JobStatus.CANCELLED


def test_issue_8_no_retry_starts_after_a_timeout() -> None:
    from routilux import ErrorHandler, ErrorStrategy, Routine

    calls: list[int] = []

    class Failing(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self) -> None:
            calls.append(1)
            raise ConnectionError("down")

    flow = Flow(execution_strategy="concurrent", max_workers=1)
    failing = Failing()
    failing.set_timeout(0.05)
    failing.set_error_handler(
        ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=5, retry_delay=0.5)
    )
    flow.add_routine(failing, "f")
    job = flow.execute("f")
    assert job.wait(WAIT)
    flow.shutdown(wait=True, timeout=WAIT)  # the retry's wait ends, no new call
    assert calls == [1]
    assert [e.error_type for e in job.errors] == [
        "ConnectionError",
        "RoutineTimeoutError",
    ]


def test_issue_8_resume_of_a_running_job_raises() -> None:
    from routilux import Routine

    started, release = threading.Event(), threading.Event()

    class Blocking(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self) -> None:
            started.set()
            release.wait(WAIT)

    flow = Flow(execution_strategy="concurrent", max_workers=1)
    flow.add_routine(Blocking(), "b")
    try:
        job = flow.execute("b")
        assert started.wait(WAIT)
        with pytest.raises(JobStateError, match="not paused"):
            flow.resume(job)
    finally:
        release.set()
        flow.shutdown(wait=True, timeout=WAIT)
    assert job.status is JobStatus.COMPLETED


def test_issue_8_a_slow_start_hook_does_not_count_against_the_timeout() -> None:
    from routilux import ActivationInfo, FlowHooks, Routine

    class SlowStart(FlowHooks):
        def on_activation_start(self, job: Any, activation: ActivationInfo) -> None:
            threading.Event().wait(0.2)  # a hook that takes longer than the timeout

    class Quick(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self) -> str:
            return "done"

    flow = Flow()
    quick = Quick()
    quick.set_timeout(0.05)
    flow.add_routine(quick, "q")
    flow.add_hooks(SlowStart())
    job = flow.execute("q")
    assert job.status is JobStatus.COMPLETED, job.errors
    assert job.result() == {"q": "done"}
