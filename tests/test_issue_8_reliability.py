"""Regression tests for issue 8: the runtime core keeps its reliability promises.

One test per "runtime core" row of ``../shared/reliability/README.md`` about
handler errors, memory bounds, timeouts and the watchdog, and per defect of issue 8
of that kind; shutdown and checkpoint-store rows are in
``test_issue_8_checkpoints.py``. No test sleeps to synchronize: threads meet on
Events, and every wait has a timeout, so a regression fails instead of hanging.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import tracemalloc
import uuid
import weakref
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobState,
    JobStatus,
    RoutiluxError,
    Routine,
)

from .issue_8_routines import GUARD, Fn, Sink, noop

if TYPE_CHECKING:
    from pathlib import Path


class Unrenderable(Exception):
    """An exception whose ``__str__`` raises (a buggy library's)."""

    def __str__(self) -> str:
        raise ValueError("cannot render")


#: What os.listdir() returns for a latin-1 file name: it holds a lone surrogate.
SURROGATE_NAME = os.fsdecode(b"caf\xe9.csv")


def _raise(how: str) -> None:
    if how == "exit":
        sys.exit(3)
    if how == "ctrl-c":
        raise KeyboardInterrupt
    if how == "unrenderable":
        raise Unrenderable
    if how == "surrogate":
        raise ValueError(f"cannot parse {SURROGATE_NAME}")


def _raiser(routine: Fn, params: dict[str, Any]) -> None:
    _raise(str(params.get("how", "")))


# -- errors raised by handlers -------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "error_type"), [("exit", "SystemExit"), ("ctrl-c", "KeyboardInterrupt")]
)
def test_issue_8_systemexit_and_ctrl_c_in_a_handler_fail_the_job_and_keep_the_pool(
    how: str, error_type: str
) -> None:
    # Row 01: sys.exit() or KeyboardInterrupt in a pool handler was not recorded, the
    # job said "completed" and the worker was lost for good.
    flow = Flow("quit", execution_strategy="concurrent", max_workers=1)
    flow.add_routine(Fn(_raiser), "q")
    try:
        for _ in range(3):  # more than max_workers: each would have lost a worker
            job = flow.execute("q", entry_params={"how": how})
            assert job.wait(GUARD)
            assert job.status is JobStatus.FAILED
            assert [e.error_type for e in job.errors] == [error_type]
        harmless = flow.execute("q", entry_params={"how": "fine"})
        assert harmless.wait(GUARD)
        assert harmless.status is JobStatus.COMPLETED
        assert flow.wait_for_completion(GUARD)
    finally:
        flow.shutdown(wait=False)


@pytest.mark.parametrize("store", [False, True], ids=["no-store", "sqlite-path"])
@pytest.mark.parametrize(
    ("how", "error_type"),
    [("unrenderable", "Unrenderable"), ("surrogate", "ValueError")],
)
def test_issue_8_unrenderable_errors_are_recorded_and_the_pool_keeps_working(
    how: str, error_type: str, store: bool, tmp_path: Path
) -> None:
    # Row 17: an exception whose __str__ raises vanished and cost a worker; a
    # message with surrogate escapes failed a checkpointed CONTINUE job, hung it
    # and cost a worker.
    flow = Flow(
        "render",
        execution_strategy="concurrent",
        max_workers=1,
        checkpoint_store=tmp_path / "c.sqlite" if store else None,
    )
    routine = Fn(_raiser)
    routine.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(routine, "src")
    try:
        for _ in range(2):
            job = flow.execute("src", entry_params={"how": how})
            assert job.wait(GUARD)
            assert job.status is JobStatus.COMPLETED  # CONTINUE: the job goes on
            assert [e.error_type for e in job.errors] == [error_type]
            message = job.errors[0].message
            message.encode("utf-8")  # storable text, whatever the exception held
            assert job.serialize()["errors"][0]["error_type"] == error_type
        harmless = flow.execute("src", entry_params={"how": "fine"})
        assert harmless.wait(GUARD)
        assert harmless.status is JobStatus.COMPLETED
    finally:
        flow.shutdown(wait=False)


def test_issue_8_ctrl_c_in_a_sequential_handler_is_raised_after_the_job_settles() -> (
    None
):
    # Issue 8: Ctrl-C in the caller's thread is re-raised to the caller of execute(),
    # once the job is settled (failed, its error recorded, no longer active).
    seen: list[JobState] = []

    def interrupted(routine: Fn, params: dict[str, Any]) -> None:
        context = routine.get_execution_context()
        assert context is not None
        seen.append(context.job_state)
        raise KeyboardInterrupt

    flow = Flow("ctrl-c")
    flow.add_routine(Fn(interrupted), "q")
    with pytest.raises(KeyboardInterrupt):
        flow.execute("q")
    (job,) = seen
    assert job.is_done
    assert job.status is JobStatus.FAILED
    assert [e.error_type for e in job.errors] == ["KeyboardInterrupt"]
    assert flow.wait_for_completion(1.0)
    assert flow.get_stats()["active_jobs"] == 0
    flow.shutdown()


