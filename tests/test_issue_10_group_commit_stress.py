"""Issue 10, item 3 under stress: group commit with shared stores, halts, failures.

An adversarial review of the step writer (:mod:`routilux.runtime.step_writer`):
every wait returns within its timeout, every activation runs exactly once, every
error is recorded in its job, and the writer's threads end. Writes are held on
an Event (never a sleep) so that steps queue up deterministically.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    CheckpointError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobTimeoutError,
    Routine,
)
from routilux.persistence import SQLiteCheckpointStore
from routilux.runtime import step_writer
from routilux.runtime.step_writer import writer_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

WAIT = 30.0
STEPS = "routilux-steps-"

pytestmark = pytest.mark.timeout(120)


class Source(Routine):
    """Emits ``count`` items."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("output", ["n"])

    def go(self, count: int) -> None:
        for n in range(count):
            self.emit("output", n=n)


class Sink(Routine):
    """Records what arrives (thread-safe)."""

    def __init__(self, merge: str = "override") -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.arrived: list[int] = []
        self.define_slot("input", handler=self.take, merge_strategy=merge)

    def take(self, n: Any) -> None:
        with self.lock:
            self.arrived.append(n if isinstance(n, int) else n[-1])


class AsyncSink(Sink):
    """The same sink, as an ``async def`` handler."""

    def __init__(self) -> None:
        Routine.__init__(self)
        self.lock = threading.Lock()
        self.arrived = []
        self.define_slot("input", handler=self.take_async)

    async def take_async(self, n: int) -> None:
        self.take(n)


class Relay(Routine):
    """Passes each item on."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.define_event("output", ["n"])

    def take(self, n: int) -> None:
        self.emit("output", n=n)


class GatedWrites:
    """Holds the store's batch writes until ``go`` is set."""

    def __init__(self, store: SQLiteCheckpointStore) -> None:
        self.real = store.write_steps
        self.entered = threading.Event()
        self.go = threading.Event()

    def __call__(self, batch: Any) -> list[BaseException | None]:
        self.entered.set()
        assert self.go.wait(WAIT), "the test never let the writes go"
        return self.real(batch)


def open_store(where: str, tmp_path: Path, name: str = "jobs", **kw: Any) -> Any:
    path: Any = ":memory:" if where == "memory" else tmp_path / f"{name}.sqlite"
    return SQLiteCheckpointStore(path, **kw)


def fan_out(store: Any, workers: int = 4, name: str = "gc-stress", **kw: Any) -> Flow:
    flow = Flow(
        name,
        execution_strategy="concurrent",
        max_workers=workers,
        checkpoint_store=store,
        **kw,
    )
    flow.add_routine(Source(), "source")
    flow.add_routine(Sink(), "sink")
    flow.connect("source", "output", "sink", "input")
    return flow


def sink_of(flow: Flow, name: str = "sink") -> Sink:
    sink = flow.routines[name]
    assert isinstance(sink, Sink)
    return sink


def returns(call: Callable[[], Any], within: float = WAIT) -> Any:
    """Run ``call`` on a thread; fail (not hang) when it does not return."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"{call!r} did not return within {within}s"
    return result[0] if result else None


def pending_ns(store: Any, job_id: str) -> list[int]:
    return [item["payload"]["n"] for item in store.pending(job_id)]


def writer_threads_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the writer's thread linger briefly (then the tests can join it)."""
    monkeypatch.setattr(step_writer, "LINGER", 0.01)


def no_writer_threads_left() -> None:
    threads = [t for t in threading.enumerate() if t.name.startswith(STEPS)]
    for thread in threads:
        thread.join(WAIT)
    assert not [t.name for t in threads if t.is_alive()]


WHERE = ["file", "memory"]


