"""Issue 11: routilux.testing: run_routine, RecordingRoutine, FakeClock,
ManualStrategy (seeded, reproducible interleavings) and the pytest plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    ConfigurationError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobStatus,
    Routine,
    UnknownSlotError,
    Window,
)
from routilux.testing import (
    FakeClock,
    ManualStrategy,
    RecordingRoutine,
    explore,
    run_routine,
    yield_point,
)

if TYPE_CHECKING:
    from collections.abc import Callable

pytest_plugins = ["routilux.testing.plugin", "pytester"]


class Source(Routine):
    def __init__(self, count: int = 10) -> None:
        super().__init__()
        self.set_config(count=count)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, **_: Any) -> None:
        for value in range(self.get_config("count")):
            self.emit("output", value=value)


class UnsafeCounter(Routine):
    """Reads, may be switched out, writes back: a lost update waiting to happen."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.define_slot("input", handler=self.add)

    def add(self, value: int) -> None:
        seen = self.total
        yield_point()  # another activation may run here
        self.total = seen + 1


def _counter_flow(seed: int, limit: int | None) -> tuple[Flow, UnsafeCounter]:
    flow = Flow(flow_id="race", execution_strategy=ManualStrategy(seed=seed))
    counter = UnsafeCounter()
    counter.set_max_concurrency(limit)
    flow.add_routine(Source(10), "source")
    flow.add_routine(counter, "counter")
    flow.connect("source", "output", "counter", "input")
    return flow, counter


def _scenario(limit: int | None) -> Callable[[int], None]:
    def run(seed: int) -> None:
        flow, counter = _counter_flow(seed, limit)
        try:
            job = flow.execute("source")
            assert job.status is JobStatus.COMPLETED
            assert counter.total == 10, f"lost updates: total {counter.total}"
        finally:
            flow.shutdown()

    return run


# ---------------------------------------------------------------- ManualStrategy


def test_manual_strategy_finds_the_lost_update_within_50_seeds() -> None:
    failure = explore(_scenario(limit=None), seeds=range(50))
    assert failure is not None
    assert "lost updates" in str(failure.error)
    assert failure.tried <= 50
    # the seed reproduces it, every time
    for _ in range(3):
        with pytest.raises(AssertionError, match="lost updates"):
            _scenario(limit=None)(failure.seed)


def test_the_fix_with_max_concurrency_one_passes_500_seeds() -> None:
    assert explore(_scenario(limit=1), seeds=range(500)) is None


def test_same_seed_same_order_every_run() -> None:
    orders = []
    for _ in range(3):
        strategy = ManualStrategy(seed=11)
        flow = Flow(flow_id="order", execution_strategy=strategy)
        flow.add_routine(Source(4), "source")
        for name in ("a", "b", "c"):
            flow.add_routine(RecordingRoutine(), name)
            flow.connect("source", "output", name, "input")
        flow.execute("source")
        flow.shutdown()
        orders.append(list(strategy.order))
    assert orders[0] == orders[1] == orders[2]
    assert len(orders[0]) == 1 + 4 * 3
    other = ManualStrategy(seed=12)
    flow = Flow(flow_id="order", execution_strategy=other)
    flow.add_routine(Source(4), "source")
    for name in ("a", "b", "c"):
        flow.add_routine(RecordingRoutine(), name)
        flow.connect("source", "output", name, "input")
    flow.execute("source")
    flow.shutdown()
    assert sorted(other.order) == sorted(orders[0])


def test_manual_strategy_refuses_a_bad_seed_and_reports_errors() -> None:
    with pytest.raises(ConfigurationError, match="seed"):
        ManualStrategy(seed="7")  # type: ignore[arg-type]

    class Boom(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.explode)

        def explode(self, value: int) -> None:
            yield_point()
            raise ValueError(f"boom {value}")

    flow = Flow(flow_id="boom", execution_strategy=ManualStrategy(seed=3))
    flow.add_routine(Source(3), "source")
    flow.add_routine(Boom(), "boom")
    flow.connect("source", "output", "boom", "input")
    job = flow.execute("source")
    assert job.status is JobStatus.FAILED
    assert job.errors and job.errors[0].error_type == "ValueError"
    assert flow.wait_for_completion(5)
    flow.shutdown()


