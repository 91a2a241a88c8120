"""Concurrency: exact counts over threads and repeats, limits, waiting, shutdown."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import Flow, Routine, StrategyShutdownError

from .routines import Collector, Source


class FanOut(Routine):
    """Entry routine: one emit reaches every source."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("go")

    def go(self, **params: Any) -> None:
        self.emit("go", **params)


class Burst(Routine):
    """Emits ``count`` distinct items, each tagged with this source's name."""

    def __init__(self, name: str, count: int) -> None:
        super().__init__()
        self.label = name
        self.count = count
        self.define_slot("input", handler=self.burst)
        self.define_event("output", ["item"])

    def burst(self, **params: Any) -> None:
        for i in range(self.count):
            self.emit("output", item=f"{self.label}-{i}")


class Trigger(Burst):
    """A Burst that starts a job: its slot is ``trigger``."""

    def __init__(self, name: str, count: int) -> None:
        Routine.__init__(self)
        self.label = name
        self.count = count
        self.define_slot("trigger", handler=self.burst)
        self.define_event("output", ["item"])


class AppendSink(Routine):
    """Keeps the longest accumulated list it was handed, and counts calls."""

    def __init__(self) -> None:
        super().__init__()
        self.longest: list[Any] = []
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.take, merge_strategy="append")

    def take(self, item: Any) -> None:
        items = item if isinstance(item, list) else [item]
        with self._guard:
            if len(items) > len(self.longest):
                self.longest = items
        self.increment_stat("calls")


class Keeper(Routine):
    """Keeps, per job, the longest accumulated list it was handed; counts calls."""

    def __init__(self) -> None:
        super().__init__()
        self.longest: dict[str, list[Any]] = {}
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.take, merge_strategy="append")

    def take(self, item: Any) -> None:
        items = item if isinstance(item, list) else [item]
        context = self.get_execution_context()
        assert context is not None
        job_id = context.job_state.job_id
        with self._guard:
            if len(items) > len(self.longest.get(job_id, ())):
                self.longest[job_id] = items
        self.increment_stat("calls")


@pytest.mark.timeout(120)
def test_twenty_sources_times_five_hundred_into_one_append_slot() -> None:
    """20 sources run as 20 jobs at once, each emitting 500 items into one append
    slot, on 8 workers; 20 repeats. Every job's slot ends with exactly its own 500."""
    sources, per_source = 20, 500
    for _ in range(20):
        flow = Flow(execution_strategy="concurrent", max_workers=8)
        sink = Keeper()
        flow.add_routine(sink, "sink")
        for s in range(sources):
            flow.add_routine(Trigger(f"s{s}", per_source), f"s{s}")
            flow.connect(f"s{s}", "output", "sink", "input")
        with flow:
            jobs = {flow.execute(f"s{s}").job_id: f"s{s}" for s in range(sources)}
            assert flow.wait_for_completion(timeout=60)
        assert sink.get_stat("calls") == sources * per_source
        assert set(sink.longest) == set(jobs)
        for job_id, name in jobs.items():
            assert sink.longest[job_id] == [f"{name}-{i}" for i in range(per_source)]


@pytest.mark.timeout(60)
def test_twenty_sources_emitting_at_once_into_one_job_slot() -> None:
    """The merge itself under contention: 20 sources in ONE job emit concurrently
    into the same append slot; the accumulated list loses and repeats nothing."""
    sources, per_source = 20, 100
    expected = {f"s{s}-{i}" for s in range(sources) for i in range(per_source)}
    for _ in range(20):
        flow = Flow(execution_strategy="concurrent", max_workers=8)
        flow.add_routine(FanOut(), "entry")
        sink = AppendSink()
        flow.add_routine(sink, "sink")
        for s in range(sources):
            flow.add_routine(Burst(f"s{s}", per_source), f"s{s}")
            flow.connect("entry", "go", f"s{s}", "input")
            flow.connect(f"s{s}", "output", "sink", "input")
        with flow:
            job = flow.execute("entry")
            assert flow.wait_for_completion(timeout=60)
        assert job.status == "completed"
        assert sink.get_stat("calls") == sources * per_source
        assert len(sink.longest) == sources * per_source
        assert set(sink.longest) == expected


