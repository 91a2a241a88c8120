"""Error strategies on any routine, retries, timeouts, cancel, pause and resume."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from routilux import (
    CircuitOpenError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    ForeignJobError,
    JobState,
    JobStateError,
    Routine,
)

from .routines import Collector, Source


class Step(Routine):
    """Counts calls; raises when ``fail`` is set; otherwise emits ``output``."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.define_slot("trigger", handler=self.work)
        self.define_slot("input", handler=self.work)
        self.define_event("output", ["value"])

    def work(self, **data: Any) -> None:
        self.increment_stat("calls")
        if self.fail:
            raise ValueError(f"{self.default_id} failed")
        self.emit("output", value=1)

    @property
    def default_id(self) -> str:
        return self._rx.default_id

    @property
    def calls(self) -> int:
        return int(self.get_stat("calls", 0))


def handler_for(strategy: ErrorStrategy) -> ErrorHandler:
    return ErrorHandler(strategy=strategy, max_retries=2, retry_delay=0.0)


EXPECTED = {
    # strategy: (job status, failing routine status, calls of the failing routine)
    ErrorStrategy.STOP: ("failed", "failed", 1),
    ErrorStrategy.CONTINUE: ("completed", "error_continued", 1),
    ErrorStrategy.SKIP: ("completed", "skipped", 1),
    ErrorStrategy.RETRY: ("failed", "failed", 3),
}


@pytest.mark.parametrize("error_strategy", list(ErrorStrategy))
@pytest.mark.parametrize("where_set", ["flow", "routine"])
@pytest.mark.parametrize("where_error", ["entry", "middle", "leaf"])
def test_strategy_table(
    strategy: str, error_strategy: ErrorStrategy, where_set: str, where_error: str
) -> None:
    # entry -> middle -> leaf, and entry -> sibling (another branch of the job)
    steps = {
        name: Step(fail=name == where_error) for name in ("entry", "middle", "leaf")
    }
    sibling = Collector()
    flow = Flow(execution_strategy=strategy, max_workers=4)
    for name, step in steps.items():
        flow.add_routine(step, name)
    flow.add_routine(sibling, "sibling")
    flow.connect("entry", "output", "middle", "input")
    flow.connect("middle", "output", "leaf", "input")
    flow.connect("entry", "output", "sibling", "input")
    if where_set == "flow":
        flow.set_error_handler(handler_for(error_strategy))
    else:
        steps[where_error].set_error_handler(handler_for(error_strategy))
    with flow:
        job = flow.execute("entry")
        assert flow.wait_for_completion(timeout=10)
    status, routine_status, calls = EXPECTED[error_strategy]
    assert job.status == status
    assert job.routine_states[where_error]["status"] == routine_status
    assert steps[where_error].calls == calls
    assert len(job.errors) == calls
    order = ["entry", "middle", "leaf"]
    failing = order.index(where_error)
    for name in order[:failing]:
        assert (
            steps[name].calls == 1 and job.routine_states[name]["status"] == "completed"
        )
    for name in order[failing + 1 :]:
        assert steps[name].calls == 0, f"{name} ran after {where_error} failed"
    if where_error == "entry":
        assert sibling.received == []
    elif status == "completed":
        assert len(sibling.received) == 1
    if error_strategy is ErrorStrategy.RETRY:
        assert job.routine_states[where_error]["retry_count"] == 2


def test_optional_routine_tolerates_exhausted_retries(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy)
    step = Step(fail=True)
    step.set_as_optional(ErrorStrategy.RETRY)
    step.get_error_handler().retry_delay = 0.0  # type: ignore[union-attr]
    flow.add_routine(step, "entry")
    with flow:
        job = flow.execute("entry")
        flow.wait_for_completion(timeout=10)
    assert job.status == "completed"
    assert job.routine_states["entry"]["status"] == "error_continued"
    assert step.calls == 4