# -- memory stays bounded ------------------------------------------------------------


class Producer(Routine):
    """Emits ``value=0..n-1`` on ``item``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("item", ["value"])

    def go(self, n: int) -> None:
        for i in range(n):
            self.emit("item", value=i)


def _append_run(n: int) -> tuple[int, list[Any]]:
    """Peak traced memory of a sequential job of ``n`` arrivals into ``append``."""
    flow = Flow("append", history_limit=10)
    sink = Sink(merge_strategy="append")
    flow.add_routine(Producer(), "p")
    flow.add_routine(sink, "c")
    flow.connect("p", "item", "c", "input")
    gc.collect()
    tracemalloc.start()
    try:
        job = flow.execute("p", entry_params={"n": n})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert job.status is JobStatus.COMPLETED
    flow.shutdown()
    return peak, sink.values


def test_issue_8_append_fan_in_memory_is_linear() -> None:
    # Row 03: every queued activation of an append slot carried a copy of the whole
    # list so far: N arrivals held N**2/2 values at once. Four times the arrivals
    # must cost about four times the memory, not sixteen.
    small, values = _append_run(1000)
    assert values[-1] == list(range(1000))  # the last call sees every arrival
    large, values = _append_run(4000)
    assert values[-1] == list(range(4000))
    assert large < 6 * small, f"peak {small} B for 1000 arrivals, {large} B for 4000"


class Loop(Routine):
    """Emits ``again(left - 1)`` to itself until ``left`` is 0."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.step)
        self.define_event("again", ["left", "blob"])

    def step(self, left: int, blob: str = "") -> None:
        if left > 0:
            self.emit("again", left=left - 1, blob="x" * 64)


def test_issue_8_the_tracker_keeps_at_most_history_limit_records() -> None:
    # Row 04: each job's tracker kept every run and every payload whatever
    # history_limit said.
    flow = Flow("long", history_limit=10)
    flow.add_routine(Loop(), "l")
    flow.connect("l", "again", "l", "trigger")
    job = flow.execute("l", entry_params={"left": 500})
    assert job.status is JobStatus.COMPLETED
    tracker = flow.execution_tracker
    assert tracker is not None
    runs = sum(len(r) for r in tracker.routine_executions.values())
    assert runs <= 10
    assert len(tracker.event_flow) <= 10
    assert len(job.execution_history) <= 10
    flow.shutdown()


def test_issue_8_the_watchdog_lets_go_of_finished_jobs() -> None:
    # Row 05: one long job with a deadline kept every later, finished job alive in
    # the watchdog heap until its own deadline passed.
    started, release = threading.Event(), threading.Event()

    def work(routine: Fn, params: dict[str, Any]) -> None:
        if params.get("block"):
            started.set()
            release.wait(GUARD)

    flow = Flow("wd", execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Fn(work), "w")
    long_job = flow.execute("w", entry_params={"block": True}, timeout=3600)
    try:
        assert started.wait(GUARD)
        finished: list[weakref.ref[JobState]] = []
        for i in range(50):
            # Sequential: execute() returns once the job is settled and filed away.
            job = flow.execute("w", {"i": i}, "sequential", timeout=3600)
            assert job.status is JobStatus.COMPLETED
            finished.append(weakref.ref(job))
        del job
        gc.collect()
        alive = sum(ref() is not None for ref in finished)
        assert alive == 0, f"{alive} of 50 finished jobs are still referenced"
    finally:
        release.set()
        assert long_job.wait(GUARD)
        flow.shutdown()


# -- timeouts and the watchdog -------------------------------------------------------


def test_issue_8_a_huge_timeout_leaves_the_watchdog_working() -> None:
    # Row 16: timeout=1e10 was accepted and killed the watchdog thread
    # (OverflowError): no timeout of the flow fired again. The huge deadline stays
    # pending (its job blocks) while a routine timeout must still fire.
    entered = {"a": threading.Event(), "b": threading.Event()}
    release = threading.Event()

    def work(routine: Fn, params: dict[str, Any]) -> None:
        entered[str(params["name"])].set()
        release.wait(GUARD)

    flow = Flow("huge", execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Fn(work), "a")
    slow = Fn(work)
    slow.set_timeout(0.2)
    slow.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(slow, "b")
    try:
        refused: RoutiluxError | None = None
        try:
            flow.execute("a", entry_params={"name": "a"}, timeout=1e10)
        except RoutiluxError as exc:  # refusing it at once keeps the promise too
            refused = exc
        if refused is None:
            assert entered["a"].wait(GUARD)
        else:
            assert "timeout" in str(refused)
        job = flow.execute("b", entry_params={"name": "b"})
        assert entered["b"].wait(GUARD)
        # The routine timeout settles the activation while the handler still blocks.
        assert job.wait(5.0), "the routine timeout never fired"
        assert [e.error_type for e in job.errors] == ["RoutineTimeoutError"]
    finally:
        release.set()
        flow.shutdown()