def test_five_hundred_jobs_at_once_do_not_share_slot_data() -> None:
    flow = Flow(execution_strategy="concurrent", max_workers=8)
    source = Source()
    source.set_config(count=4)
    sink = Collector("append")
    flow.add_routine(source, "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "sink", "input")
    with flow:
        jobs = [flow.execute("src", {"tag": f"job{n}"}) for n in range(500)]
        assert flow.wait_for_completion(timeout=60)
    assert all(job.status == "completed" for job in jobs)
    assert len(sink.received) == 500 * 4
    for item in sink.received:
        tags = item["tag"] if isinstance(item["tag"], list) else [item["tag"]]
        assert len(set(tags)) == 1, tags  # only its own job's data
        values = item["value"] if isinstance(item["value"], list) else [item["value"]]
        assert len(values) <= 4
    assert sink.get_stat("calls") == 2000


def test_max_concurrency_one_never_overlaps() -> None:
    class Serial(Routine):
        max_concurrency = 1

        def __init__(self) -> None:
            super().__init__()
            self.inside = 0
            self.most = 0
            self._guard = threading.Lock()
            self.define_slot("input", handler=self.work)

        def work(self, **data: Any) -> None:
            with self._guard:
                self.inside += 1
                self.most = max(self.most, self.inside)
            for _ in range(200):  # give other workers every chance to overlap
                pass
            with self._guard:
                self.inside -= 1
            self.increment_stat("calls")

    for _ in range(5):
        flow = Flow(execution_strategy="concurrent", max_workers=8)
        source = Source()
        source.set_config(count=200)
        serial = Serial()
        flow.add_routine(source, "src")
        flow.add_routine(serial, "serial")
        flow.connect("src", "output", "serial", "input")
        with flow:
            for _ in range(4):
                flow.execute("src")
            assert flow.wait_for_completion(timeout=30)
        assert serial.most == 1
        assert serial.get_stat("calls") == 800


def test_set_max_concurrency_two_caps_at_two() -> None:
    first_two = threading.Barrier(2, timeout=10)
    guard = threading.Lock()
    counts = {"inside": 0, "peak": 0, "arrived": 0}

    class Capped(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.work)

        def work(self, value: Any = None) -> None:
            with guard:
                counts["arrived"] += 1
                counts["inside"] += 1
                counts["peak"] = max(counts["peak"], counts["inside"])
                arrived = counts["arrived"]
            if arrived <= 2:
                first_two.wait()  # proves two may run together
            with guard:
                counts["inside"] -= 1

    capped = Capped()
    capped.set_max_concurrency(2)
    flow = Flow(execution_strategy="concurrent", max_workers=6)
    source = Source()
    source.set_config(count=60)
    flow.add_routine(source, "src")
    flow.add_routine(capped, "capped")
    flow.connect("src", "output", "capped", "input")
    with flow:
        for _ in range(3):
            flow.execute("src")
        assert flow.wait_for_completion(timeout=10)
    assert counts["arrived"] == 180
    assert counts["peak"] == 2


def test_wait_for_completion_times_out_then_succeeds() -> None:
    gate = threading.Event()

    class Blocker(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=lambda: gate.wait(10))

    flow = Flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Blocker(), "b")
    job = flow.execute("b")
    assert job.status == "running"
    assert flow.wait_for_completion(timeout=0.05) is False
    assert job.wait(timeout=0.01) is False
    gate.set()
    assert flow.wait_for_completion(timeout=10) is True
    assert job.status == "completed"
    flow.shutdown()
    flow.shutdown()
    with pytest.raises(StrategyShutdownError, match=flow.flow_id):
        flow.execute("b")


def test_threads_are_named_after_the_flow() -> None:
    names: list[str] = []

    class Namer(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot(
                "trigger", handler=lambda: names.append(threading.current_thread().name)
            )

    flow = Flow(flow_id="named", execution_strategy="concurrent")
    flow.add_routine(Namer(), "n")
    with flow:
        flow.execute("n")
        flow.wait_for_completion(timeout=10)
    assert names[0].startswith("routilux-named")


def test_shutdown_without_wait_drops_queued_work() -> None:
    gate = threading.Event()
    started = threading.Event()

    class Slow(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.work)

        def work(self, value: Any = None) -> None:
            started.set()
            gate.wait(10)
            self.increment_stat("ran")

    flow = Flow(execution_strategy="concurrent", max_workers=1)
    source = Source()
    source.set_config(count=5)
    slow = Slow()
    flow.add_routine(source, "src")
    flow.add_routine(slow, "slow")
    flow.connect("src", "output", "slow", "input")
    job = flow.execute("src")
    assert started.wait(10)
    flow.shutdown(wait=False)
    gate.set()
    assert job.wait(10)
    assert job.status == "cancelled"
    assert slow.get_stat("ran") == 1


@pytest.mark.parametrize("strategy_name", ["sequential", "concurrent"])
def test_one_flow_executed_a_thousand_times(strategy_name: str) -> None:
    flow = Flow(execution_strategy=strategy_name, max_workers=4)
    source = Source()
    sink = Collector()
    flow.add_routine(source, "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "sink", "input")
    with flow:
        jobs = [flow.execute("src") for _ in range(1000)]
        assert flow.wait_for_completion(timeout=60)
    assert len(sink.received) == 1000
    assert len({job.job_id for job in jobs}) == 1000
    assert all(job.status == "completed" for job in jobs)


def test_execute_from_many_threads_at_once(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy, max_workers=4)
    source = Source()
    source.set_config(count=10)
    sink = Collector()
    flow.add_routine(source, "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "sink", "input")
    barrier = threading.Barrier(8, timeout=10)

    def client() -> None:
        barrier.wait()
        for _ in range(25):
            flow.execute("src")

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert flow.wait_for_completion(timeout=30)
    flow.shutdown()
    assert len(sink.received) == 8 * 25 * 10
    assert sink.get_stat("calls") == 2000
