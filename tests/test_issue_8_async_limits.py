"""Issue 8: ``async def`` handlers keep their routine's max_concurrency and timeout.

An async handler leaves its worker thread at once, so the limit must hold on the
event loop; time spent waiting for a place is not handler time (no timeout for it).
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import pytest

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Flow,
    FlowHooks,
    JobState,
    JobStatus,
    Routine,
)
from tests.routines import Source

WAIT = 10.0
STRATEGIES = ["sequential", "concurrent"]


class Occupancy:
    """Counts handlers inside at once (from the event-loop thread)."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.calls = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.calls += 1
            self.most = max(self.most, self.inside)

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1


class SlowAsync(Routine):
    """Awaits ``pause`` seconds per call, counting how many are inside at once."""

    def __init__(self, occupancy: Occupancy, pause: float) -> None:
        super().__init__()
        self.occupancy = occupancy
        self.pause = pause
        self.define_slot("input", handler=self.work)

    async def work(self, value: int, **_: Any) -> int:
        self.occupancy.enter()
        try:
            await asyncio.sleep(self.pause)
        finally:
            self.occupancy.leave()
        return value


def _flow(strategy: str, count: int, target: Routine) -> Flow:
    flow = Flow(flow_id=f"async-limits-{strategy}", execution_strategy=strategy)
    source = Source()
    source.set_config(count=count)
    flow.add_routine(source, "source")
    flow.add_routine(target, "slow")
    flow.connect("source", "output", "slow", "input")
    return flow


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("limit", [1, 3])
def test_async_handlers_respect_max_concurrency(strategy: str, limit: int) -> None:
    occupancy = Occupancy()
    slow = SlowAsync(occupancy, 0.01)
    slow.set_max_concurrency(limit)
    flow = _flow(strategy, 24, slow)
    try:
        job = flow.execute("source")
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED
        assert occupancy.calls == 24
        assert occupancy.most == limit  # reached, never passed
        assert occupancy.inside == 0
    finally:
        flow.shutdown(wait=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_async_limit_holds_across_jobs_of_the_flow(strategy: str) -> None:
    occupancy = Occupancy()
    slow = SlowAsync(occupancy, 0.01)
    slow.set_max_concurrency(2)
    flow = _flow(strategy, 6, slow)
    try:
        if strategy == "sequential":
            # each execute blocks: run the jobs from threads so they overlap
            jobs: list[Any] = []
            threads = [
                threading.Thread(target=lambda: jobs.append(flow.execute("source")))
                for _ in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(WAIT)
        else:
            jobs = [flow.execute("source") for _ in range(4)]
        assert all(job.wait(WAIT) for job in jobs)
        assert [job.status for job in jobs] == [JobStatus.COMPLETED] * 4
        assert occupancy.calls == 24
        assert occupancy.most == 2
    finally:
        flow.shutdown(wait=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_time_waiting_for_a_place_is_not_handler_time(strategy: str) -> None:
    # One place, six calls of 50 ms: the last waits 250 ms, yet the timeout of
    # 200 ms covers only its own 50 ms.
    occupancy = Occupancy()
    slow = SlowAsync(occupancy, 0.05)
    slow.set_max_concurrency(1)
    slow.set_timeout(0.2)
    flow = _flow(strategy, 6, slow)
    try:
        job = flow.execute("source")
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED, job.errors
        assert occupancy.calls == 6
        assert occupancy.most == 1
    finally:
        flow.shutdown(wait=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cancel_reaches_calls_waiting_for_a_place(strategy: str) -> None:
    entered = threading.Event()

    class Blocking(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.work)
            self.calls = 0

        async def work(self, value: int, **_: Any) -> None:
            self.calls += 1
            entered.set()
            await asyncio.sleep(60)

    class Started(FlowHooks):
        def on_job_start(self, job: JobState) -> None:
            started.append(job)

    started: list[JobState] = []
    blocking = Blocking()
    blocking.set_max_concurrency(1)
    flow = _flow(strategy, 5, blocking)
    flow.add_hooks(Started())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "coroutine was never awaited"
            if strategy == "sequential":
                runner = threading.Thread(target=flow.execute, args=("source",))
                runner.start()
                assert entered.wait(WAIT)
                job = started[0]
            else:
                job = flow.execute("source")
                assert entered.wait(WAIT)
            assert flow.cancel(job, reason="enough")
            assert job.wait(WAIT)
            if strategy == "sequential":
                runner.join(WAIT)
                assert not runner.is_alive()
        assert job.status is JobStatus.CANCELLED
        assert blocking.calls == 1  # the four waiting never got in
        assert flow.wait_for_completion(WAIT)
    finally:
        flow.shutdown(wait=True, timeout=WAIT)


class ReturnsCoroutine(Routine):
    """A sync handler that returns a coroutine (awaited on the event loop)."""

    def __init__(self, occupancy: Occupancy) -> None:
        super().__init__()
        self.occupancy = occupancy
        self.define_slot("input", handler=self.work)

    def work(self, value: int, **_: Any) -> Any:
        self.occupancy.enter()

        async def rest() -> int:
            try:
                await asyncio.sleep(0.01)
            finally:
                self.occupancy.leave()
            return value

        return rest()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_returned_coroutine_keeps_its_place_until_it_ends(strategy: str) -> None:
    occupancy = Occupancy()
    target = ReturnsCoroutine(occupancy)
    target.set_max_concurrency(1)
    flow = _flow(strategy, 8, target)
    try:
        job = flow.execute("source")
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED, job.errors
        assert occupancy.calls == 8
        assert occupancy.most == 1
    finally:
        flow.shutdown(wait=True)


class Flaky(Routine):
    """Fails ``failures`` times, then returns."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0
        self.define_slot("input", handler=self.work)

    async def work(self, value: int, **_: Any) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise ValueError(f"attempt {self.calls}")
        return value


@pytest.mark.parametrize("asynchronous", [False, True])
def test_async_retries_use_an_injected_sleep(asynchronous: bool) -> None:
    waited: list[float] = []

    def record(seconds: float) -> None:
        waited.append(seconds)

    async def record_async(seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(0)

    flaky = Flaky(2)
    flaky.set_error_handler(
        ErrorHandler(
            strategy=ErrorStrategy.RETRY,
            max_retries=3,
            retry_delay=100.0,  # never really waited: the injected sleep records
            retry_backoff=2.0,
            sleep=record_async if asynchronous else record,
        )
    )
    flow = _flow("concurrent", 1, flaky)
    try:
        job = flow.execute("source")
        assert job.wait(WAIT)
        assert job.status is JobStatus.COMPLETED, job.errors
        assert flaky.calls == 3
        assert waited == [100.0, 200.0]
    finally:
        flow.shutdown(wait=True)


def test_a_returned_coroutine_cancelled_before_it_began_is_closed() -> None:
    # A sync handler returns a coroutine, and the job is cancelled before the
    # event loop starts it: it is closed, so Python has nothing to warn about.
    import gc
    import warnings

    started = threading.Event()
    release = threading.Event()
    made: list[Any] = []

    class Blocker(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.work)

        def work(self, value: int, **_: Any) -> Any:
            started.set()
            release.wait(WAIT)

            async def never() -> None:
                return None

            coroutine = never()
            made.append(coroutine)
            return coroutine

    flow = _flow("concurrent", 1, Blocker())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            job = flow.execute("source")
            assert started.wait(WAIT)
            flow.cancel(job)  # halted: the coroutine the handler returns never runs
            release.set()
            assert job.wait(WAIT)
            assert flow.wait_for_completion(WAIT)
            gc.collect()
        assert made and made[0].cr_frame is None  # closed (or finished)
    finally:
        release.set()
        flow.shutdown(wait=True)