def test_yield_point_outside_the_manual_strategy_does_nothing() -> None:
    yield_point()  # no scheduler here: returns at once
    flow = Flow(flow_id="plain", execution_strategy="concurrent", max_workers=4)
    counter = UnsafeCounter()
    counter.set_max_concurrency(1)
    flow.add_routine(Source(20), "source")
    flow.add_routine(counter, "counter")
    flow.connect("source", "output", "counter", "input")
    job = flow.execute("source")
    assert job.wait(10)
    assert counter.total == 20
    flow.shutdown()


# ---------------------------------------------------------------- run_routine


class Doubler(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.double)
        self.define_event("output", ["value"])
        self.define_event("negative", ["value"])

    def double(self, value: int) -> int:
        if value < 0:
            self.emit("negative", value=value)
            raise ValueError("negative")
        self.emit("output", value=value * 2)
        self.emit("output", value=value * 4)
        return value * 2


def test_run_routine_returns_what_the_handler_did() -> None:
    run = run_routine(Doubler(), value=3)
    assert run.returned == 6 and run.error is None
    assert run.payloads("output") == [{"value": 6}, {"value": 12}]
    assert run.emitted == [("output", {"value": 6}), ("output", {"value": 12})]
    failed = run_routine(Doubler(), value=-1)
    assert isinstance(failed.error, ValueError)
    assert failed.payloads("negative") == [{"value": -1}]


def test_run_routine_refuses_what_it_cannot_run() -> None:
    with pytest.raises(UnknownSlotError, match=r"'nope'.*input"):
        run_routine(Doubler(), slot="nope", value=1)
    doubler = Doubler()
    Flow(flow_id="holder").add_routine(doubler, "d")
    with pytest.raises(ConfigurationError, match="belongs to a flow"):
        run_routine(doubler, value=1)


# ---------------------------------------------------------------- recording, clock


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_recording_routine_keeps_payloads_per_job(strategy: str) -> None:
    flow = Flow(flow_id="rec", execution_strategy=strategy)
    sink = RecordingRoutine()
    flow.add_routine(Source(3), "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "output", "sink", "input")
    try:
        jobs = [flow.execute("source") for _ in range(2)]
        assert all(job.wait(10) for job in jobs)
        for job in jobs:
            assert sorted(p["value"] for p in sink.received_in(job.job_id)) == [0, 1, 2]
        assert len(sink.received) == 6
        sink.clear()
        assert sink.received == []
    finally:
        flow.shutdown()


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(10.0)
    assert clock() == 10.0
    assert clock.advance(2.5) == 12.5
    clock.sleep(1.0)
    assert clock.now == 13.5 and clock.slept == [1.0]
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)
    assert Window(5.0, clock=clock).clock is clock


def test_fake_clock_sleep_drives_retry_backoff() -> None:
    clock = FakeClock()
    calls = []

    class Flaky(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self, **_: Any) -> None:
            calls.append(clock.now)
            if len(calls) < 3:
                raise ConnectionError("try again")

    flaky = Flaky()
    flaky.set_error_handler(
        ErrorHandler(
            ErrorStrategy.RETRY, max_retries=3, retry_delay=10.0, sleep=clock.sleep
        )
    )
    flow = Flow(flow_id="retry")
    flow.add_routine(flaky, "flaky")
    job = flow.execute("flaky")
    assert job.status is JobStatus.COMPLETED
    assert clock.slept == [10.0, 20.0]
    assert calls == [0.0, 10.0, 30.0]


# ---------------------------------------------------------------- the plugin


def test_routilux_flow_fixture_shuts_flows_down(
    routilux_flow: Callable[..., Flow],
) -> None:
    flow = routilux_flow(flow_id="fixture", execution_strategy="concurrent")
    flow.add_routine(Source(2), "source")
    flow.add_routine(RecordingRoutine(), "sink")
    flow.connect("source", "output", "sink", "input")
    assert flow.execute("source").wait(10)


def test_the_plugin_fails_a_test_that_leaks_a_thread(pytester: Any) -> None:
    pytester.makepyfile(
        """
        import threading
        pytest_plugins = ["routilux.testing.plugin"]

        def test_leaks(routilux_flow):
            routilux_flow(flow_id="x")
            stop = threading.Event()
            threading.Thread(
                target=stop.wait, args=(2,), name="routilux-leaky", daemon=True
            ).start()
        """
    )
    pytester.makeconftest(
        """
        import routilux.testing.plugin as plugin
        plugin.GRACE_SECONDS = 0.2
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    assert "leaked routilux threads" in result.stdout.str()
    assert "routilux-leaky" in result.stdout.str()
