"""Issue 9: backpressure: Flow(max_pending=N, on_full="block"|"raise")."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from routilux import (
    ConfigurationError,
    Flow,
    FlowHooks,
    JobState,
    JobStatus,
    QueueFullError,
    Routine,
    StrategyShutdownError,
)

WAIT = 30.0


class Burst(Routine):
    """Emits ``count`` items from one handler call."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, count: int = 1) -> None:
        for value in range(count):
            self.emit("output", value=value)


class Relay(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.relay)
        self.define_event("output", ["value"])

    def relay(self, value: int) -> None:
        self.emit("output", value=value)


class Count(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[int] = []
        self.lock = threading.Lock()
        self.define_slot("input", handler=self.take)

    def take(self, value: int) -> None:
        with self.lock:
            self.values.append(value)


class AsyncCount(Count):
    async def take(self, value: int) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        with self.lock:
            self.values.append(value)


class Sampler(FlowHooks):
    """Reads the flow's pending count at every activation start."""

    def __init__(self) -> None:
        self.flow: Flow | None = None
        self.samples: list[int] = []

    def on_activation_start(self, job: JobState, activation: Any) -> None:
        assert self.flow is not None
        pressure = self.flow.get_stats()["pressure"]
        self.samples.append(pressure["pending"])


def _flow(strategy: str, limit: int, sink: Count, **settings: Any) -> Flow:
    flow = Flow(
        flow_id=f"pressure-{strategy}",
        execution_strategy=strategy,
        max_workers=4,
        max_pending=limit,
        **settings,
    )
    flow.add_routine(Burst(), "burst")
    flow.add_routine(Relay(), "relay")
    flow.add_routine(sink, "sink")
    flow.connect("burst", "output", "relay", "input")
    flow.connect("relay", "output", "sink", "input")
    return flow


@pytest.mark.parametrize("sink_class", [Count, AsyncCount])
def test_pending_never_exceeds_the_bound_and_nothing_is_lost(sink_class: type) -> None:
    sink = sink_class()
    flow = _flow("concurrent", 10, sink)
    sampler = Sampler()
    sampler.flow = flow
    flow.add_hooks(sampler)
    try:
        # one handler emits 1,000 items into a flow that is full at once
        job = flow.execute("burst", {"count": 1000})
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED
        assert sorted(sink.values) == list(range(1000))  # nothing lost, no double
        assert len(sampler.samples) == 1 + 1000 * 2
        assert max(sampler.samples) <= 10
        # an async call frees its place just after it settles: let them land
        for _ in range(1000):
            if flow.get_stats()["pressure"]["pending"] == 0:
                break
            threading.Event().wait(0.005)
        stats = flow.get_stats()["pressure"]
        assert stats["most"] <= 10 and stats["pending"] == 0 and stats["held"] == 0
    finally:
        flow.shutdown(wait=True)


def test_outside_callers_wait_for_room_and_every_job_completes() -> None:
    sink = Count()
    flow = _flow("concurrent", 5, sink)
    jobs: list[JobState] = []
    lock = threading.Lock()

    def start_jobs() -> None:
        for _ in range(25):
            job = flow.execute("burst", {"count": 4})
            with lock:
                jobs.append(job)

    try:
        callers = [threading.Thread(target=start_jobs) for _ in range(4)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(WAIT)
        assert flow.wait_for_completion(WAIT)
        assert len(jobs) == 100
        assert all(job.status is JobStatus.COMPLETED for job in jobs)
        assert len(sink.values) == 400
        assert flow.get_stats()["pressure"]["most"] <= 5
    finally:
        flow.shutdown(wait=True)


def test_on_full_raise_refuses_new_work_naming_the_bound() -> None:
    release = threading.Event()

    class Slow(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.wait)

        def wait(self, **_: Any) -> None:
            release.wait(WAIT)

    flow = Flow(
        flow_id="full",
        execution_strategy="concurrent",
        max_workers=2,
        max_pending=2,
        on_full="raise",
    )
    flow.add_routine(Slow(), "slow")
    try:
        first = [flow.execute("slow"), flow.execute("slow")]
        with pytest.raises(QueueFullError, match=r"'full' is full.*max_pending=2"):
            flow.execute("slow")
        assert flow.get_stats()["active_jobs"] == 2  # the refused one left nothing
        release.set()
        assert all(job.wait(WAIT) for job in first)
        assert flow.execute("slow").wait(WAIT)  # room again
    finally:
        release.set()
        flow.shutdown(wait=True)


def test_a_handler_starting_a_job_in_a_full_flow_does_not_deadlock() -> None:
    inner: list[JobState] = []

    class Starter(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.start_more)

        def start_more(self, value: int) -> None:
            context = self.get_execution_context()
            assert context is not None
            inner.append(context.flow.execute("burst", {"count": 0}))

    flow = Flow(
        flow_id="nested", execution_strategy="concurrent", max_workers=2, max_pending=2
    )
    flow.add_routine(Burst(), "burst")
    flow.add_routine(Starter(), "starter")
    flow.connect("burst", "output", "starter", "input")
    try:
        job = flow.execute("burst", {"count": 20})
        assert job.wait(WAIT) and job.status is JobStatus.COMPLETED
        assert flow.wait_for_completion(WAIT)
        assert len(inner) == 20
        assert all(j.status is JobStatus.COMPLETED for j in inner)
    finally:
        flow.shutdown(wait=True)


def test_sequential_jobs_are_never_held() -> None:
    sink = Count()
    flow = _flow("sequential", 3, sink)
    try:
        job = flow.execute("burst", {"count": 200})
        assert job.status is JobStatus.COMPLETED
        assert sorted(sink.values) == list(range(200))
    finally:
        flow.shutdown(wait=True)


def test_shutdown_wakes_callers_waiting_for_room() -> None:
    release = threading.Event()
    outcome: list[BaseException] = []

    class Slow(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.wait)

        def wait(self, **_: Any) -> None:
            release.wait(WAIT)

    flow = Flow(
        flow_id="closing", execution_strategy="concurrent", max_workers=1, max_pending=1
    )
    flow.add_routine(Slow(), "slow")
    first = flow.execute("slow")

    def blocked() -> None:
        try:
            flow.execute("slow")
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=blocked)
    waiter.start()
    try:
        waiter.join(0.2)
        assert waiter.is_alive()  # waiting for room
        closer = threading.Thread(target=flow.shutdown, kwargs={"timeout": WAIT})
        closer.start()
        waiter.join(WAIT)
        assert not waiter.is_alive()
        assert len(outcome) == 1
        assert isinstance(outcome[0], StrategyShutdownError)
        release.set()
        closer.join(WAIT)
        assert first.wait(WAIT)
    finally:
        release.set()
        flow.shutdown(wait=True)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_pending": 0}, "max_pending"),
        ({"max_pending": True}, "max_pending"),
        ({"max_pending": "10"}, "max_pending"),
        ({"max_pending": 5, "on_full": "drop"}, "on_full"),
    ],
)
def test_bad_backpressure_settings_are_refused(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Flow(flow_id="bad", **settings)
