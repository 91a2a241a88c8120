"""Issue 8: records a job keeps do not load the garbage collector (flat cost per hop).

The cost per hop must not grow with the hops already made in a job. Before, each
emit and activation left three tuples holding payload dicts, which CPython's cycle
collector kept walking for the life of the job; these tests count those objects
rather than time anything.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from routilux import Flow, FlowHooks, JobState, Routine
from routilux.record_log import RecordLog
from routilux.tracking import ExecutionTracker


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, count: int) -> None:
        for i in range(count):
            self.emit("output", value=i)


class Relay(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.relay)
        self.define_event("output", ["value"])

    def relay(self, value: int) -> None:
        self.emit("output", value=value)


def _chain(strategy: str) -> Flow:
    flow = Flow(flow_id=f"records-{strategy}", execution_strategy=strategy)
    flow.add_routine(Source(), "source")
    previous = "source"
    for stage in range(1, 4):
        flow.add_routine(Relay(), f"stage{stage}")
        flow.connect(previous, "output", f"stage{stage}", "input")
        previous = f"stage{stage}"
    return flow


def _tracked_after_job(strategy: str, events: int) -> tuple[int, Any]:
    flow = _chain(strategy)
    try:
        gc.collect()
        before = len(gc.get_objects())
        job = flow.execute("source", entry_params={"count": events})
        assert job.wait(30)
        gc.collect()
        grown = len(gc.get_objects()) - before
    finally:
        flow.shutdown(wait=True)
    return grown, job


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_tracked_objects_do_not_grow_with_hops(strategy: str) -> None:
    _tracked_after_job(strategy, 100)  # first-use caches are not the job's
    small, small_job = _tracked_after_job(strategy, 100)
    large, large_job = _tracked_after_job(strategy, 3_000)
    # 3,000 events make 12,000 activations and 12,000 emits: with a tracked
    # record per emit and activation the job would keep 36,000+ more objects.
    assert large - small < 100, (small, large)
    # ... and every record is still there to read
    assert len(large_job.execution_history) == 1 + 3_000 * 4 + 1
    assert str(large_job.status) == "completed"
    assert len(small_job.execution_history) == 1 + 100 * 4 + 1


def test_record_log_keeps_whole_records_in_order() -> None:
    log: RecordLog[tuple[str, int]] = RecordLog(2)
    for i in range(5):
        log.append(("r", i))
    assert log.snapshot() == [("r", i) for i in range(5)]
    assert len(log) == 5
    assert list(log) == log.snapshot()
    assert bool(log) and not RecordLog(2)


def test_record_log_limit_drops_the_oldest_whole_records() -> None:
    log: RecordLog[tuple[str, int, float]] = RecordLog(3, limit=2)
    for i in range(5):
        log.append(("r", i, float(i)))
    assert log.snapshot() == [("r", 3, 3.0), ("r", 4, 4.0)]
    trimmed = RecordLog(3, None, [("a", 1, 1.0), ("b", 2, 2.0), ("c", 3, 3.0)])
    assert trimmed.with_limit(1).snapshot() == [("c", 3, 3.0)]
    assert trimmed.with_limit(0).snapshot() == []
    assert trimmed.with_limit(None).snapshot() == trimmed.snapshot()


def test_record_log_refuses_a_record_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="3 cells in a log of 2"):
        RecordLog(2, None, [("a", 1, 2)])


@pytest.mark.parametrize("limit", [None, 500])
def test_record_log_concurrent_appends_are_never_torn(limit: int | None) -> None:
    log: RecordLog[tuple[int, int, str]] = RecordLog(3, limit)
    threads, per_thread = 8, 2_000
    seen_torn: list[Any] = []
    stop = threading.Event()

    def writer(t: int) -> None:
        for i in range(per_thread):
            log.append((t, i, f"{t}:{i}"))

    def reader() -> None:
        while not stop.is_set():
            seen_torn.extend(r for r in log.snapshot() if r[2] != f"{r[0]}:{r[1]}")

    watcher = threading.Thread(target=reader)
    watcher.start()
    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    watcher.join()
    records = log.snapshot()
    assert not seen_torn
    if limit is None:
        assert sorted(records) == sorted(
            (t, i, f"{t}:{i}") for t in range(threads) for i in range(per_thread)
        )
    else:
        assert len(records) == limit
    order = {t: [r[1] for r in records if r[0] == t] for t in range(threads)}
    assert all(mine == sorted(mine) for mine in order.values())  # each writer's order


def test_history_limit_still_bounds_a_job_and_its_tracker() -> None:
    flow = _chain("sequential")
    flow.history_limit = 10
    try:
        job = flow.execute("source", entry_params={"count": 50})
        assert len(job.execution_history) == 10
        assert job.execution_history[-1].event_name == "completed"
        tracker = flow.execution_tracker
        assert tracker is not None
        assert len(tracker.event_flow) == 10
        runs = tracker.routine_executions
        assert sum(len(v) for v in runs.values()) == 10
    finally:
        flow.shutdown(wait=True)


def test_hand_built_job_state_history_round_trips() -> None:
    job = JobState("f")
    job.record_execution("a", "output", {"x": 1})
    job.record_execution("b", "output", {"x": [1, 2]})
    restored = JobState.deserialize(job.serialize())
    assert [(r.routine_id, r.data) for r in restored.execution_history] == [
        ("a", {"x": 1}),
        ("b", {"x": [1, 2]}),
    ]
    tracker = ExecutionTracker("f", limit=1)
    tracker.record_event("a", "e", "b", {"x": 1})
    tracker.record_event("a", "e", None, {"x": 2})
    assert tracker.event_flow == [
        {
            "timestamp": tracker.event_flow[0]["timestamp"],
            "source_routine_id": "a",
            "event_name": "e",
            "target_routine_id": None,
            "data": {"x": 2},
        }
    ]


def test_a_kept_finished_job_holds_few_objects_for_the_collector() -> None:
    # Every object a kept job holds is walked by each full collection for as
    # long as the caller keeps the job: a service keeping its last 10,000 jobs
    # pays for each one. This four-routine job holds 23 (3.11) today: a JobState,
    # its containers, a latch, its outputs, and three per routine state.
    flow = _chain("sequential")
    try:
        for _ in range(20):
            flow.execute("source", entry_params={"count": 1})
        gc.collect()
        before = len(gc.get_objects())
        kept = [flow.execute("source", entry_params={"count": 1}) for _ in range(200)]
        gc.collect()
        per_job = (len(gc.get_objects()) - before) / len(kept)
    finally:
        flow.shutdown(wait=True)
    assert per_job <= 26, per_job


class _Counting(FlowHooks):
    def __init__(self) -> None:
        self.ends = 0
        self._guard = threading.Lock()

    def on_job_end(self, job: JobState) -> None:
        with self._guard:
            self.ends += 1


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
@pytest.mark.parametrize("with_hooks", [False, True])
def test_a_dropped_finished_job_leaves_no_reference_cycle(
    strategy: str, with_hooks: bool
) -> None:
    # A job's ledger, state, observers and outputs refer to each other only one
    # way: once the caller drops a finished job, reference counting frees all of
    # it, and the garbage collector has nothing to find (a cycle per job cost
    # ~8 us of collection per job and grew the older generations).
    flow = _chain(strategy)
    hooks = _Counting()
    if with_hooks:
        flow.add_hooks(hooks)
    try:
        for _ in range(20):  # first-use caches are not the jobs'
            assert flow.execute("source", entry_params={"count": 2}).wait(30)
        gc.collect()
        gc.disable()
        try:
            for _ in range(300):
                job = flow.execute("source", entry_params={"count": 2})
                assert job.wait(30)
                del job
            assert flow.wait_for_completion(30)
            unreachable = gc.collect()
        finally:
            gc.enable()
    finally:
        flow.shutdown(wait=True)
    # Before: 38 objects in cycles per job (11,400 here).
    assert unreachable < 100, unreachable
    assert hooks.ends == (320 if with_hooks else 0)


def test_a_hook_error_after_its_ledger_is_gone_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from routilux.runtime.observers import Observers
    from routilux.runtime.stats import FlowStats

    class Raising(FlowHooks):
        def on_job_start(self, job: JobState) -> None:
            raise RuntimeError("hook broke")

    class Ledger:
        def __init__(self) -> None:
            self.recorded: list[str] = []

        def record(self, where: str, exc: BaseException) -> None:
            self.recorded.append(where)

    job = JobState(flow_id="f")
    ledger = Ledger()
    observers = Observers(
        job, ExecutionTracker("f"), FlowStats(), [Raising()], ledger.record
    )
    observers.job_started()
    assert ledger.recorded == ["Raising.on_job_start"]
    del ledger  # the observers hold it weakly
    with caplog.at_level("ERROR", logger="routilux"):
        observers.job_started()
    assert "hook Raising.on_job_start raised" in caplog.text
    assert "hook broke" in caplog.text
