"""Issue 9 item 5: dead letters replayed into their original job while it is open.

Open means running on a strategy that does not block a caller's thread, or
paused; otherwise (finished, or a sequential job running in another thread) the
letters run as a new job, as before.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from routilux import CheckpointError, ErrorHandler, Flow, Routine
from routilux.persistence import SQLiteCheckpointStore

if TYPE_CHECKING:
    from pathlib import Path

WAIT = 30.0


class Feed(Routine):
    """Emits the items it is triggered with, then a ``hold`` signal."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])
        self.define_event("hold", ["n"])

    def fire(self, items: list[int]) -> None:
        for n in items:
            self.emit("item", n=n)
        self.emit("hold", n=-1)


class Picky(Routine):
    """Fails on ``bad`` items until fixed; records what it delivered."""

    def __init__(self) -> None:
        super().__init__()
        self.bad = {2, 5}
        self.delivered: list[int] = []
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.work)
        self.set_error_handler(ErrorHandler("continue"))

    def work(self, n: int) -> None:
        if n in self.bad:
            raise ValueError(f"bad {n}")
        with self._guard:
            self.delivered.append(n)


class Holder(Routine):
    """Keeps the job open until released (a long step elsewhere in the job)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.define_slot("input", handler=self.hold)
        self.define_event("done", ["n"])

    def hold(self, n: int) -> None:
        self.entered.set()
        assert self.release.wait(WAIT)
        self.emit("done", n=8)


def build(strategy: str, store: Any = None) -> tuple[Flow, Picky, Holder]:
    flow = Flow("replay-open", strategy, 4, checkpoint_store=store)
    picky, holder = Picky(), Holder()
    flow.add_routine(Feed(), "feed")
    flow.add_routine(picky, "picky")
    flow.add_routine(holder, "holder")
    flow.connect("feed", "item", "picky", "input")
    flow.connect("feed", "hold", "holder", "input")
    return flow, picky, holder


def wait_for_letters(flow: Flow, count: int) -> list[Any]:
    # The letters are made as the failing activations settle, before the
    # holder is released: poll within a bound (no timing is asserted).
    done = threading.Event()
    letters: list[Any] = []
    for _ in range(3000):
        letters = flow.dead_letters()
        if len(letters) >= count:
            done.set()
            break
        done.wait(0.01)
    assert len(letters) == count, letters
    return letters


@pytest.mark.parametrize("with_store", [False, True])
def test_issue_9_replay_joins_the_running_job(with_store: bool, tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "jobs.db") if with_store else None
    flow, picky, holder = build("concurrent", store)
    try:
        with flow:
            job = flow.execute("feed", {"items": list(range(8))})
            assert holder.entered.wait(WAIT)
            letters = wait_for_letters(flow, 2)
            picky.bad.clear()
            joined = flow.replay(letters)
            assert joined is job  # the same job, still running
            holder.release.set()
            assert job.wait(WAIT)
            assert job.status == "completed"
            assert sorted(picky.delivered) == list(range(8))
            replays = [r for r in job.execution_history if r.event_name == "replay"]
            assert [r.data for r in replays] == [
                {"dead_letters": [letter.letter_id for letter in letters]}
            ]
            assert flow.dead_letters() == []
            replayed = flow.dead_letters(include_replayed=True)
            assert {letter.replayed_by for letter in replayed} == {job.job_id}
            if store is not None:
                assert store.pending(job.job_id) == []  # nothing left behind
    finally:
        holder.release.set()
        if store is not None:
            store.close()


def test_issue_9_replay_joins_a_paused_job_and_runs_on_resume() -> None:
    flow, picky, holder = build("concurrent")
    flow.connect("holder", "done", "picky", "input")  # held by the pause
    with flow:
        job = flow.execute("feed", {"items": list(range(8))})
        assert holder.entered.wait(WAIT)
        letters = wait_for_letters(flow, 2)
        assert flow.pause(job, "hold on")
        holder.release.set()
        assert job.wait(WAIT) and job.status == "paused"
        picky.bad.clear()
        assert flow.replay(letters) is job
        held = [task["payload"] for task in job.pending_tasks]
        assert sorted(p["n"] for p in held) == [2, 5, 8]
        assert sorted(picky.delivered) == [0, 1, 3, 4, 6, 7]  # not run yet
        flow.resume(job)
        assert job.wait(WAIT) and job.status == "completed"
        assert sorted(picky.delivered) == list(range(9))


def test_issue_9_replay_of_a_finished_job_starts_a_new_job(strategy: str) -> None:
    flow, picky, holder = build(strategy)
    holder.release.set()
    with flow:
        job = flow.execute("feed", {"items": list(range(8))})
        assert job.wait(WAIT)
        letters = flow.dead_letters()
        picky.bad.clear()
        again = flow.replay(letters)
        assert again.wait(WAIT)
        assert again.job_id != job.job_id and again.status == "completed"
        assert sorted(picky.delivered) == list(range(8))


def test_issue_9_replay_into_a_sequential_job_running_elsewhere_is_a_new_job() -> None:
    # A sequential job's lane drains in the thread that called execute(); work
    # added from another thread could be missed, so it runs as a job of its own.
    flow, picky, holder = build("sequential")
    outcome: list[Any] = []
    runner = threading.Thread(
        target=lambda: outcome.append(flow.execute("feed", {"items": list(range(8))}))
    )
    with flow:
        runner.start()
        assert holder.entered.wait(WAIT)
        letters = flow.dead_letters()
        assert len(letters) == 2  # the sequential job ran picky before holder
        picky.bad.clear()
        again = flow.replay(letters)
        assert again.status == "completed"
        holder.release.set()
        runner.join(WAIT)
        (job,) = outcome
        assert again.job_id != job.job_id and job.status == "completed"
        assert sorted(picky.delivered) == list(range(8))


def test_issue_9_a_failed_rejoin_leaves_the_job_as_it_was(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "jobs.db")
    flow, picky, holder = build("concurrent", store)
    try:
        with flow:
            job = flow.execute("feed", {"items": list(range(8))})
            assert holder.entered.wait(WAIT)
            letters = wait_for_letters(flow, 2)
            real = store.record_step

            def broken(*args: Any, **kwargs: Any) -> None:
                raise OSError("disk full")

            store.record_step = broken  # type: ignore[method-assign]
            try:
                with pytest.raises(CheckpointError, match="disk full") as caught:
                    flow.replay(letters)
            finally:
                store.record_step = real  # type: ignore[method-assign]
            assert job.job_id in str(caught.value)
            assert isinstance(caught.value.__cause__, OSError)
            holder.release.set()
            assert job.wait(WAIT) and job.status == "completed"
            assert sorted(picky.delivered) == [0, 1, 3, 4, 6, 7]
            assert len(flow.dead_letters()) == 2  # still there to replay
            replays = [r for r in job.execution_history if r.event_name == "replay"]
            assert len(replays) == 1  # the attempt is in the history
    finally:
        holder.release.set()
        store.close()
