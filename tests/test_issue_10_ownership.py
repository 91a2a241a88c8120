"""Issue 10: flows lease the jobs they run; reliability rows 02, 11, 21 and 22."""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

from routilux import Flow, JobOwnedError, JobStateError, JobStatus, Routine
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore
from routilux.persistence.lease import Owner

if TYPE_CHECKING:
    from pathlib import Path

AnyStore = SQLiteCheckpointStore | JsonFileCheckpointStore


class Items(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])

    def fire(self, count: int) -> None:
        for n in range(count):
            self.emit("item", n=n)


class Take(Routine):
    """Counts deliveries; ``pause_at`` pauses the job, ``gate`` holds each call."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: collections.Counter[int] = collections.Counter()
        self.lock = threading.Lock()
        self.pause_at: int | None = None
        self.interrupt_at: int | None = None
        self.gate: threading.Event | None = None
        self.define_slot("input", handler=self.take)

    def take(self, n: int) -> None:
        if self.gate is not None:
            assert self.gate.wait(30)
        if n == self.interrupt_at:
            raise KeyboardInterrupt  # what Ctrl-C does to the main thread
        with self.lock:
            self.seen[n] += 1
        if n == self.pause_at:
            context = self.get_execution_context()
            context.flow.pause(context.job_state, reason="test")


def build(store: Any, strategy: str = "concurrent", **options: Any) -> Flow:
    flow = Flow(
        "owned",
        execution_strategy=strategy,
        max_workers=4,
        checkpoint_store=store,
        **options,
    )
    flow.add_routine(Items(), "items")
    flow.add_routine(Take(), "take")
    flow.connect("items", "item", "take", "input")
    return flow


def take(flow: Flow) -> Take:
    routine = flow.routines["take"]
    assert isinstance(routine, Take)
    return routine


@pytest.fixture(params=["sqlite", "jsonfile"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    opened: AnyStore = (
        SQLiteCheckpointStore(tmp_path / "c.sqlite")
        if request.param == "sqlite"
        else JsonFileCheckpointStore(tmp_path / "c")
    )
    yield opened
    opened.close()


def paused_job(store: AnyStore, count: int = 60) -> tuple[str, int]:
    """A job paused after item 10, kept in ``store``; its id and pending count."""
    first = build(store)
    take(first).pause_at = 10
    job = first.execute("items", entry_params={"count": count})
    assert job.wait(30) and job.status == "paused"
    first.shutdown()
    return job.job_id, len(store.pending(job.job_id))


def test_issue_10_row_11_two_threads_resume_one_job_once(store: AnyStore) -> None:
    # Row 11: both threads ran every pending activation.
    for _ in range(10):
        job_id, pending = paused_job(store)
        second = build(store)
        gate = threading.Event()
        take(second).gate = gate  # the winner's job stays live until both tried
        results = resume_at_once(second, job_id)
        gate.set()
        assert second.wait_for_completion(30)
        second.shutdown()
        (owned,) = [r for r in results if isinstance(r, JobOwnedError)]
        (won,) = [r for r in results if not isinstance(r, JobOwnedError)]
        assert (owned.pid, owned.job_id) == (os.getpid(), job_id)
        assert won.status == "completed"
        seen = take(second).seen
        assert sum(seen.values()) == pending and max(seen.values()) == 1
        assert store.lease_of(job_id) is None  # given up at the end


def resume_at_once(flow: Flow, job_id: str) -> list[Any]:
    """Two threads resume ``job_id`` at one moment: a JobState or an error each."""
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def resume() -> None:
        barrier.wait()
        try:
            results.append(flow.resume(job_id))
        except JobOwnedError as exc:
            results.append(exc)

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_issue_10_resuming_a_live_job_raises_and_changes_nothing(
    store: AnyStore,
) -> None:
    job_id, pending = paused_job(store)
    running = build(store)
    gate = threading.Event()
    take(running).gate = gate
    job = running.resume(job_id)
    other = build(store)
    with pytest.raises(JobOwnedError, match=f"process {os.getpid()}"):
        other.resume(job_id)
    assert other.get_stats()["active_jobs"] == 0
    gate.set()
    assert job.wait(30) and job.status == "completed"
    running.shutdown()
    other.shutdown()
    assert sum(take(running).seen.values()) == pending
    assert take(other).seen == {}


def test_issue_10_a_job_paused_here_but_taken_over_elsewhere_stays_paused(
    store: AnyStore,
) -> None:
    here = build(store)
    take(here).pause_at = 10
    job = here.execute("items", entry_params={"count": 40})
    assert job.wait(30) and job.status == "paused"
    assert store.lease_of(job.job_id) is None  # a pause gives the lease up
    elsewhere = build(store)
    gate = threading.Event()
    take(elsewhere).gate = gate
    taken = elsewhere.resume(job.job_id)
    with pytest.raises(JobOwnedError):
        here.resume(job)
    assert job.status == "paused" and len(job.pending_tasks) > 0
    gate.set()
    assert taken.wait(30) and taken.status == "completed"
    elsewhere.shutdown()
    here.shutdown()
    assert sum(take(here).seen.values()) + sum(take(elsewhere).seen.values()) == 40


def test_issue_10_a_finished_job_leaves_no_lease_and_no_thread(
    tmp_path: Path, strategy: str
) -> None:
    with build(tmp_path / "c.sqlite", strategy) as flow:
        job = flow.execute("items", entry_params={"count": 5})
        assert job.wait(30) and job.status == "completed"
        with SQLiteCheckpointStore(tmp_path / "c.sqlite") as reader:
            assert reader.lease_of(job.job_id) is None
            (row,) = reader.list_jobs(owners=True)
            assert (row["owner"], row["live"]) == (None, False)
    assert not any(
        t.name.startswith("routilux-leases-") and t.is_alive()
        for t in threading.enumerate()
    )


def test_issue_10_a_running_job_is_listed_live_with_its_owner(store: AnyStore) -> None:
    flow = build(store)
    gate = threading.Event()
    take(flow).gate = gate
    job = flow.execute("items", entry_params={"count": 3})
    try:
        (row,) = store.list_jobs(owners=True)
        assert row["live"] is True
        assert row["owner"] == {"pid": os.getpid(), "host": Owner.new().host}
        assert store.list_jobs(status="interrupted") == []
    finally:
        gate.set()
        assert job.wait(30)
        flow.shutdown()


# -- row 02: Ctrl-C in a sequential checkpointed handler -----------------------


def test_issue_10_row_02_ctrl_c_leaves_the_interrupted_activation_pending(
    store: AnyStore,
) -> None:
    # Row 02: the interrupted activation was stored as finished and never re-ran.
    flow = build(store, "sequential")
    take(flow).interrupt_at = 2
    with pytest.raises(KeyboardInterrupt):
        flow.execute("items", entry_params={"count": 5})
    assert dict(take(flow).seen) == {0: 1, 1: 1}
    assert flow.wait_for_completion(5)
    (row,) = store.list_jobs(status="interrupted", owners=True)
    job_id = row["job_id"]
    assert [a["payload"] for a in store.pending(job_id)] == [
        {"n": 2},
        {"n": 3},
        {"n": 4},
    ]
    after = build(store, "sequential")  # "the program runs again"
    job = after.resume(job_id)
    assert job.status == "completed"
    assert dict(take(after).seen) == {2: 1, 3: 1, 4: 1}
    assert store.pending(job_id) == []
    flow.shutdown()
    after.shutdown()


def test_issue_10_row_02_the_same_flow_can_resume_after_ctrl_c(
    store: AnyStore,
) -> None:
    flow = build(store, "sequential")
    take(flow).interrupt_at = 3
    with pytest.raises(KeyboardInterrupt):
        flow.execute("items", entry_params={"count": 5}, job_id="ctrl-c")
    take(flow).interrupt_at = None
    job = flow.execute(
        "items", entry_params={"count": 5}, job_id="ctrl-c", resume_interrupted=True
    )
    assert job.status == "completed"
    assert dict(take(flow).seen) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}
    flow.shutdown()


# -- row 21: starting a job is one transaction ---------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the 'process'."""


