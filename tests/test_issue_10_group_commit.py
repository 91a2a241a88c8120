"""Issue 10, item 3: several workers' steps share one transaction (group commit).

On the concurrent strategy a settled activation's step is queued to the store's
step writer, which writes whatever queued up in one transaction; a worker waits
only while more than ``commit_window`` steps are not yet durable. Children run
only once the step that made them is committed.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    CheckpointError,
    ConfigurationError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobOwnedError,
    Routine,
)
from routilux.persistence import SQLiteCheckpointStore
from routilux.persistence.lease import Owner
from routilux.persistence.sqlite.store import COMMIT_WINDOW
from routilux.runtime import checkpoint, step_writer
from routilux.runtime.ledger import streaming
from routilux.runtime.step_writer import StepWriter, writer_for

if TYPE_CHECKING:
    from pathlib import Path

WAIT = 30.0


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
    """Counts what arrives (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.arrived: list[int] = []
        self.define_slot("input", handler=self.take)

    def take(self, n: int) -> None:
        with self.lock:
            self.arrived.append(n)


def fan_out(store: Any, workers: int = 4, strategy: str = "concurrent") -> Flow:
    flow = Flow(
        "group-commit",
        execution_strategy=strategy,
        max_workers=workers,
        checkpoint_store=store,
    )
    flow.add_routine(Source(), "source")
    flow.add_routine(Sink(), "sink")
    flow.connect("source", "output", "sink", "input")
    return flow


def sink_of(flow: Flow) -> Sink:
    sink = flow.routines["sink"]
    assert isinstance(sink, Sink)
    return sink


class GatedWrites:
    """Holds the store's batch writes until ``go`` is set; counts what they hold."""

    def __init__(self, store: SQLiteCheckpointStore) -> None:
        self.store = store
        self.real = store.write_steps
        self.entered = threading.Event()
        self.go = threading.Event()
        self.steps = 0
        self.batches: list[int] = []

    def __call__(self, batch: Any) -> list[BaseException | None]:
        self.entered.set()
        assert self.go.wait(WAIT), "the test never let the writes go"
        self.batches.append(len(batch))
        self.steps += len(batch)
        return self.real(batch)


# -- the setting -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, -1, 1.5, "4", None])
def test_issue_10_a_bad_commit_window_is_refused_naming_it(
    tmp_path: Path, bad: Any
) -> None:
    with pytest.raises(ConfigurationError, match="commit_window"):
        SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=bad)
    assert not (tmp_path / "jobs.sqlite").exists()  # refused before opening


def test_issue_10_the_default_window_and_zero_writes_each_step_inline(
    tmp_path: Path,
) -> None:
    with SQLiteCheckpointStore(tmp_path / "a.sqlite") as store:
        assert store.commit_window == COMMIT_WINDOW == 32
        writer = writer_for(store)
        assert writer is not None and writer.window == 32
        assert writer_for(store) is writer  # one writer per store
    with SQLiteCheckpointStore(tmp_path / "b.sqlite", commit_window=0) as store:
        assert writer_for(store) is None
        flow = fan_out(store)
        job = flow.execute("source", entry_params={"count": 50})
        assert job.wait(WAIT) and job.status == "completed"
        flow.shutdown()
        assert len(sink_of(flow).arrived) == 50
        assert store.pending(job.job_id) == []


def test_issue_10_a_store_that_changes_how_a_step_is_written_is_not_batched(
    tmp_path: Path,
) -> None:
    class Counting(SQLiteCheckpointStore):
        steps = 0

        def record_step(self, job_id: str, **step: Any) -> None:
            type(self).steps += 1
            super().record_step(job_id, **step)

    with Counting(tmp_path / "jobs.sqlite") as store:
        assert writer_for(store) is None
        flow = fan_out(store)
        job = flow.execute("source", entry_params={"count": 20})
        assert job.wait(WAIT) and job.status == "completed"
        flow.shutdown()
    # Every activation's step went through record_step: the source's, the 20
    # sinks' (and the job's start and end, and the source's partial steps).
    assert Counting.steps >= 21


# -- what is written, and when -----------------------------------------------------