# -- shared stores ---------------------------------------------------------------


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_three_flows_sharing_one_store_run_each_item_once(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer_threads_end(monkeypatch)
    with open_store(where, tmp_path, commit_window=4) as store:
        flows = [fan_out(store, workers=3, name=f"shared-{i}") for i in range(3)]
        for _ in range(15):
            jobs = [
                flow.execute("source", entry_params={"count": 60}) for flow in flows
            ]
            for job in jobs:
                assert job.wait(WAIT) and job.status == "completed", job.errors
                assert store.pending(job.job_id) == []
                assert store.load(job.job_id)["status"] == "completed"
            for flow in flows:
                sink = sink_of(flow)
                assert sorted(sink.arrived) == list(range(60))
                sink.arrived.clear()
        for flow in flows:
            returns(lambda f=flow: f.shutdown(wait=True, timeout=WAIT))  # type: ignore[misc]
    no_writer_threads_left()


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_one_flow_shuts_down_while_another_on_its_store_runs(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=2) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        stopped = fan_out(store, workers=2, name="stopped")
        kept = fan_out(store, workers=2, name="kept")
        gone = stopped.execute("source", entry_params={"count": 40})
        job = kept.execute("source", entry_params={"count": 40})
        assert gate.entered.wait(WAIT)
        returns(lambda: stopped.shutdown(wait=True, timeout=0.3))
        gate.go.set()
        assert returns(lambda: gone.wait(WAIT))
        assert gone.status == "cancelled"
        ran = sink_of(stopped).arrived
        assert len(ran) == len(set(ran))
        assert set(pending_ns(store, gone.job_id)).isdisjoint(ran)
        assert returns(lambda: job.wait(WAIT)) and job.status == "completed"
        assert sorted(sink_of(kept).arrived) == list(range(40))
        assert store.pending(job.job_id) == []
        returns(lambda: kept.shutdown(wait=True, timeout=WAIT))


# -- halts while steps are queued ----------------------------------------------------


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_cancel_while_steps_are_queued_runs_nothing_twice(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=3) as store:
        flow = fan_out(store, workers=3)
        for _ in range(20):
            gate = GatedWrites(store)
            store.write_steps = gate  # type: ignore[method-assign]
            sink = sink_of(flow)
            sink.arrived.clear()
            job = flow.execute("source", entry_params={"count": 30})
            assert gate.entered.wait(WAIT)
            assert flow.cancel(job, reason="test")
            gate.go.set()
            assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
            assert job.status == "cancelled"
            ran = list(sink.arrived)
            assert len(ran) == len(set(ran))
            assert set(pending_ns(store, job.job_id)).isdisjoint(ran)
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_pause_and_resume_while_steps_are_queued_run_each_item_once(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=2) as store:
        flow = fan_out(store, workers=3)
        for round_ in range(20):
            gate = GatedWrites(store)
            store.write_steps = gate  # type: ignore[method-assign]
            sink = sink_of(flow)
            sink.arrived.clear()
            job = flow.execute("source", entry_params={"count": 30})
            assert gate.entered.wait(WAIT)
            assert flow.pause(job, reason="test")
            if round_ % 2:  # resumed before the pause settled: called off
                resumed = flow.resume(job)
                gate.go.set()
            else:  # settled first, then resumed
                gate.go.set()
                assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
                assert job.status == "paused"
                left = pending_ns(store, job.job_id)
                assert sorted(list(sink.arrived) + left) == list(range(30))
                resumed = flow.resume(job)
            assert returns(lambda r=resumed: r.wait(WAIT))  # type: ignore[misc]
            assert resumed.status == "completed", resumed.errors
            assert sorted(sink.arrived) == list(range(30))
            assert store.pending(job.job_id) == []
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("wait", [True, False])
def test_issue_10_shutdown_returns_in_time_while_writes_are_held(
    tmp_path: Path, where: str, wait: bool
) -> None:
    with open_store(where, tmp_path, commit_window=2) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 20})
        assert gate.entered.wait(WAIT)
        returns(lambda: flow.shutdown(wait=wait, timeout=0.5), within=10.0)
        gate.go.set()
        assert returns(lambda: job.wait(WAIT))
        assert job.status == "cancelled"
        ran = sink_of(flow).arrived
        assert len(ran) == len(set(ran))
        assert set(pending_ns(store, job.job_id)).isdisjoint(ran)
        assert returns(lambda: flow.wait_for_completion(timeout=WAIT))


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_closing_the_store_under_queued_steps_fails_the_job_visibly(
    tmp_path: Path, where: str
) -> None:
    store = open_store(where, tmp_path, commit_window=2)
    gate = GatedWrites(store)
    store.write_steps = gate  # type: ignore[method-assign]
    flow = fan_out(store, workers=2)
    job = flow.execute("source", entry_params={"count": 20})
    assert gate.entered.wait(WAIT)
    returns(store.close)
    gate.go.set()
    assert returns(lambda: job.wait(WAIT))
    assert returns(lambda: flow.wait_for_completion(timeout=WAIT))
    returns(lambda: flow.shutdown(wait=True, timeout=WAIT))
    assert job.status == "failed"
    assert "CheckpointError" in [record.error_type for record in job.errors]
    ran = sink_of(flow).arrived
    assert len(ran) == len(set(ran))


