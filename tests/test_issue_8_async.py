"""Issue 8: ``async def`` handlers run on the runtime's event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobFailedError,
    JobStatus,
    Routine,
    RoutineTimeoutError,
)
from tests.routines import Collector, Source

WAIT = 10.0


class AsyncDouble(Routine):
    """Awaits, then emits twice the value."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.double)
        self.define_event("output", ["value"])

    async def double(self, value: int) -> int:
        await asyncio.sleep(0)
        self.emit("output", value=value * 2)
        return value * 2


class Gathering(Routine):
    """Counts itself as waiting, then awaits a shared asyncio.Event."""

    def __init__(self, room: WaitingRoom) -> None:
        super().__init__()
        self.room = room
        self.define_slot("input", handler=self.wait_for_release)

    async def wait_for_release(self, value: int) -> int:
        await self.room.arrive()
        return value


class WaitingRoom:
    """Where async handlers wait together until the test releases them."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.waiting = 0
        self.all_waiting = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.release: asyncio.Event | None = None
        self._lock = threading.Lock()

    async def arrive(self) -> None:
        if self.release is None:
            self.loop = asyncio.get_running_loop()
            self.release = asyncio.Event()
        release = self.release
        with self._lock:
            self.waiting += 1
            if self.waiting == self.expected:
                self.all_waiting.set()
        await release.wait()

    def open(self) -> None:
        assert self.loop is not None and self.release is not None
        self.loop.call_soon_threadsafe(self.release.set)


def chain(strategy: str, workers: int = 4) -> tuple[Flow, Collector]:
    flow = Flow(execution_strategy=strategy, max_workers=workers)
    source = Source()
    source.set_config(count=5)
    sink = Collector()
    flow.add_routine(source, "src")
    flow.add_routine(AsyncDouble(), "double")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "double", "input")
    flow.connect("double", "output", "sink", "input")
    return flow, sink


def test_issue_8_async_handler_runs_and_its_emits_arrive(strategy: str) -> None:
    flow, sink = chain(strategy)
    with flow:
        job = flow.execute("src")
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED, job.errors
    assert sorted(item["value"] for item in sink.received) == [0, 2, 4, 6, 8]
    assert job.errors == []


def test_issue_8_thousand_async_handlers_wait_together_on_few_threads() -> None:
    count = 1000
    room = WaitingRoom(count)
    flow = Flow(execution_strategy="concurrent", max_workers=4)
    flow.add_routine(Source(), "src")
    for index in range(count):
        rid = f"g{index}"
        flow.add_routine(Gathering(room), rid)
        flow.connect("src", "output", rid, "input")
    # Threads that other tests left in this process (Ray's, a store's step
    # writer that lingers a moment) are not this flow's.
    foreign = {
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and thread.name != "routilux-asyncio"
    }
    with flow:
        job = flow.execute("src")
        try:
            assert room.all_waiting.wait(WAIT), f"only {room.waiting} waiting"
            assert room.waiting == count
            ours = [t.name for t in threading.enumerate() if t not in foreign]
            assert len(ours) <= 4 + 4, ours
            assert not job.is_done
        finally:
            room.open()  # a failed check must not leave the flow waiting
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED
    assert len(job.result()) == count
    assert flow.get_stats()["routines"]["g0"]["total_executions"] == 1


class Slow(Routine):
    """Awaits forever (until cancelled); records that its finally ran."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.cleaned_up = threading.Event()
        self.define_slot("trigger", handler=self.hang)

    async def hang(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            self.cleaned_up.set()


def test_issue_8_timed_out_async_handler_is_cancelled(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy)
    slow = Slow()
    slow.set_timeout(0.05)
    flow.add_routine(slow, "slow")
    with flow:
        job = flow.execute("slow")
        assert job.wait(WAIT)
    assert slow.cleaned_up.wait(WAIT), "the coroutine was not cancelled"
    assert job.status is JobStatus.FAILED
    assert [e.error_type for e in job.errors] == ["RoutineTimeoutError"]
    with pytest.raises(JobFailedError, match="timeout") as raised:
        job.result()
    assert isinstance(raised.value.__cause__, RoutineTimeoutError)


def test_issue_8_cancel_reaches_an_awaiting_handler() -> None:
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    slow = Slow()
    flow.add_routine(slow, "slow")
    with flow:
        job = flow.execute("slow")
        assert slow.started.wait(WAIT)
        assert flow.cancel(job, "enough")
        assert job.wait(WAIT)
    assert slow.cleaned_up.wait(WAIT)
    assert job.status is JobStatus.CANCELLED
    assert job.cancel_reason == "enough"
    assert job.errors == []


class Flaky(Routine):
    """Fails ``failures`` times, then returns ``"ok"``."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0
        self.define_slot("trigger", handler=self.call)

    async def call(self) -> str:
        self.calls += 1
        await asyncio.sleep(0)
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls}")
        return "ok"


def test_issue_8_async_retries_back_off_and_succeed(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy)
    flaky = Flaky(2)
    flaky.set_error_handler(
        ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=3, retry_delay=0.001)
    )
    flow.add_routine(flaky, "flaky")
    with flow:
        job = flow.execute("flaky")
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED
    assert flaky.calls == 3
    assert [e.attempt for e in job.errors] == [1, 2]
    assert job.result() == {"flaky": "ok"}


def test_issue_8_sync_function_returning_a_coroutine_is_awaited() -> None:
    class Deferred(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.start)

        def start(self, value: int = 0) -> Any:
            async def later() -> int:
                await asyncio.sleep(0)
                return value + 1

            return later()

    flow = Flow()
    flow.add_routine(Deferred(), "d")
    job = flow.execute("d", {"value": 41})
    assert job.result(WAIT) == {"d": 42}


def test_issue_8_execute_async_and_wait_async(strategy: str) -> None:
    flow, sink = chain(strategy)

    async def main() -> tuple[JobStatus, bool]:
        job = await flow.execute_async("src")
        return job.status, await job.wait_async(1.0)

    with flow:
        status, waited = asyncio.run(main())
    assert status is JobStatus.COMPLETED
    assert waited
    assert len(sink.received) == 5


def test_issue_8_wait_async_times_out() -> None:
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    slow = Slow()
    flow.add_routine(slow, "slow")

    async def main() -> bool:
        job = flow.execute("slow")
        waited = await job.wait_async(0.05)
        flow.cancel(job)
        return waited

    with flow:
        assert asyncio.run(main()) is False


def test_issue_8_sequential_execute_returns_a_settled_job_after_a_timeout() -> None:
    for _ in range(20):
        flow = Flow()
        slow = Slow()
        slow.set_timeout(0.01)
        flow.add_routine(slow, "slow")
        job = flow.execute("slow")
        assert job.is_done
        assert job.status is JobStatus.FAILED