def test_issue_10_steps_are_written_in_batches_and_the_store_holds_the_end(
    tmp_path: Path,
) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=64) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store)
        job = flow.execute("source", entry_params={"count": 200})
        assert gate.entered.wait(WAIT)
        gate.go.set()
        assert job.wait(WAIT) and job.status == "completed"
        flow.shutdown()
        assert sorted(sink_of(flow).arrived) == list(range(200))
        assert store.pending(job.job_id) == []
        assert store.load(job.job_id)["status"] == "completed"
    # While the first write was held, the next steps queued up: a batch of
    # several followed (each sink's step; the source's and documents inline).
    assert max(gate.batches) > 1
    assert gate.steps <= 201


def test_issue_10_a_child_runs_only_once_its_parents_step_is_committed(
    tmp_path: Path,
) -> None:
    class Relay(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.take)
            self.define_event("output", ["n"])

        def take(self, n: int) -> None:
            self.emit("output", n=n)

    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite") as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store)
        flow.add_routine(Relay(), "relay")
        flow.add_routine(Sink(), "end")
        flow.connect("source", "output", "relay", "input")
        flow.connect("relay", "output", "end", "input")
        job = flow.execute("source", entry_params={"count": 1})
        # The relay's step (its child listed) is queued and held: its child
        # has not run, and the store still lists the relay as pending.
        assert gate.entered.wait(WAIT)
        end = flow.routines["end"]
        assert isinstance(end, Sink)
        assert end.arrived == []
        assert job.status == "running"
        gate.go.set()
        assert job.wait(WAIT) and job.status == "completed"
        flow.shutdown()
        assert end.arrived == [0]
        assert store.pending(job.job_id) == []


@pytest.mark.parametrize(("window", "workers"), [(2, 4), (1, 2), (5, 3)])
def test_issue_10_at_most_max_workers_plus_the_window_are_settled_unwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int, workers: int
) -> None:
    # With the writes held, workers queue steps until each waits for room:
    # then the activations that ran and are not durable (what a crash would
    # run again, with the running ones: none now) are more than the window
    # and at most max_workers + commit_window.
    monkeypatch.setattr(streaming, "FLUSH_EVERY", 1)  # each emit's child runs
    monkeypatch.setattr(checkpoint, "SAVE_INTERVAL", 1e9)  # no step goes inline
    path = tmp_path / "jobs.sqlite"
    with SQLiteCheckpointStore(path, commit_window=window) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store, workers=workers)
        sink = sink_of(flow)
        job = flow.execute("source", entry_params={"count": 40})
        assert gate.entered.wait(WAIT)
        writer = writer_for(store)
        assert writer is not None
        patience = threading.Event()
        for _ in range(int(WAIT / 0.005)):  # a bounded wait for every worker
            if writer._blocked == workers:
                break
            patience.wait(0.005)
        with writer._lock, sink.lock:
            assert writer._blocked == workers
            unwritten = writer._unwritten
            # Settled: the sinks that ran, and the source.
            assert unwritten == len(sink.arrived) + 1
        assert window < unwritten <= window + workers
        gate.go.set()
        assert job.wait(WAIT) and job.status == "completed"
        flow.shutdown()
        assert sorted(sink.arrived) == list(range(40))
        assert store.pending(job.job_id) == []


# -- failures ----------------------------------------------------------------------


def test_issue_10_a_batch_with_a_refused_step_writes_the_others(
    tmp_path: Path,
) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite") as store:
        store.record_step(
            "known",
            added=[{"id": "a0", "routine_id": "r", "slot": "s", "payload": {}}],
            job={
                "job_id": "known",
                "flow_id": "f",
                "status": "running",
                "updated_at": "2026-01-01T00:00:00+00:00",
            },
        )
        child = {"id": "a1", "routine_id": "r", "slot": "s", "payload": {"n": 1}}
        batch = [
            store.prepare_step("known", finished=["a0"], added=[child]),
            store.prepare_step("unknown", added=[child]),
        ]
        errors = store.write_steps(batch)
        assert errors[0] is None
        assert isinstance(errors[1], CheckpointError)
        assert "unknown job 'unknown'" in str(errors[1])
        assert [item["id"] for item in store.pending("known")] == ["a1"]


def _document(job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "flow_id": "f",
        "status": "running",
        "updated_at": "2026-01-01T00:00:00Z",
    }


