"""A sequential job with a store does not end while another thread hands it work.

On the sequential strategy the job runs in the caller's thread, which returns
once its queue is empty. Two other threads may hand that queue children while a
handler of the job still runs: the watchdog, settling a handler past its
timeout (it writes the step, then releases the children), and the flush
thread, writing a running handler's children in a partial step. When the
handler returned while that thread was still writing, the caller's thread saw
an empty queue and waited for a job that could no longer finish: ``execute``
never returned. Each test slows that other thread's store write until the
handler has returned, the order that hung.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from routilux import ErrorHandler, Flow, JobStatus, Routine
from routilux.persistence import SQLiteCheckpointStore
from routilux.runtime.ledger import streaming

if TYPE_CHECKING:
    from pathlib import Path

#: Seconds the handler runs past its timeout (it waits for nothing longer).
OVERRUN = 0.3


class SlowFromOtherThreads(SQLiteCheckpointStore):
    """Writes from any thread but the caller's wait until the handler returned."""

    def __init__(self, path: Path, returned: threading.Event) -> None:
        super().__init__(path)
        self.returned = returned
        self.other_writes = 0

    def _late(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.other_writes += 1
            assert self.returned.wait(10)
            # Let the caller's thread reach its empty queue first.
            threading.Event().wait(0.05)

    def record_step(self, job_id: str, **step: Any) -> None:
        self._late()
        super().record_step(job_id, **step)

    def log_step(self, job_id: str, **step: Any) -> None:
        self._late()
        super().log_step(job_id, **step)


class EmitsThenOverruns(Routine):
    """Emits one value, then runs past its timeout."""

    def __init__(self, returned: threading.Event) -> None:
        super().__init__()
        self.returned = returned
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["v"])

    def go(self) -> None:
        try:
            self.emit("out", v=1)
            threading.Event().wait(OVERRUN)
        finally:
            self.returned.set()


class Sink(Routine):
    """Counts what arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.define_slot("input", handler=self.take)

    def take(self, v: int) -> None:
        self.seen.append(v)


def run_job(tmp_path: Path, timeout: float | None) -> tuple[Any, Sink, int]:
    returned = threading.Event()
    store = SlowFromOtherThreads(tmp_path / "cp.sqlite", returned)
    flow = Flow(flow_id="hold", execution_strategy="sequential", checkpoint_store=store)
    source = EmitsThenOverruns(returned)
    if timeout is not None:
        source.set_timeout(timeout)
        source.set_error_handler(ErrorHandler(strategy="continue"))
    sink = Sink()
    flow.add_routine(source, "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "out", "sink", "input")
    try:
        job = flow.execute("source", {})
        assert job.wait(5)
        return job, sink, store.other_writes
    finally:
        flow.shutdown(timeout=5)
        store.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("repeat", range(3))
def test_a_timeout_settled_while_the_handler_runs_still_runs_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repeat: int
) -> None:
    # No partial steps: the child waits in the outbox until the watchdog's step.
    monkeypatch.setattr(streaming, "FLUSH_AFTER", 1e9)
    monkeypatch.setattr(streaming, "FLUSH_EVERY", 10**9)
    job, sink, other_writes = run_job(tmp_path, timeout=0.05)
    assert other_writes >= 1  # the watchdog wrote the step
    assert job.status == JobStatus.COMPLETED
    assert [e.error_type for e in job.errors] == ["RoutineTimeoutError"]
    assert sink.seen == [1]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("repeat", range(3))
def test_a_partial_step_written_as_the_handler_returns_still_runs_its_children(
    tmp_path: Path, repeat: int
) -> None:
    job, sink, other_writes = run_job(tmp_path, timeout=None)
    assert other_writes >= 1  # the flush thread wrote a partial step
    assert job.status == JobStatus.COMPLETED
    assert sink.seen == [1]


@pytest.mark.timeout(30)
def test_both_at_once(tmp_path: Path) -> None:
    job, sink, other_writes = run_job(tmp_path, timeout=0.05)
    assert other_writes >= 1
    assert job.status == JobStatus.COMPLETED
    assert sink.seen == [1]