def test_critical_routine_fails_the_job_after_retries(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy)
    step = Step(fail=True)
    step.set_as_critical(max_retries=1, retry_delay=0.0)
    flow.add_routine(step, "entry")
    with flow:
        job = flow.execute("entry")
        flow.wait_for_completion(timeout=10)
    assert job.status == "failed" and step.calls == 2


class Flaky(Routine):
    """Fails ``failures`` times with ``error``, then succeeds."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.define_slot("trigger", handler=self.go)

    def go(self) -> None:
        if self.increment_stat("calls") <= self.failures:
            raise self.error("flaky")


def run_flaky(strategy: str, flaky: Flaky, handler: ErrorHandler) -> Any:
    flaky.set_error_handler(handler)
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(flaky, "flaky")
    with flow:
        job = flow.execute("flaky")
        assert flow.wait_for_completion(timeout=10)
    return job


def test_retry_twice_then_succeed(strategy: str) -> None:
    waits: list[float] = []
    flaky = Flaky(2)
    handler = ErrorHandler("retry", max_retries=3, retry_delay=0.2, sleep=waits.append)
    job = run_flaky(strategy, flaky, handler)
    assert (job.status, flaky.get_stat("calls"), waits) == ("completed", 3, [0.2, 0.4])
    assert job.routine_states["flaky"]["status"] == "completed"
    assert handler.retry_count == 2


def test_retry_waits_grow_by_backoff(strategy: str) -> None:
    waits: list[float] = []
    flaky = Flaky(100)
    handler = ErrorHandler(
        "retry", max_retries=3, retry_delay=0.2, retry_backoff=2.0, sleep=waits.append
    )
    job = run_flaky(strategy, flaky, handler)
    assert waits == pytest.approx([0.2, 0.4, 0.8])
    assert job.status == "failed" and flaky.get_stat("calls") == 4
    assert job.routine_states["flaky"]["retry_count"] == 3
    assert [e["attempt"] for e in job.errors] == [1, 2, 3, 4]  # every attempt's error


def test_non_retryable_error_is_not_retried(strategy: str) -> None:
    flaky = Flaky(5, error=KeyError)
    handler = ErrorHandler(
        "retry",
        max_retries=3,
        retryable_exceptions=(ConnectionError,),
        sleep=lambda s: None,
    )
    job = run_flaky(strategy, flaky, handler)
    assert job.status == "failed" and flaky.get_stat("calls") == 1


@pytest.mark.timeout(10)
def test_cancel_during_a_long_backoff_ends_promptly() -> None:
    flaky = Flaky(100)
    flaky.set_error_handler(ErrorHandler("retry", max_retries=5, retry_delay=60.0))
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(flaky, "flaky")
    job = flow.execute("flaky")
    while flaky.get_stat("calls", 0) < 1:  # the first call failed: backoff begins
        threading.Event().wait(0.005)
    assert flow.cancel(job, reason="enough")
    assert job.wait(timeout=5)
    assert job.status == "cancelled"
    assert (job.cancel_source, job.cancel_reason) == ("user", "enough")
    flow.shutdown()


class Sleeper(Routine):
    """Blocks until released, then emits (late, past its timeout)."""

    def __init__(self, release: threading.Event, done: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.done = done
        self.define_slot("trigger", handler=self.work)
        self.define_event("output", ["value"])

    def work(self) -> None:
        self.release.wait(10)
        self.emit("output", value="late")
        self.done.set()


def test_timeout_is_recorded_and_late_emits_are_discarded() -> None:
    release, done = threading.Event(), threading.Event()
    sleeper = Sleeper(release, done)
    sleeper.set_timeout(0.05)
    sleeper.set_error_handler(ErrorHandler("continue"))
    sink = Collector()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(sleeper, "sleeper")
    flow.add_routine(sink, "sink")
    flow.connect("sleeper", "output", "sink", "input")
    job = flow.execute("sleeper")
    assert job.wait(timeout=5)  # settles at the deadline while the handler still runs
    assert job.status == "completed"
    assert job.routine_states["sleeper"]["status"] == "error_continued"
    assert job.errors[0]["error_type"] == "RoutineTimeoutError"
    release.set()
    assert done.wait(5)
    flow.shutdown()
    assert sink.received == []
    assert any(r.event_name == "late_emit_discarded" for r in job.execution_history)


def test_timeout_with_stop_fails_the_job_and_flow_default_applies() -> None:
    release, done = threading.Event(), threading.Event()
    flow = Flow(execution_strategy="concurrent", max_workers=2, default_timeout=0.05)
    flow.add_routine(Sleeper(release, done), "sleeper")
    job = flow.execute("sleeper")
    assert job.wait(timeout=5)
    assert job.status == "failed"
    release.set()
    flow.shutdown()


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "1"])
def test_timeout_validation(bad: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Step().set_timeout(bad)
    with pytest.raises(ValueError, match="default_timeout"):
        Flow(default_timeout=bad)


def test_circuit_breaker_in_a_flow() -> None:
    now = itertools.count()
    clock_value = [0.0]
    step = Step(fail=True)
    step.set_circuit_breaker(
        failure_threshold=2, reset_timeout=30.0, clock=lambda: clock_value[0]
    )
    step.set_error_handler(ErrorHandler("continue"))
    flow = Flow()
    flow.add_routine(step, "entry")
    errors = [flow.execute("entry").errors[0]["error_type"] for _ in range(4)]
    assert errors == [
        "ValueError",
        "ValueError",
        "CircuitOpenError",
        "CircuitOpenError",
    ]
    assert step.calls == 2
    stats = flow.get_stats()["circuit_breakers"]["entry"]
    assert stats["state"] == "open" and stats["rejected"] == 2
    assert step.stats()["circuit_breaker"]["state"] == "open"
    clock_value[0] = 31.0  # half-open: one trial; it succeeds and closes the circuit
    step.fail = False
    assert flow.execute("entry").status == "completed"
    assert step.get_circuit_breaker().state == "closed"  # type: ignore[union-attr]
    assert next(now) == 0
    assert issubclass(CircuitOpenError, RuntimeError)


def queued_flow(workers: int, count: int) -> tuple[Flow, Collector, threading.Event]:
    """A source emits ``count`` items; a gate holds the first consumers."""
    gate = threading.Event()
    sink = Collector()
    original = sink.collect

    def gated(**data: Any) -> None:
        gate.wait(10)
        original(**data)

    sink.get_slot("input").handler = gated  # type: ignore[union-attr]
    source = Source()
    source.set_config(count=count)
    flow = Flow(execution_strategy="concurrent", max_workers=workers)
    flow.add_routine(source, "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "sink", "input")
    return flow, sink, gate


@pytest.mark.parametrize("repeat", range(3))
def test_pause_and_resume_run_everything_exactly_once(repeat: int) -> None:
    flow, sink, gate = queued_flow(workers=8, count=1000)
    job = flow.execute("src")
    while flow.get_stats()["strategies"]["concurrent"]["queued"] < 900:
        threading.Event().wait(0.001)
    flow.pause(job, reason="deploy", checkpoint={"step": repeat})
    gate.set()
    assert job.wait(timeout=10)
    assert job.status == "paused"
    held = len(job.pending_tasks)
    assert held + len(sink.received) == 1000 and held > 0
    assert job.pause_points[-1]["reason"] == "deploy"
    assert flow.resume(job) is job
    assert flow.wait_for_completion(timeout=10)
    assert job.status == "completed"
    values = sorted(item["value"] for item in sink.received)
    assert values == list(range(1000))  # each exactly once
    flow.shutdown()


def test_pause_and_resume_sequential_from_a_handler() -> None:
    flow = Flow()
    seen: list[int] = []

    class Pauser(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.take)

        def take(self, value: int) -> None:
            seen.append(value)
            if value == 2:
                context = self.get_execution_context()
                assert context is not None
                context.flow.pause(context.job_state, reason="half way")

    source = Source()
    source.set_config(count=6)
    flow.add_routine(source, "src")
    flow.add_routine(Pauser(), "pauser")
    flow.connect("src", "output", "pauser", "input")
    job = flow.execute("src")
    assert job.status == "paused" and seen == [0, 1, 2]
    assert [t["payload"]["value"] for t in job.pending_tasks] == [3, 4, 5]
    flow.resume(job)
    assert job.status == "completed" and seen == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("repeat", range(3))
def test_cancel_under_load_accounts_for_every_activation(repeat: int) -> None:
    flow, sink, gate = queued_flow(workers=8, count=1000)
    job = flow.execute("src")
    while flow.get_stats()["strategies"]["concurrent"]["queued"] < 900:
        threading.Event().wait(0.001)
    assert flow.cancel(job, reason="stop it")
    gate.set()
    assert job.wait(timeout=10)
    assert job.status == "cancelled" and job.cancel_source == "user"
    dropped = [r.data for r in job.execution_history if r.event_name == "cancelled"]
    assert len(sink.received) + dropped[0]["dropped"] == 1000
    assert len(sink.received) <= 8  # only those already running finished
    assert flow.cancel(job) is False
    flow.shutdown()


def test_pause_resume_cancel_refuse_the_wrong_job() -> None:
    flow, other = Flow(flow_id="a"), Flow(flow_id="b")
    flow.add_routine(Step(), "entry")
    job = flow.execute("entry")
    with pytest.raises(ForeignJobError, match="'a'"):
        other.cancel(job)
    with pytest.raises(ForeignJobError, match="'a'"):
        other.pause(job)
    # a finished job: no effect, and pause says so (as Future.cancel does)
    assert flow.pause(job) is False
    assert flow.resume(job) is job
    assert flow.cancel(job) is False
    assert job.status == "completed"
    pending = JobState(flow_id="a")  # never started here
    with pytest.raises(JobStateError, match="pending"):
        flow.pause(pending)


def test_job_timeout_cancels_with_source_timeout() -> None:
    release, done = threading.Event(), threading.Event()
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Sleeper(release, done), "sleeper")
    job = flow.execute("sleeper", timeout=0.05)
    for _ in range(1000):  # the watchdog cancels at the deadline...
        if job.cancel_source is not None:
            break
        threading.Event().wait(0.005)
    assert job.cancel_source == "timeout" and "timeout" in (job.cancel_reason or "")
    release.set()  # ...and the running handler is let finish; its emit is dropped
    assert job.wait(timeout=5)
    assert job.status == "cancelled"
    with pytest.raises(ValueError, match="timeout"):
        flow.execute("sleeper", timeout=-1)
    flow.shutdown()


def test_stop_records_its_source_and_reason() -> None:
    flow = Flow()
    flow.add_routine(Step(fail=True), "entry")
    job = flow.execute("entry")
    assert job.status == "failed" and job.cancel_source == "stop-on-error"
    assert "ValueError" in (job.cancel_reason or "")


def test_merge_callable_error_lands_in_the_job(strategy: str) -> None:
    def broken(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        raise ZeroDivisionError("bad merge")

    class Sink(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=lambda **kw: None, merge_strategy=broken)

    flow = Flow(execution_strategy=strategy)
    flow.add_routine(Step(), "entry")
    flow.add_routine(Sink(), "sink")
    flow.connect("entry", "output", "sink", "input")
    with flow:
        job = flow.execute("entry")
        flow.wait_for_completion(timeout=10)
    assert job.status == "failed"
    assert job.errors[0]["error_type"] == "ZeroDivisionError"
    assert job.errors[0]["routine_id"] == "entry"  # raised where the emit happened


def test_optional_routine_with_stop_never_fails_the_job() -> None:
    flow = Flow()
    step = Step(fail=True)
    step.set_as_optional(ErrorStrategy.STOP)
    flow.add_routine(step, "entry")
    job = flow.execute("entry")
    assert job.status == "completed"
    assert job.routine_states["entry"]["status"] == "error_continued"