def _entry(activation_id: str) -> dict[str, Any]:
    return {"id": activation_id, "routine_id": "r", "slot": "input", "payload": {}}


def test_issue_10_a_fenced_step_in_a_batch_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    mine, other = Owner.new(), Owner.new()
    with (
        SQLiteCheckpointStore(path) as stalled,
        SQLiteCheckpointStore(path, clock=lambda: time.time() + 3600.0) as taker,
    ):
        assert stalled.begin_job(_document("lost"), [_entry("a0")], mine)
        assert stalled.begin_job(_document("kept"), [_entry("a0")], mine)
        taker.claim("lost", other)  # the lease looks stale to this clock
        batch = [
            stalled.prepare_step("kept", finished=["a0"], added=[_entry("a1")]),
            stalled.prepare_step("lost", finished=["a0"], added=[_entry("a1")]),
        ]
        errors = stalled.write_steps(batch)
        assert errors[0] is None
        assert isinstance(errors[1], JobOwnedError)
        assert [item["id"] for item in taker.pending("kept")] == ["a1"]
        assert [item["id"] for item in taker.pending("lost")] == ["a0"]
        taker.release("lost", other)
        stalled.release("kept", mine)


def test_issue_10_a_queued_step_that_fails_fails_its_job(tmp_path: Path) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=1) as store:

        def refuse(batch: Any) -> list[BaseException | None]:
            return [CheckpointError("disk full (test)") for _ in batch]

        store.write_steps = refuse  # type: ignore[method-assign]
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 30})
        assert job.wait(WAIT)
        assert flow.wait_for_completion(timeout=WAIT)
        flow.shutdown(timeout=WAIT)
    assert job.status == "failed"
    errors = [record.error_type for record in job.errors]
    assert "CheckpointError" in errors
    assert "disk full (test)" in str(job.errors)


def test_issue_10_a_dead_step_writer_fails_the_jobs_it_held_and_frees_waiters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: StepWriter, batch: Any) -> Any:
        raise RuntimeError("writer bug (test)")

    monkeypatch.setattr(StepWriter, "_write", broken)
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=1) as store:
        flow = fan_out(store, workers=3)
        job = flow.execute("source", entry_params={"count": 30})
        assert job.wait(WAIT)
        assert flow.wait_for_completion(timeout=WAIT)
        flow.shutdown(timeout=WAIT)
        writer = writer_for(store)
        assert writer is not None
        assert writer._unwritten == 0
    assert job.status == "failed"
    assert "writer bug (test)" in str(job.errors)
    assert "CheckpointError" in [record.error_type for record in job.errors]


def test_issue_10_shutdown_with_a_timeout_returns_while_writes_are_held(
    tmp_path: Path,
) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=2) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 20})
        assert gate.entered.wait(WAIT)
        flow.shutdown(timeout=0.2)  # returns: the job is halted, not waited for
        gate.go.set()
        assert job.wait(WAIT)
        assert job.status == "cancelled"
        # The steps held were written before the job ended: the store lists
        # exactly what did not run.
        stored = {item["payload"].get("n") for item in store.pending(job.job_id)}
        assert stored.isdisjoint(sink_of(flow).arrived)


def test_issue_10_the_writer_thread_ends_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(step_writer, "LINGER", 0.01)
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite") as store:
        flow = fan_out(store)
        job = flow.execute("source", entry_params={"count": 50})
        assert job.wait(WAIT) and job.status == "completed"
        flow.shutdown()
        writers = [
            t for t in threading.enumerate() if t.name.startswith("routilux-steps-")
        ]
        for thread in writers:
            thread.join(WAIT)
        assert not [t for t in writers if t.is_alive()]


def test_issue_10_sequential_jobs_write_their_own_steps(tmp_path: Path) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite") as store:
        calls = []
        real = store.write_steps

        def spy(batch: Any) -> Any:
            calls.append(len(batch))
            return real(batch)

        store.write_steps = spy  # type: ignore[method-assign]
        flow = fan_out(store, workers=1, strategy="sequential")
        job = flow.execute("source", entry_params={"count": 20})
        assert job.status == "completed"
        flow.shutdown()
        assert calls == []
        assert sorted(sink_of(flow).arrived) == list(range(20))