class DiesAtFirstStep(SQLiteCheckpointStore):
    """Dies at the first step (after the job's start, on the old code)."""

    def record_step(self, job_id: str, **kwargs: Any) -> None:
        raise Killed

    def log_step(self, job_id: str, **kwargs: Any) -> None:
        raise Killed


class Work(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.orders: list[int] = []
        self.define_slot("trigger", handler=self.go)

    def go(self, order: int) -> None:
        self.orders.append(order)


def test_issue_10_row_21_a_kill_right_after_the_start_loses_no_work(
    tmp_path: Path,
) -> None:
    # Row 21: save_job and the entry activation were two transactions; dying in
    # between left a 'running' job with nothing pending, resumed as 'completed'
    # with nothing run.
    path = tmp_path / "c.sqlite"
    dying = DiesAtFirstStep(path)
    flow = Flow("orders", checkpoint_store=dying)
    flow.add_routine(Work(), "work")
    with contextlib.suppress(Killed):  # dies at the start (old) or first step
        flow.execute("work", entry_params={"order": 42})
    flow.shutdown()
    dying.close()
    with SQLiteCheckpointStore(path) as store:
        (row,) = store.list_jobs()
        assert row["status"] == "running"
        (entry,) = store.pending(row["job_id"])
        assert entry["payload"] == {"order": 42}
        again = Flow("orders", checkpoint_store=store)
        work = Work()
        again.add_routine(work, "work")
        job = again.resume(row["job_id"])
        assert job.status == "completed" and work.orders == [42]
        again.shutdown()


def test_issue_10_row_21_a_custom_store_starts_a_job_in_one_step(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    class Recording:
        """A store of the plain protocol (no leases), recording its writes."""

        def __init__(self) -> None:
            self.inner = SQLiteCheckpointStore(tmp_path / "c.sqlite")

        def save_job(self, job: dict[str, Any]) -> None:
            calls.append("save_job")
            self.inner.save_job(job)

        def record_step(self, job_id: str, **kwargs: Any) -> None:
            calls.append("record_step" + ("+job" if kwargs.get("job") else ""))
            self.inner.record_step(job_id, **kwargs)

        def pending(self, job_id: str) -> list[dict[str, Any]]:
            return self.inner.pending(job_id)

        def load(self, job_id: str) -> dict[str, Any]:
            return self.inner.load(job_id)

        def list_jobs(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            return self.inner.list_jobs(*args, **kwargs)

        def delete(self, job_id: str) -> None:
            self.inner.delete(job_id)

        def close(self) -> None:
            self.inner.close()

    store = Recording()
    flow = Flow("orders", checkpoint_store=store)
    flow.add_routine(Work(), "work")
    job = flow.execute("work", entry_params={"order": 1})
    assert job.status == "completed"
    assert calls[0] == "record_step+job"  # the start: document and entry at once
    flow.execute("work", entry_params={"order": 2}, job_id="once")
    same = flow.execute("work", entry_params={"order": 2}, job_id="once")
    assert (same.job_id, same.status) == ("once", "completed")
    work = flow.routines["work"]
    assert isinstance(work, Work) and work.orders == [1, 2]
    flow.shutdown()
    store.close()


# -- row 22: history_limit on a resumed job ------------------------------------


class Loop(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.step)
        self.define_event("again", ["left"])

    def step(self, left: int) -> None:
        if left == 50:
            context = self.get_execution_context()
            context.flow.pause(context.job_state, reason="half-way")
        if left > 0:
            self.emit("again", left=left - 1)


def loop(store: Any) -> Flow:
    flow = Flow("loop", history_limit=10, checkpoint_store=store)
    flow.add_routine(Loop(), "l")
    flow.connect("l", "again", "l", "trigger")
    return flow


def test_issue_10_row_22_history_limit_holds_for_a_job_resumed_by_id(
    store: AnyStore,
) -> None:
    # Row 22: the resumed job kept its whole history (510 records at limit 10).
    first = loop(store)
    job = first.execute("l", entry_params={"left": 100})
    assert job.status == "paused" and len(job.execution_history) == 10
    first.shutdown()
    resumed = loop(store).resume(job.job_id)
    assert resumed.status == "completed"
    assert len(resumed.execution_history) == 10
    assert resumed.execution_history[-1].event_name == "completed"
    assert store.load(job.job_id)["status"] == JobStatus.COMPLETED.value


def test_issue_10_a_job_paused_here_and_finished_elsewhere_is_not_run_again(
    store: AnyStore,
) -> None:
    here = build(store)
    take(here).pause_at = 10
    job = here.execute("items", entry_params={"count": 30})
    assert job.wait(30) and job.status == "paused"
    elsewhere = build(store)
    finished = elsewhere.resume(job.job_id)
    assert finished.wait(30) and finished.status == "completed"
    with pytest.raises(JobStateError, match=r"ran on elsewhere.*completed"):
        here.resume(job)
    assert job.status == "paused"
    assert store.lease_of(job.job_id) is None
    assert store.load(job.job_id)["status"] == "completed"
    delivered = collections.Counter(take(here).seen) + collections.Counter(
        take(elsewhere).seen
    )
    assert set(delivered) == set(range(30)) and max(delivered.values()) == 1
    here.shutdown()
    elsewhere.shutdown()


def test_issue_10_a_job_paused_again_elsewhere_is_not_run_from_here(
    store: AnyStore,
) -> None:
    here = build(store)
    take(here).pause_at = 5
    job = here.execute("items", entry_params={"count": 30})
    assert job.wait(30) and job.status == "paused"
    elsewhere = build(store)
    take(elsewhere).pause_at = 20
    again = elsewhere.resume(job.job_id)
    assert again.wait(30) and again.status == "paused"
    with pytest.raises(JobStateError, match=r"ran on elsewhere.*paused, 2 pause"):
        here.resume(job)
    resumed = elsewhere.resume(again)
    assert resumed.wait(30) and resumed.status == "completed"
    here.shutdown()
    elsewhere.shutdown()