def test_issue_8_timeouts_still_fire_after_the_watchdog_sweeps_finished_jobs() -> None:
    # Found while testing row 05: finished jobs' deadlines are swept from the heap;
    # a routine timeout set after that must still fire.
    entered = {"long": threading.Event(), "late": threading.Event()}
    release = threading.Event()

    def work(routine: Fn, params: dict[str, Any]) -> None:
        name = params.get("name")
        if name is not None:
            entered[str(name)].set()
            release.wait(GUARD)

    flow = Flow("sweep", execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Fn(work), "w")
    late = Fn(work)
    late.set_timeout(0.2)
    late.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(late, "late")
    try:
        flow.execute("w", entry_params={"name": "long"}, timeout=3600)
        assert entered["long"].wait(GUARD)
        for _ in range(3):  # their met deadlines get swept from the heap
            done = flow.execute("w", None, "sequential", timeout=3600)
            assert done.status is JobStatus.COMPLETED
        job = flow.execute("late", entry_params={"name": "late"})
        assert entered["late"].wait(GUARD)
        assert job.wait(3.0), "the routine timeout never fired"
        assert [e.error_type for e in job.errors] == ["RoutineTimeoutError"]
    finally:
        release.set()
        flow.shutdown()


def test_issue_8_a_nested_sequential_job_through_a_busy_routine_fails_not_hangs() -> (
    None
):
    # Row 07: a max_concurrency=1 routine whose handler runs a nested sequential job
    # through itself waited for itself forever; the job deadline did not help.
    inner: list[JobState] = []

    def outer(routine: Fn, params: dict[str, Any]) -> None:
        if params.get("depth") == 0:
            context = routine.get_execution_context()
            assert context is not None
            inner.append(
                context.flow.execute("outer", entry_params={"depth": 1}, timeout=2)
            )

    flow = Flow("nested")
    routine = Fn(outer)
    routine.set_max_concurrency(1)
    flow.add_routine(routine, "outer")
    outcome: list[JobState] = []
    thread = threading.Thread(
        target=lambda: outcome.append(
            flow.execute("outer", entry_params={"depth": 0}, timeout=2)
        ),
        daemon=True,  # on a regression it stays blocked: never join it for good
    )
    thread.start()
    thread.join(GUARD)
    try:
        assert not thread.is_alive(), "the nested execute() deadlocked"
        (nested,) = inner
        assert nested.status is JobStatus.FAILED
        assert [e.error_type for e in nested.errors] == ["ReentrantCallError"]
        assert outcome[0].is_done
    finally:
        flow.shutdown(wait=False)


def test_issue_8_emits_after_a_routine_timeout_never_run() -> None:
    # Row 09: an emit that passed the timed-out check just before the deadline ran
    # its handler after the job had completed, and the job completed twice. The
    # sink's merge callable runs inside that emit (after the check on 234f19b) and
    # holds it until the job is done.
    job_known, handler_done = threading.Event(), threading.Event()
    jobs: list[JobState] = []

    def hold_late_emit(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if new.get("value") == "late":
            assert job_known.wait(GUARD)
            jobs[0].wait(GUARD)  # the deadline passes meanwhile
        return new

    def stream(routine: Fn, params: dict[str, Any]) -> None:
        try:
            routine.emit("out", value="late")
        finally:
            handler_done.set()

    flow = Flow("late", execution_strategy="concurrent", max_workers=2)
    streamer = Fn(stream)
    streamer.set_timeout(0.05)
    streamer.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    sink = Sink(merge_strategy=hold_late_emit)
    flow.add_routine(streamer, "s")
    flow.add_routine(sink, "k")
    flow.connect("s", "out", "k", "input")
    try:
        jobs.append(flow.execute("s"))
        job_known.set()
        assert jobs[0].wait(GUARD)
        assert handler_done.wait(GUARD)
    finally:
        flow.shutdown(wait=True, timeout=GUARD)  # drains whatever the late emit queued
    job = jobs[0]
    assert sink.values == []
    names = [record.event_name for record in job.execution_history]
    assert names.count("completed") == 1
    assert job.status is JobStatus.COMPLETED
    assert [e.error_type for e in job.errors] == ["RoutineTimeoutError"]


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_8_a_dropped_flow_that_used_a_timeout_leaves_no_thread(
    strategy: str,
) -> None:
    # Row 23: a flow dropped without shutdown() leaked its watchdog thread for the
    # life of the process.
    prefix = f"routilux-leak-{uuid.uuid4().hex}"

    def use_and_drop() -> None:
        flow = Flow(
            prefix.removeprefix("routilux-"),
            execution_strategy=strategy,
            max_workers=2,
            default_timeout=5.0,
        )
        flow.add_routine(Fn(noop), "w")
        job = flow.execute("w", timeout=5.0)
        assert job.wait(GUARD)
        assert job.status is JobStatus.COMPLETED

    use_and_drop()
    gc.collect()
    deadline = time.monotonic() + 3.0
    for thread in threading.enumerate():
        if thread.name.startswith(prefix):
            thread.join(max(0.0, deadline - time.monotonic()))
    leaked = [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
    assert leaked == []
