"""Issue 10 item 3: a running job's history is appended as a log, not rewritten.

On a :class:`~routilux.persistence.LoggingStore` each step appends the history
made since the previous one; the document written while the job runs holds
none; ``load`` rebuilds the whole document; the job's end compacts the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    CheckpointError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobState,
    JobStatus,
)
from routilux.persistence import CheckpointStore, LoggingStore, SQLiteCheckpointStore
from routilux.runtime import checkpoint

from .crash_flow import build
from .issue_8_routines import GUARD, FlakyStore, Fn, Sink

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parents[1]


def _log_rows(path: Path, job_id: str | None = None) -> int:
    """How many history entries the log holds (a row holds a step's batch)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        if job_id is None:
            rows = conn.execute("SELECT entry FROM history_log").fetchall()
        else:
            query = "SELECT entry FROM history_log WHERE job_id = ?"
            rows = conn.execute(query, (job_id,)).fetchall()
    batches = [json.loads(text) for (text,) in rows]
    return sum(len(b) if isinstance(b, list) else 1 for b in batches)


def _document_of(stored: dict[str, Any]) -> JobState:
    """The JobState of a loaded document (pending activations live beside it)."""
    return JobState.deserialize(
        {k: v for k, v in stored.items() if k != "pending_activations"}
    )


def _loaded(store: SQLiteCheckpointStore, job_id: str) -> JobState:
    return _document_of(store.load(job_id))


def _emit(routine: Fn, params: dict[str, Any]) -> None:
    for value in params.get("values", ()):
        routine.emit("out", value=value)


class Picky(Sink):
    """A sink that fails on 3 (the job goes on) and keeps a routine state."""

    def take(self, value: Any = None) -> None:
        super().take(value)
        if value == 3:
            raise ValueError("3 is bad")


def _flow(store: Any, strategy: str = "sequential", **options: Any) -> Flow:
    flow = Flow(
        "logged",
        execution_strategy=strategy,
        max_workers=4,
        checkpoint_store=store,
        **options,
    )
    sink = Picky()
    sink.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(Fn(_emit), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "sink", "input")
    return flow


def _same(rebuilt: JobState, expected: dict[str, Any]) -> None:
    """``rebuilt`` holds the history, errors and states of document ``expected``."""
    mine = rebuilt.serialize()
    for key in ("execution_history", "errors", "routine_states", "status"):
        assert mine[key] == expected[key], key


class Recording(SQLiteCheckpointStore):
    """Keeps, after each logged step, the job's in-memory document; dies at one.

    The sequential strategy steps in the calling thread between activations, so
    right after a step the store holds all of the job's history.
    """

    def __init__(self, path: Path, die_at: int = -1) -> None:
        super().__init__(path)
        self.job: JobState | None = None
        self.snapshots: list[dict[str, Any]] = []
        self.die_at = die_at
        self.dead = False

    def log_step(self, job_id: str, **kwargs: Any) -> None:
        self._alive(len(self.snapshots) == self.die_at)
        super().log_step(job_id, **kwargs)
        if self.job is not None:
            self.snapshots.append(self.job.serialize())

    def record_step(self, job_id: str, **kwargs: Any) -> None:
        self._alive()
        super().record_step(job_id, **kwargs)

    def save_job(self, job: dict[str, Any]) -> None:
        self._alive()
        super().save_job(job)

    def _alive(self, dies: bool = False) -> None:
        # Once dead, nothing more reaches the file (the job's final write
        # included), as after SIGKILL.
        self.dead = self.dead or dies
        if self.dead:
            raise Killed


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the 'process'."""


class Catch(Sink):
    """Hands the running job to the recording store at its first value."""

    def __init__(self, store: Recording) -> None:
        super().__init__()
        self.store = store

    def take(self, value: Any = None) -> None:
        context = self.get_execution_context()
        assert context is not None
        self.store.job = context.job_state
        super().take(value)
        if value == 3:
            raise ValueError("3 is bad")


@pytest.fixture
def every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    # The document (errors, routine states) then rides with every step, so a
    # rebuilt job equals the in-memory one after each step.
    monkeypatch.setattr(checkpoint, "SAVE_INTERVAL", 0.0)


def _recording_flow(store: Recording) -> Flow:
    flow = Flow("logged", checkpoint_store=store)
    sink = Catch(store)
    sink.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(Fn(_emit), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "sink", "input")
    return flow


def test_the_store_is_a_logging_store_and_an_old_style_one_is_not() -> None:
    with SQLiteCheckpointStore(":memory:") as store:
        assert isinstance(store, LoggingStore)
        assert isinstance(store, CheckpointStore)
    old_style = OldStyle(":memory:")
    assert not isinstance(old_style, LoggingStore)
    old_style.close()


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_finished_job_is_compacted_and_loads_as_it_ran(
    tmp_path: Path, strategy: str
) -> None:
    path = tmp_path / "c.sqlite"
    with SQLiteCheckpointStore(path) as store:
        flow = _flow(store, strategy)
        job = flow.execute("src", entry_params={"values": list(range(200))})
        assert job.wait(GUARD)
        flow.shutdown()
        assert job.status is JobStatus.COMPLETED
        assert [e.message for e in job.errors] == ["3 is bad"]
        assert len(job.execution_history) > 200
        _same(_loaded(store, job.job_id), job.serialize())
    assert _log_rows(path) == 0


def test_each_step_appends_and_the_rebuilt_job_equals_the_running_one(
    tmp_path: Path, every_step: None
) -> None:
    path = tmp_path / "c.sqlite"
    store = Recording(path)
    flow = _recording_flow(store)
    job = flow.execute("src", entry_params={"values": list(range(6))})
    flow.shutdown()
    assert job.status is JobStatus.COMPLETED
    assert len(store.snapshots) >= 6
    store.close()
    assert _log_rows(path) == 0  # compacted at the end


def test_a_job_killed_mid_run_rebuilds_from_the_log_and_resumes_it(
    tmp_path: Path, every_step: None
) -> None:
    path = tmp_path / "c.sqlite"
    store = Recording(path, die_at=5)
    flow = _recording_flow(store)
    with contextlib.suppress(Killed):
        flow.execute("src", entry_params={"values": list(range(10))})
    flow.shutdown()
    store.close()
    assert len(store.snapshots) == 5
    last = store.snapshots[-1]
    job_id = last["job_id"]
    with SQLiteCheckpointStore(path) as reader:
        stored = reader.load(job_id)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            (raw,) = conn.execute(
                "SELECT document FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        # The running document holds only what it held at the start (the
        # job's first record); every later entry is a row of the log.
        in_document = len(json.loads(raw)["execution_history"])
        assert in_document <= 1
        logged = _log_rows(path, job_id)
        assert logged > 5
        assert in_document + logged == len(last["execution_history"])
        _same(_document_of(stored), last)
        # Resumed, the job runs what was pending and compacts everything it had.
        again_store = Recording(path)
        again = _recording_flow(again_store)
        resumed = again.resume(job_id)
        assert resumed.wait(GUARD)
        again.shutdown()
        again_store.close()
        assert resumed.status is JobStatus.COMPLETED
        final = reader.load(job_id)
        assert (
            final["execution_history"][: len(last["execution_history"])]
            == (last["execution_history"])
        )
        _same(_document_of(final), resumed.serialize())
    assert _log_rows(path) == 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_sigkilled_job_keeps_its_logged_history_through_the_resume(
    tmp_path: Path,
) -> None:
    store_path, sink_path = tmp_path / "jobs.sqlite", tmp_path / "sink.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "crash_flow.py"),
            str(store_path),
            str(sink_path),
            "5",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    job_id = child.stdout.readline().strip()
    waiter = threading.Event()
    while _lines(sink_path) < 120 and child.poll() is None:
        waiter.wait(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL, "the child finished before the kill"
    assert _log_rows(store_path, job_id) > 0  # the history was logged, not rewritten
    with SQLiteCheckpointStore(store_path) as store:
        before = _loaded(store, job_id)
        history = [(r.routine_id, r.event_name) for r in before.execution_history]
        assert history[0][0] == "source"
        flow = build(store_path, sink_path, fail_on=5)
        job = flow.resume(job_id)
        assert job.wait(60)
        flow.shutdown()
        after = store.load(job_id)
    assert job.status is JobStatus.COMPLETED
    assert _log_rows(store_path) == 0
    assert (
        after["execution_history"][: len(history)]
        == (before.serialize()["execution_history"])
    )
    assert len(after["execution_history"]) == len(job.execution_history)


def _lines(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


def test_a_history_limit_keeps_the_whole_document(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    steps: list[int] = []

    class Counting(SQLiteCheckpointStore):
        def log_step(self, job_id: str, **kwargs: Any) -> None:
            steps.append(1)
            super().log_step(job_id, **kwargs)

    with Counting(path) as store:
        flow = _flow(store, history_limit=5)
        job = flow.execute("src", entry_params={"values": list(range(20))})
        flow.shutdown()
        assert job.status is JobStatus.COMPLETED
        assert steps == []  # a bounded history rides in the document
        stored = _loaded(store, job.job_id)
        assert len(stored.execution_history) == 5


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_failing_log_write_fails_the_job_and_nothing_hangs(strategy: str) -> None:
    store = FlakyStore()
    store.fails = lambda call, job: call == "log_step"
    flow = _flow(store, strategy)
    try:
        job = flow.execute("src", entry_params={"values": list(range(50))})
        assert job.wait(GUARD)
        assert job.status is JobStatus.FAILED
        assert "CheckpointError" in [e.error_type for e in job.errors]
        assert flow.wait_for_completion(GUARD)
        assert store.load(job.job_id)["status"] == "failed"
    finally:
        flow.shutdown(wait=False)
        store.close()


def test_an_old_file_without_the_log_table_opens_and_works(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    SQLiteCheckpointStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TABLE history_log")  # as routilux before the log wrote it
        conn.commit()
    read_only = SQLiteCheckpointStore(path, read_only=True)
    assert read_only.list_jobs() == []
    read_only.close()
    with SQLiteCheckpointStore(path) as store:  # a writable open adds the table
        flow = _flow(store)
        job = flow.execute("src", entry_params={"values": [1, 2]})
        flow.shutdown()
        assert job.status is JobStatus.COMPLETED
        _same(_loaded(store, job.job_id), job.serialize())
    assert _log_rows(path) == 0


def test_a_read_only_old_file_loads_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with SQLiteCheckpointStore(path) as store:
        flow = _flow(store)
        job = flow.execute("src", entry_params={"values": [1, 2]})
        flow.shutdown()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TABLE history_log")
        conn.commit()
    with SQLiteCheckpointStore(path, read_only=True) as reader:
        _same(_loaded(reader, job.job_id), job.serialize())


class OldStyle:
    """A third-party store of before the log: the CheckpointStore methods only."""

    def __init__(self, path: str | Path) -> None:
        self.inner = SQLiteCheckpointStore(path)
        self.documents: list[dict[str, Any]] = []

    def save_job(self, job: dict[str, Any]) -> None:
        self.inner.save_job(job)

    def record_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
        job: dict[str, Any] | None = None,
    ) -> None:
        if job is not None:
            self.documents.append(job)
        self.inner.record_step(job_id, finished=finished, added=added, job=job)

    def pending(self, job_id: str) -> list[dict[str, Any]]:
        return self.inner.pending(job_id)

    def load(self, job_id: str) -> dict[str, Any]:
        return self.inner.load(job_id)

    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        return self.inner.list_jobs(flow_id, status)

    def delete(self, job_id: str) -> None:
        self.inner.delete(job_id)

    def close(self) -> None:
        self.inner.close()


def test_an_old_style_store_still_gets_whole_documents(tmp_path: Path) -> None:
    store = OldStyle(tmp_path / "c.sqlite")
    assert isinstance(store, CheckpointStore)
    flow = _flow(store)
    job = flow.execute("src", entry_params={"values": list(range(5))})
    flow.shutdown()
    assert job.status is JobStatus.COMPLETED
    final = store.documents[-1]
    assert final["status"] == "completed"
    assert final["execution_history"] == job.serialize()["execution_history"]
    store.close()


def test_the_log_rejects_a_step_of_an_unknown_job() -> None:
    with SQLiteCheckpointStore(":memory:") as store:
        with pytest.raises(CheckpointError, match="unknown job 'nope'"):
            store.log_step("nope", history=[{"routine_id": "r"}])
        assert store.list_jobs() == []