# -- mixed handlers, bounds, lanes, joins ----------------------------------------------


class Slow(Routine):
    """Outlives its timeout on even items until released; odd ones return."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.calls: list[int] = []
        self.define_slot("input", handler=self.take)
        self.set_timeout(0.05)
        self.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))

    def take(self, n: int) -> None:
        with self.lock:
            self.calls.append(n)
        if n % 10 == 0:
            self.release.wait(WAIT)


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_timed_out_async_and_sync_handlers_in_one_flow(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=3) as store:
        flow = Flow(
            "gc-mixed",
            execution_strategy="concurrent",
            max_workers=6,
            checkpoint_store=store,
        )
        flow.add_routine(Source(), "source")
        flow.add_routine(Sink(), "sink")
        flow.add_routine(AsyncSink(), "async")
        slow = Slow()
        flow.add_routine(slow, "slow")
        for target in ("sink", "async", "slow"):
            flow.connect("source", "output", target, "input")
        try:
            for _ in range(3):
                slow.release = threading.Event()
                job = flow.execute("source", entry_params={"count": 30})
                try:
                    assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
                finally:
                    slow.release.set()  # the timed-out handlers' threads return
                assert job.status == "completed", job.errors
                assert [r.error_type for r in job.errors] == ["RoutineTimeoutError"] * 3
                assert sorted(sink_of(flow).arrived) == list(range(30))
                assert sorted(sink_of(flow, "async").arrived) == list(range(30))
                assert sorted(slow.calls) == list(range(30))
                assert store.pending(job.job_id) == []
                sink_of(flow).arrived.clear()
                sink_of(flow, "async").arrived.clear()
                slow.calls.clear()
        finally:
            slow.release.set()
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_max_pending_with_group_commit_runs_each_item_once(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=4) as store:
        flow = fan_out(store, workers=4, max_pending=8)
        flow.add_routine(Relay(), "relay")
        flow.add_routine(Sink(), "end")
        flow.connect("source", "output", "relay", "input")
        flow.connect("relay", "output", "end", "input")
        for _ in range(5):
            jobs = [flow.execute("source", entry_params={"count": 80}) for _ in (0, 1)]
            for job in jobs:
                assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
                assert job.status == "completed", job.errors
                assert store.pending(job.job_id) == []
            assert sorted(sink_of(flow).arrived) == sorted(list(range(80)) * 2)
            assert sorted(sink_of(flow, "end").arrived) == sorted(list(range(80)) * 2)
            sink_of(flow).arrived.clear()
            sink_of(flow, "end").arrived.clear()
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_session_lanes_with_group_commit(tmp_path: Path, where: str) -> None:
    with open_store(where, tmp_path, commit_window=2) as store:
        flow = fan_out(store, workers=4)
        jobs = [
            flow.execute("source", entry_params={"count": 25}, session=f"s{i % 3}")
            for i in range(12)
        ]
        for job in jobs:
            assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
            assert job.status == "completed", job.errors
            assert store.pending(job.job_id) == []
        assert sorted(sink_of(flow).arrived) == sorted(list(range(25)) * 12)
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


class Feeder(Routine):
    """Emits its own number once."""

    def __init__(self, value: int) -> None:
        super().__init__()
        self.set_config(value=value)
        self.define_slot("input", handler=self.feed)
        self.define_event("output", ["value"])

    def feed(self, n: int = 0) -> None:
        self.emit("output", value=self.get_config("value"))


class Joiner(Routine):
    """Records every join (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.define_slot("input", handler=self.join, policy="all_sources")

    def join(self, sources: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(sources)


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_fan_in_joins_with_group_commit_join_once_per_job(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=3) as store:
        flow = Flow(
            "gc-join",
            execution_strategy="concurrent",
            max_workers=4,
            checkpoint_store=store,
        )
        flow.add_routine(Source(), "source")
        joiner = Joiner()
        flow.add_routine(joiner, "join")
        names = [f"f{i}" for i in range(6)]
        for i, name in enumerate(names):
            flow.add_routine(Feeder(i), name)
            flow.connect("source", "output", name, "input")
            flow.connect(name, "output", "join", "input")
        jobs = [flow.execute("source", entry_params={"count": 1}) for _ in range(40)]
        for job in jobs:
            assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
            assert job.status == "completed", job.errors
            assert store.pending(job.job_id) == []
        expected = {name: {"value": i} for i, name in enumerate(names)}
        assert len(joiner.calls) == 40
        assert all(call == expected for call in joiner.calls)
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_append_slots_with_group_commit(tmp_path: Path, where: str) -> None:
    with open_store(where, tmp_path, commit_window=3) as store:
        flow = Flow(
            "gc-append",
            execution_strategy="concurrent",
            max_workers=4,
            checkpoint_store=store,
        )
        flow.add_routine(Source(), "source")
        sink = Sink(merge="append")
        flow.add_routine(sink, "sink")
        flow.connect("source", "output", "sink", "input")
        for _ in range(5):
            job = flow.execute("source", entry_params={"count": 60})
            assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
            assert job.status == "completed", job.errors
            assert store.pending(job.job_id) == []
            assert len(sink.arrived) == 60
            sink.arrived.clear()
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


class Flaky(Routine):
    """Fails on multiples of 7."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.set_error_handler(
            ErrorHandler("retry", max_retries=1, retry_delay=0.0, on_exhausted="skip")
        )

    def take(self, n: int) -> None:
        if n % 7 == 0:
            raise ValueError(f"item {n} (test)")


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_dead_letters_with_group_commit_one_per_failed_item(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=3) as store:
        flow = Flow(
            "gc-letters",
            execution_strategy="concurrent",
            max_workers=4,
            checkpoint_store=store,
        )
        flow.add_routine(Source(), "source")
        flow.add_routine(Flaky(), "flaky")
        flow.add_routine(Sink(), "sink")
        flow.connect("source", "output", "flaky", "input")
        flow.connect("source", "output", "sink", "input")
        for _ in range(5):
            job = flow.execute("source", entry_params={"count": 50})
            assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
            assert job.status == "completed", job.errors
            assert store.pending(job.job_id) == []
            letters = flow.dead_letters(job.job_id)
            assert sorted(letter.payload["n"] for letter in letters) == list(
                range(0, 50, 7)
            )
        assert len(sink_of(flow).arrived) == 250
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


# -- a broken store ------------------------------------------------------------------


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_issue_10_write_steps_raising_a_base_exception_fails_the_job_and_recovers(
    tmp_path: Path, kind: type[BaseException]
) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=2) as store:
        real = store.write_steps
        calls = [0]

        def broken(batch: Any) -> list[BaseException | None]:
            calls[0] += 1
            if calls[0] == 1:
                raise kind("writer interrupted (test)")
            return real(batch)

        store.write_steps = broken  # type: ignore[method-assign]
        flow = fan_out(store, workers=3)
        job = flow.execute("source", entry_params={"count": 30})
        assert returns(lambda: job.wait(WAIT))
        assert job.status == "failed"
        assert "CheckpointError" in [record.error_type for record in job.errors]
        assert "writer interrupted (test)" in str(job.errors)
        writer = writer_for(store)
        assert writer is not None and writer._unwritten == 0
        # The writer comes back for the next job.
        sink_of(flow).arrived.clear()
        again = flow.execute("source", entry_params={"count": 30})
        assert returns(lambda: again.wait(WAIT)) and again.status == "completed"
        assert sorted(sink_of(flow).arrived) == list(range(30))
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


@pytest.mark.parametrize(
    "answer",
    [
        lambda batch: None,
        lambda batch: [None] * (len(batch) + 1),
        lambda batch: iter([None] * len(batch)),
    ],
    ids=["none", "too-many", "an-iterator"],
)
def test_issue_10_write_steps_answering_wrongly_fails_the_job(
    tmp_path: Path, answer: Callable[[Any], Any]
) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=2) as store:
        store.write_steps = answer  # type: ignore[method-assign]
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 10})
        assert returns(lambda: job.wait(WAIT))
        assert returns(lambda: flow.wait_for_completion(timeout=WAIT))
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))
        assert job.status == "failed"
        assert "CheckpointError" in [record.error_type for record in job.errors]
        writer = writer_for(store)
        assert writer is not None and writer._unwritten == 0


def test_issue_10_a_failing_prepare_step_fails_the_job(tmp_path: Path) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=2) as store:
        real = store.prepare_step
        calls = [0]
        lock = threading.Lock()

        def prepare(job_id: str, **kw: Any) -> Any:
            with lock:
                calls[0] += 1
                bad = calls[0] == 5
            if bad:
                raise CheckpointError("cannot encode (test)")
            return real(job_id, **kw)

        store.prepare_step = prepare  # type: ignore[method-assign]
        flow = fan_out(store, workers=3)
        job = flow.execute("source", entry_params={"count": 30})
        assert returns(lambda: job.wait(WAIT))
        assert returns(lambda: flow.wait_for_completion(timeout=WAIT))
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))
        assert job.status == "failed"
        assert "cannot encode (test)" in str(job.errors)
        ran = sink_of(flow).arrived
        assert len(ran) == len(set(ran))


# -- volume ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_many_quick_activations_run_exactly_once(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer_threads_end(monkeypatch)
    count = 20_000 if where == "memory" else 5_000
    with open_store(where, tmp_path) as store:
        flow = fan_out(store, workers=4)
        job = flow.execute("source", entry_params={"count": count})
        assert returns(lambda: job.wait(120.0), within=130.0)
        assert job.status == "completed", job.errors
        arrived = sink_of(flow).arrived
        assert len(arrived) == count
        assert sorted(arrived) == list(range(count))
        assert store.pending(job.job_id) == []
        assert store.load(job.job_id)["status"] == "completed"
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))
    no_writer_threads_left()


# -- more waits and halts ------------------------------------------------------------


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_timed_waits_return_while_writes_are_held(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=1) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 20})
        assert gate.entered.wait(WAIT)
        assert returns(lambda: job.wait(0.1), within=10.0) is False
        assert (
            returns(lambda: flow.wait_for_completion(timeout=0.1), within=10.0) is False
        )

        def result() -> Any:
            with pytest.raises((JobTimeoutError, TimeoutError)):
                job.result(timeout=0.1)
            return True

        assert returns(result, within=10.0)
        gate.go.set()
        assert returns(lambda: job.wait(WAIT)) and job.status == "completed"
        assert sorted(sink_of(flow).arrived) == list(range(20))
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_pause_then_cancel_while_steps_are_queued(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=2) as store:
        flow = fan_out(store, workers=3)
        for _ in range(10):
            gate = GatedWrites(store)
            store.write_steps = gate  # type: ignore[method-assign]
            sink = sink_of(flow)
            sink.arrived.clear()
            job = flow.execute("source", entry_params={"count": 30})
            assert gate.entered.wait(WAIT)
            assert flow.pause(job, reason="test")
            assert flow.cancel(job, reason="test")
            gate.go.set()
            assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
            assert job.status == "cancelled"
            ran = list(sink.arrived)
            assert len(ran) == len(set(ran))
            assert returns(lambda: flow.wait_for_completion(timeout=WAIT))
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


class Stopper(Routine):
    """Raises on item 13 (the flow's policy stops the job)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.calls: list[int] = []
        self.define_slot("input", handler=self.take)

    def take(self, n: int) -> None:
        with self.lock:
            self.calls.append(n)
        if n == 13:
            raise ValueError("item 13 (test)")


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_a_failing_handler_among_queued_steps_fails_once(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=2) as store:
        flow = Flow(
            "gc-stop",
            execution_strategy="concurrent",
            max_workers=4,
            checkpoint_store=store,
        )
        flow.add_routine(Source(), "source")
        stopper = Stopper()
        flow.add_routine(stopper, "stop")
        flow.connect("source", "output", "stop", "input")
        for _ in range(10):
            stopper.calls.clear()
            job = flow.execute("source", entry_params={"count": 60})
            assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
            assert job.status == "failed"
            assert [r.error_type for r in job.errors] == ["ValueError"]
            ran = list(stopper.calls)
            assert len(ran) == len(set(ran)) and 13 in ran
            left = set(pending_ns(store, job.job_id))
            assert left.isdisjoint(set(ran) - {13})
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


class AsyncRelay(Routine):
    """Passes each item on, from the event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.define_event("output", ["n"])

    async def take(self, n: int) -> None:
        self.emit("output", n=n)


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_chains_through_async_and_sync_relays_run_each_item_once(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=1) as store:
        flows = []
        for i in range(2):
            flow = Flow(
                f"gc-chain-{i}",
                execution_strategy="concurrent",
                max_workers=4,
                checkpoint_store=store,
            )
            flow.add_routine(Source(), "source")
            flow.add_routine(AsyncRelay(), "a")
            flow.add_routine(Relay(), "b")
            flow.add_routine(AsyncRelay(), "c")
            flow.add_routine(Sink(), "sink")
            flow.connect("source", "output", "a", "input")
            flow.connect("a", "output", "b", "input")
            flow.connect("b", "output", "c", "input")
            flow.connect("c", "output", "sink", "input")
            flows.append(flow)
        for _ in range(5):
            jobs = [f.execute("source", entry_params={"count": 40}) for f in flows]
            for job in jobs:
                assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
                assert job.status == "completed", job.errors
                assert store.pending(job.job_id) == []
            for flow in flows:
                assert sorted(sink_of(flow).arrived) == list(range(40))
                sink_of(flow).arrived.clear()
        for flow in flows:
            returns(lambda f=flow: f.shutdown(wait=True, timeout=WAIT))  # type: ignore[misc]


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_a_sequential_and_a_concurrent_flow_share_a_store(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=2) as store:
        busy = fan_out(store, workers=4, name="busy")
        calm = Flow("calm", execution_strategy="sequential", checkpoint_store=store)
        calm.add_routine(Source(), "source")
        calm.add_routine(Sink(), "sink")
        calm.connect("source", "output", "sink", "input")
        for _ in range(5):
            job = busy.execute("source", entry_params={"count": 100})
            other = calm.execute("source", entry_params={"count": 30})
            assert other.status == "completed", other.errors
            assert returns(lambda j=job: j.wait(WAIT))  # type: ignore[misc]
            assert job.status == "completed", job.errors
            assert store.pending(job.job_id) == [] == store.pending(other.job_id)
        assert sorted(sink_of(busy).arrived) == sorted(list(range(100)) * 5)
        assert sorted(sink_of(calm).arrived) == sorted(list(range(30)) * 5)
        returns(lambda: busy.shutdown(wait=True, timeout=WAIT))
        returns(lambda: calm.shutdown(wait=True, timeout=WAIT))


def test_issue_10_a_resumed_crash_style_job_with_held_writes_then_released(
    tmp_path: Path,
) -> None:
    # Paused with writes held, the flow shut down, then resumed by a new flow
    # on a new store object for the same file: each item runs exactly once.
    path = tmp_path / "jobs.sqlite"
    with SQLiteCheckpointStore(path, commit_window=2) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store, workers=3)
        job = flow.execute("source", entry_params={"count": 50})
        assert gate.entered.wait(WAIT)
        assert flow.pause(job, reason="test")
        gate.go.set()
        assert returns(lambda: job.wait(WAIT)) and job.status == "paused"
        first = list(sink_of(flow).arrived)
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))
    with SQLiteCheckpointStore(path, commit_window=2) as store:
        flow = fan_out(store, workers=3)
        resumed = flow.resume(job.job_id)
        assert returns(lambda: resumed.wait(WAIT)) and resumed.status == "completed"
        assert sorted(first + sink_of(flow).arrived) == list(range(50))
        assert store.pending(job.job_id) == []
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


# -- found by the review, fixed since -------------------------------------------------

#: A bound on waits the jobs below end within in milliseconds once fixed.
SHORT = 3.0


@pytest.mark.parametrize("outcome", ["disk full"])
def test_issue_10_write_steps_answering_a_non_error_outcome_fails_the_job(
    tmp_path: Path, outcome: Any
) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=2) as store:
        store.write_steps = lambda batch: [outcome] * len(batch)  # type: ignore[method-assign]
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 10})
        try:
            assert job.wait(SHORT), "the job hung"
            assert job.status == "failed"
            assert "CheckpointError" in [record.error_type for record in job.errors]
            assert "write_steps" in str(job.errors)
        finally:
            returns(lambda: flow.shutdown(wait=False))


def test_issue_10_a_lane_refusing_children_on_the_writer_thread_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routilux.runtime.ledger import base

    real = base.LedgerBase._hand

    def hand(self: Any, activations: list[Any]) -> None:
        if threading.current_thread().name.startswith(STEPS):
            raise RuntimeError("lane refused (test)")
        real(self, activations)

    monkeypatch.setattr(base.LedgerBase, "_hand", hand)
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=2) as store:
        flow = fan_out(store, workers=2)
        flow.add_routine(Relay(), "relay")
        flow.add_routine(Sink(), "end")
        flow.connect("source", "output", "relay", "input")
        flow.connect("relay", "output", "end", "input")
        job = flow.execute("source", entry_params={"count": 10})
        try:
            assert job.wait(SHORT), "the job hung"
            assert job.status == "failed"
            assert "lane refused (test)" in str(job.errors)
        finally:
            returns(lambda: flow.shutdown(wait=False))


def test_issue_10_an_on_job_end_hook_may_wait_for_another_job_of_the_store(
    tmp_path: Path,
) -> None:
    from routilux import FlowHooks

    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite") as store:
        flow = fan_out(store, workers=4)
        other = fan_out(store, workers=4, name="other")
        seen: dict[str, Any] = {}

        class FollowUp(FlowHooks):
            def on_job_end(self, job: Any) -> None:
                if "follow" not in seen:  # the first job starts one and waits
                    seen["follow"] = follow = other.execute(
                        "source", entry_params={"count": 50}
                    )
                    seen["waited"] = follow.wait(SHORT)

        flow.add_hooks(FollowUp())
        job = flow.execute("source", entry_params={"count": 5})
        try:
            assert returns(lambda: job.wait(WAIT))
            assert job.status == "completed"
            # With commit_window=0 (each worker writes its own step) it does.
            assert seen["waited"], "the follow-up job could not finish"
            assert sorted(sink_of(other).arrived) == list(range(50))
        finally:
            returns(lambda: flow.shutdown(wait=True, timeout=WAIT))
            returns(lambda: other.shutdown(wait=True, timeout=WAIT))


@pytest.mark.parametrize("where", WHERE)
def test_issue_10_a_job_timeout_while_steps_are_queued_cancels_it_once(
    tmp_path: Path, where: str
) -> None:
    with open_store(where, tmp_path, commit_window=2) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store, workers=3)
        job = flow.execute("source", entry_params={"count": 30}, timeout=0.05)
        assert gate.entered.wait(WAIT)
        # The deadline passes while the writes are held (a bounded wait).
        assert returns(lambda: job.wait(0.3), within=10.0) is False
        gate.go.set()
        assert returns(lambda: job.wait(WAIT))
        assert job.status == "cancelled"
        assert job.cancel_source == "timeout"
        ran = sink_of(flow).arrived
        assert len(ran) == len(set(ran))
        assert set(pending_ns(store, job.job_id)).isdisjoint(ran)
        returns(lambda: flow.shutdown(wait=True, timeout=WAIT))


def test_issue_10_a_changed_window_keeps_one_writer_per_store(tmp_path: Path) -> None:
    from routilux.runtime.step_writer import writer_for

    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=4) as store:
        first = writer_for(store)
        store.commit_window = 8
        second = writer_for(store)
        assert first is second is not None
        assert second.window == 8
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 20})
        try:
            assert job.wait(WAIT)
            assert sorted(sink_of(flow).arrived) == list(range(20))
        finally:
            returns(lambda: flow.shutdown(timeout=WAIT))


def test_issue_10_a_dead_writer_tells_its_steps_before_a_new_thread_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routilux.runtime import step_writer

    told: list[tuple[str, bool]] = []  # (thread, failed) in the order told
    real_tell = step_writer._tell

    def tell(batch: Any, errors: Any) -> None:
        told.extend((threading.current_thread().name, e is not None) for e in errors)
        real_tell(batch, errors)

    calls = {"n": 0}

    def write_once_broken(self: Any, batch: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("writer bug (test)")
        return [None] * len(batch)

    monkeypatch.setattr(step_writer, "_tell", tell)
    monkeypatch.setattr(step_writer.StepWriter, "_write", write_once_broken)
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=1) as store:
        flow = fan_out(store, workers=3)
        job = flow.execute("source", entry_params={"count": 30})
        try:
            assert job.wait(WAIT)
        finally:
            returns(lambda: flow.shutdown(timeout=WAIT))
        assert job.status == "failed"
        assert "writer bug (test)" in str(job.errors)
        # Every failure was told before any step of a later batch.
        flags = [failed for _, failed in told]
        assert flags == sorted(flags, reverse=True), told


def test_issue_10_a_lane_refusing_an_activation_fails_the_job_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routilux.runtime.ledger import base

    real = base.LedgerBase._hand
    handed = {"n": 0}

    def hand(self: Any, activations: list[Any]) -> None:
        lane = self.lane
        submit = lane.submit

        def refusing(activation: Any) -> Any:
            handed["n"] += 1
            if handed["n"] > 3:
                raise RuntimeError("lane refused (test)")
            return submit(activation)

        lane.submit = refusing
        try:
            real(self, activations)
        finally:
            lane.submit = submit

    monkeypatch.setattr(base.LedgerBase, "_hand", hand)
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=0) as store:
        flow = fan_out(store, workers=1)
        job = flow.execute("source", entry_params={"count": 10})
        try:
            assert job.wait(WAIT), "the job hung"
        finally:
            returns(lambda: flow.shutdown(timeout=WAIT))
        assert job.status == "failed"
        assert "lane refused (test)" in str(job.errors)


def test_issue_10_a_job_whose_steps_the_writer_wrote_ends_on_a_thread_of_its_own(
    tmp_path: Path,
) -> None:
    from routilux import FlowHooks

    names: list[str] = []

    class Where(FlowHooks):
        def on_job_end(self, job: Any) -> None:
            names.append(threading.current_thread().name)

    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite") as store:
        flow = fan_out(store, workers=2)
        flow.add_hooks(Where())
        job = flow.execute("source", entry_params={"count": 10})
        try:
            assert job.wait(WAIT)
        finally:
            returns(lambda: flow.shutdown(timeout=WAIT))
    assert job.status == "completed"
    assert names == [f"routilux-job-end-{job.job_id}"]