class AsyncSink(Sink):
    """The same sink, as an ``async def`` handler."""

    def __init__(self) -> None:
        Routine.__init__(self)
        self.lock = threading.Lock()
        self.arrived = []
        self.define_slot("input", handler=self.take_async)

    async def take_async(self, n: int) -> None:
        self.take(n)


class Stuck(Routine):
    """A handler that outlives its timeout, until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.define_slot("input", handler=self.take)
        self.set_timeout(0.05)
        self.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))

    def take(self, n: int) -> None:
        self.release.wait(WAIT)


def test_issue_10_async_and_timed_out_handlers_write_their_own_steps(
    tmp_path: Path,
) -> None:
    # Settled on the event loop's thread or by the watchdog: neither may wait
    # for the window, so their steps are written in place, not queued.
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite") as store:
        queued: list[str] = []
        real = store.write_steps

        def spy(batch: Any) -> Any:
            queued.extend(step.removed[0][1] for step in batch if step.removed)
            return real(batch)

        store.write_steps = spy  # type: ignore[method-assign]
        flow = Flow(
            "group-commit-async",
            execution_strategy="concurrent",
            max_workers=4,
            checkpoint_store=store,
        )
        flow.add_routine(Source(), "source")
        flow.add_routine(AsyncSink(), "sink")
        stuck = Stuck()
        flow.add_routine(stuck, "stuck")
        flow.connect("source", "output", "sink", "input")
        flow.connect("source", "output", "stuck", "input")
        job = flow.execute("source", entry_params={"count": 2})
        try:
            assert job.wait(WAIT) and job.status == "completed"
        finally:
            stuck.release.set()
        flow.shutdown()
        assert sorted(sink_of(flow).arrived) == [0, 1]
        assert [record.error_type for record in job.errors] == [
            "RoutineTimeoutError",
            "RoutineTimeoutError",
        ]
        assert store.pending(job.job_id) == []
    # Only the source's step went to the writer (its id is the first).
    assert queued in ([], ["a0"])


def test_issue_10_a_pause_settles_once_the_queued_steps_are_written(
    tmp_path: Path,
) -> None:
    # The pause is stored only after the steps held for the writer: the store
    # then lists exactly what did not run, and a resume runs that, once.
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=2) as store:
        gate = GatedWrites(store)
        store.write_steps = gate  # type: ignore[method-assign]
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 30})
        assert gate.entered.wait(WAIT)
        assert flow.pause(job, reason="test")
        assert job.status != "paused"  # its settled steps are not written yet
        gate.go.set()
        assert job.wait(WAIT) and job.status == "paused"
        stored = store.load(job.job_id)
        assert stored["status"] == "paused"
        ran = list(sink_of(flow).arrived)
        left = [item["payload"]["n"] for item in store.pending(job.job_id)]
        assert sorted(ran + left) == list(range(30))
        resumed = flow.resume(job.job_id)
        assert resumed.wait(WAIT) and resumed.status == "completed"
        flow.shutdown()
        assert sorted(sink_of(flow).arrived) == list(range(30))
        assert store.pending(job.job_id) == []


def test_issue_10_a_writer_thread_that_cannot_start_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith("routilux-steps-"):
            raise RuntimeError("can't start new thread (test)")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite") as store:
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 5})
        assert job.wait(WAIT)
        assert flow.wait_for_completion(timeout=WAIT)
        flow.shutdown(timeout=WAIT)
        writer = writer_for(store)
        assert writer is not None
        assert writer._unwritten == 0
    assert job.status == "failed"
    assert "can't start new thread (test)" in str(job.errors)
    assert "CheckpointError" in [record.error_type for record in job.errors]


def test_issue_10_a_batch_answered_with_too_few_outcomes_fails_its_jobs(
    tmp_path: Path,
) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.sqlite", commit_window=1) as store:
        store.write_steps = lambda batch: []  # type: ignore[method-assign]
        flow = fan_out(store, workers=2)
        job = flow.execute("source", entry_params={"count": 10})
        assert job.wait(WAIT)
        assert flow.wait_for_completion(timeout=WAIT)
        flow.shutdown(timeout=WAIT)
    assert job.status == "failed"
    assert "returned 0 outcomes" in str(job.errors)
