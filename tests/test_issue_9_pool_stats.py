"""Issue 9 item 6: pool statistics as a typed object, also readable as a dict.

Every figure is checked exactly after a known workload.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import orjson
import pytest

from routilux import (
    Batch,
    ErrorHandler,
    Flow,
    InboxStats,
    PoolStats,
    Routine,
    RoutineStats,
)

from .routines import Collector, Source

WAIT = 30


class Picky(Routine):
    """Fails on odd values; passes even ones on."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.define_event("output", ["value"])

    def take(self, value: int, tag: Any = None) -> None:
        if value % 2:
            raise ValueError(f"odd {value}")
        self.emit("output", value=value)


def picky_flow(strategy: str, workers: int = 4) -> tuple[Flow, Collector]:
    flow = Flow("stats", strategy, workers, error_handler=ErrorHandler("continue"))
    source, sink = Source(), Collector()
    source.set_config(count=10)
    flow.add_routine(source, "src")
    flow.add_routine(Picky(), "picky")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "picky", "input")
    flow.connect("picky", "output", "sink", "input")
    return flow, sink


def test_issue_9_stats_are_exact_after_a_known_workload(strategy: str) -> None:
    flow, sink = picky_flow(strategy)
    with flow:
        for _ in range(3):
            assert flow.execute("src").wait(WAIT)
        stats = flow.get_stats()
    assert isinstance(stats, PoolStats)
    # Per job: 1 source + 10 picky (5 fail) + 5 sink activations.
    assert stats.jobs == {"completed": 3}
    assert stats.routines["src"].total_executions == 3
    picky = stats.routines["picky"]
    assert isinstance(picky, RoutineStats)
    assert (picky.total_executions, picky.completed, picky.failed) == (30, 15, 15)
    assert picky.success_rate == 0.5
    assert stats.routines["sink"].total_executions == 15
    assert len(sink.received) == 15
    assert stats.failed == 15
    assert stats.completed == 3 * 16
    assert (stats.busy, stats.awaiting, stats.queued, stats.dropped) == (0, 0, 0, 0)
    assert stats.workers == (1 if strategy == "sequential" else 4)
    assert stats.active_jobs == stats.paused_jobs == 0
    assert stats.inboxes == InboxStats(waiting=0, payloads=0)
    assert stats.dead_letters == 15  # CONTINUE keeps each failed item
    assert stats.pressure is None and stats.circuit_breakers == {}
    assert stats.flow_id == "stats"


def test_issue_9_stats_read_as_a_mapping(strategy: str) -> None:
    flow, _ = picky_flow(strategy)
    flow.routines["picky"].set_circuit_breaker(failure_threshold=100)
    with flow:
        assert flow.execute("src").wait(WAIT)
        stats = flow.get_stats()
    assert stats["busy"] == stats.busy and stats["routines"] is stats.routines
    assert stats["routines"]["picky"]["failed"] == 5
    assert set(stats) == {field.name for field in dataclasses.fields(PoolStats)}
    assert len(stats) == len(dataclasses.fields(PoolStats))
    plain = stats.to_dict()
    assert plain["routines"]["picky"]["total_executions"] == 10
    assert plain["circuit_breakers"]["picky"]["state"] == "closed"
    assert orjson.loads(orjson.dumps(plain)) == plain  # plain JSON all through
    assert stats == plain  # a snapshot equals a dict of its figures
    with pytest.raises(KeyError):
        stats["nope"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.busy = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.routines["x"] = stats.routines["picky"]  # type: ignore[index]


class Holder(Routine):
    """Reads the flow's inbox figures while the batch still waits."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[InboxStats] = []
        self.define_slot("input", handler=self.look)

    def look(self, **_: Any) -> None:
        context = self.get_execution_context()
        assert context is not None
        self.seen.append(context.flow.get_stats().inboxes)


class Fanner(Routine):
    """Emits ``count`` items to the batch, then one to the holder."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(count=3)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("items", ["value"])
        self.define_event("last", ["value"])

    def fire(self) -> None:
        for i in range(self.get_config("count")):
            self.emit("items", value=i)
        self.emit("last", value=-1)


def test_issue_9_stats_count_payloads_waiting_in_inboxes(strategy: str) -> None:
    flow = Flow("inbox", strategy, 2)
    batched: list[int] = []

    class Batched(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.take, policy=Batch(5))

        def take(self, items: list[dict[str, Any]]) -> None:
            batched.append(len(items))

    holder = Holder()
    flow.add_routine(Fanner(), "fan")
    flow.add_routine(Batched(), "batch")
    flow.add_routine(holder, "hold")
    flow.connect("fan", "items", "batch", "input")
    flow.connect("fan", "last", "hold", "input")
    with flow:
        assert flow.execute("fan").wait(WAIT)
        after = flow.get_stats().inboxes
    # The three items wait in the batch while the holder runs; the job's end
    # flushes them as one call of three.
    assert holder.seen == [InboxStats(waiting=1, payloads=3)]
    assert batched == [3]
    assert after == InboxStats(waiting=0, payloads=0)


def test_issue_9_stats_stay_exact_under_many_threads() -> None:
    for _ in range(5):
        flow, sink = picky_flow("concurrent", workers=8)
        with flow:
            jobs = [flow.execute("src") for _ in range(20)]
            assert all(job.wait(WAIT) for job in jobs)
            stats = flow.get_stats()
        assert stats.jobs == {"completed": 20}
        assert stats.routines["picky"].total_executions == 200
        assert stats.failed == stats.routines["picky"].failed == 100
        assert stats.routines["sink"].total_executions == len(sink.received) == 100
        assert stats.completed == 20 * 16
        assert stats.busy == stats.queued == 0


def test_issue_9_stats_can_be_read_while_jobs_run() -> None:
    flow, _ = picky_flow("concurrent", workers=4)
    readings: list[PoolStats] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            readings.append(flow.get_stats())

    reader = threading.Thread(target=read)
    with flow:
        reader.start()
        try:
            jobs = [flow.execute("src") for _ in range(10)]
            assert all(job.wait(WAIT) for job in jobs)
        finally:
            stop.set()
            reader.join(WAIT)
    # After the shutdown drained the pool: a job's wait() returns as its last
    # task settles the job, a moment before the pool counts that task done.
    final = flow.get_stats()
    assert readings  # no reading raised
    assert all(0 <= r.busy <= 4 and r.completed <= final.completed for r in readings)
    assert final.completed == 10 * 16
