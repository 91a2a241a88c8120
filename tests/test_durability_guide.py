"""Issue 10 item 7: the promises of docs/guide/durability.rst that no other test holds.

The guide cites, in comments of its source, the test behind each statement; the
ones here are those no other file had:

* a crash is taken as a *copy of the store* made while handlers run (SQLite's
  backup API gives a consistent copy, as a killed process leaves it): resuming
  from the copy runs exactly what it lists as pending, so completed activations
  run once and at most ``max_workers`` (the sequential strategy: one) run twice;
* with a store, an emitted activation runs only after the step that stores it;
* the lease is not fenced: the store records the steps of an owner whose job was
  taken over;
* when the job document is written (start, the step after an error, the end,
  and a step once ``SAVE_INTERVAL`` has passed);
* which stores a flow closes at shutdown;
* what a join's inbox holds at a crash (today: nothing is stored);
* the figures the guide shows are rows of ``docs/_static/bench.json``.

Nothing here sleeps for correctness or measures time: handlers meet at events.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from routilux import (
    CheckpointError,
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobOwnedError,
    Routine,
)
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore
from routilux.persistence.lease import Owner
from routilux.runtime import checkpoint
from routilux.runtime.ledger import streaming
from routilux.runtime.stream import EMITTED

from .issue_8_routines import FlakyStore

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide" / "durability.rst"
ITEMS = 60
FIRST_HELD = 20  # items from here on wait in the handler until the store is copied


def _later() -> float:
    """A clock an hour ahead: every lease written by the real clock looks stale."""
    return time.time() + 3600.0


def _copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite store: what a crash would leave."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


class Items(Routine):
    """Emits ``count`` numbered items from one activation."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])

    def fire(self, **params: Any) -> None:
        for n in range(params.get("count", ITEMS)):
            self.emit("item", n=n)


class Sink(Routine):
    """Notes each item as it starts; ``crash`` (set by a test) runs at one point."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.crash: Any = None
        self.define_slot("input", handler=self.take)

    def take(self, n: int) -> None:
        with self.lock:
            self.started.append(n)
        if self.crash is not None and n >= FIRST_HELD:
            self.crash(n)


def _items_flow(store: Any, strategy: str, workers: int) -> Flow:
    flow = Flow(
        "guide-crash",
        execution_strategy=strategy,
        max_workers=workers,
        checkpoint_store=store,
    )
    flow.add_routine(Items(), "items")
    flow.add_routine(Sink(), "sink")
    flow.connect("items", "item", "sink", "input")
    return flow


def _sink(flow: Flow) -> Sink:
    sink = flow.routines["sink"]
    assert isinstance(sink, Sink)
    return sink


class CopyWhenAllBusy:
    """Copies the store once ``workers`` handlers are inside it; holds them till then.

    Every worker then runs a handler that has not returned: the copy is the
    store as a crash at that moment leaves it.
    """

    def __init__(self, source: Path, target: Path, workers: int) -> None:
        self.source, self.target, self.workers = source, target, workers
        self.lock = threading.Lock()
        self.inside = 0
        self.running_at_copy: list[int] = []
        #: The items whose handler had started when the store was copied.
        self.started_at_copy: set[int] = set()
        self.sink: Sink | None = None
        self.copied = threading.Event()

    def __call__(self, n: int) -> None:
        with self.lock:
            if self.copied.is_set():
                return
            self.inside += 1
            self.running_at_copy.append(n)
            last = self.inside == self.workers
            if last:
                # Every worker is in this method: no handler starts meanwhile.
                assert self.sink is not None
                self.started_at_copy = set(self.sink.started)
                _copy(self.source, self.target)
                self.copied.set()
        if not last:
            assert self.copied.wait(30), "the workers never all met in handlers"


@pytest.mark.parametrize(
    ("strategy", "workers"), [("sequential", 1), ("concurrent", 4)]
)
@pytest.mark.parametrize("repeat", range(5))
def test_a_crash_reruns_only_what_was_running_and_at_most_max_workers_plus_window(
    tmp_path: Path, strategy: str, workers: int, repeat: int
) -> None:
    del repeat  # the concurrent order differs from run to run
    live_path, crashed_path = tmp_path / "live.sqlite", tmp_path / "crashed.sqlite"
    crash = CopyWhenAllBusy(live_path, crashed_path, workers)
    with SQLiteCheckpointStore(live_path) as live_store:
        # Steps of settled activations may wait for the store's step writer
        # (the concurrent strategy only): a crash re-runs those too.
        window = live_store.commit_window if strategy == "concurrent" else 0
        live = _items_flow(live_store, strategy, workers)
        crash.sink = _sink(live)
        _sink(live).crash = crash
        job = live.execute("items")
        assert job.wait(30) and job.status == "completed"  # the copy let it go on
        live.shutdown()
    before_copy = crash.started_at_copy

    with SQLiteCheckpointStore(crashed_path, clock=_later) as crashed:
        pending = [item["payload"]["n"] for item in crashed.pending(job.job_id)]
        resumer = _items_flow(crashed, strategy, workers)
        resumed = resumer.resume(job.job_id)
        assert resumed.wait(30) and resumed.status == "completed"
        resumer.shutdown()
        assert crashed.pending(job.job_id) == []
    after = _sink(resumer).started

    # The resume ran exactly what the store listed, each once: nothing is lost.
    assert sorted(after) == sorted(pending)
    assert set(pending) | before_copy == set(range(ITEMS))
    # Run twice: the handlers running at the crash, and those settled whose
    # step was not written yet: at most max_workers + commit_window.
    twice = before_copy & set(after)
    assert set(crash.running_at_copy) <= twice
    assert 1 <= len(twice) <= workers + window
    # Of those that had returned before the copy, at most the window ran again.
    assert len((before_copy - set(crash.running_at_copy)) & set(after)) <= window


class AsyncSink(Routine):
    """An async handler: it awaits until ``meet`` of them await, then the copy."""

    def __init__(self, meet: int, copy: Any) -> None:
        super().__init__()
        self.meet, self.copy = meet, copy
        self.started: list[int] = []
        self.running_at_copy: list[int] = []
        self.copied: asyncio.Event | None = None  # made on the handlers' loop
        self.define_slot("input", handler=self.take)

    async def take(self, n: int) -> None:
        # One event loop runs every awaiting handler: no lock is needed here.
        self.started.append(n)
        if self.copied is None:
            self.copied = asyncio.Event()
        if self.copied.is_set():
            return
        self.running_at_copy.append(n)
        if len(self.running_at_copy) == self.meet:
            self.copy()
            self.copied.set()
        await self.copied.wait()


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
@pytest.mark.parametrize("limit", [None, 3])
def test_async_handlers_awaiting_at_a_crash_all_run_again(
    tmp_path: Path, strategy: str, limit: int | None
) -> None:
    # The bound of max_workers is for handlers that hold a thread: async ones
    # all await together (up to their routine's max_concurrency).
    live_path, crashed_path = tmp_path / "live.sqlite", tmp_path / "crashed.sqlite"
    meet = limit or 10

    def flow_on(store: Any, copy: Any) -> Flow:
        flow = Flow(
            "guide-async",
            execution_strategy=strategy,
            max_workers=2,
            checkpoint_store=store,
        )
        sink = AsyncSink(meet, copy)
        if limit is not None:
            sink.set_max_concurrency(limit)
        flow.add_routine(Items(), "items")
        flow.add_routine(sink, "sink")
        flow.connect("items", "item", "sink", "input")
        return flow

    with SQLiteCheckpointStore(live_path) as live_store:
        live = flow_on(live_store, lambda: _copy(live_path, crashed_path))
        job = live.execute("items", {"count": 10})
        assert job.wait(30) and job.status == "completed"
        live.shutdown()
    awaiting = live.routines["sink"].running_at_copy  # type: ignore[attr-defined]
    assert len(awaiting) == meet
    with SQLiteCheckpointStore(crashed_path, clock=_later) as crashed:
        pending = sorted(item["payload"]["n"] for item in crashed.pending(job.job_id))
        # The resumed run copies nothing: the store it runs on is its own now.
        resumer = flow_on(crashed, lambda: None)
        resumed = resumer.resume(job.job_id)
        assert resumed.wait(30) and resumed.status == "completed"
        resumer.shutdown()
    after = resumer.routines["sink"].started  # type: ignore[attr-defined]
    assert sorted(after) == pending
    assert set(awaiting) <= set(after)  # every handler awaiting ran again


class Doubler(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.double)
        self.define_event("out", ["n"])

    def double(self, n: int) -> None:
        self.emit("out", n=2 * n)


class Noting(SQLiteCheckpointStore):
    """Notes, once a step has committed, the activations it stored."""

    def __init__(self, path: Path, notes: list[tuple[str, str, int]]) -> None:
        super().__init__(path)
        self.notes = notes
        self.notes_lock = threading.Lock()

    def _noted(self, added: Any) -> None:
        with self.notes_lock:
            for item in added:
                if EMITTED in item["payload"]:  # a progress row (emits stream)
                    continue
                self.notes.append(("stored", item["routine_id"], item["payload"]["n"]))

    def record_step(self, job_id: str, **step: Any) -> None:
        super().record_step(job_id, **step)
        self._noted(step.get("added", ()))

    def log_step(self, job_id: str, **step: Any) -> None:
        super().log_step(job_id, **step)
        self._noted(step.get("added", ()))


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
@pytest.mark.parametrize("repeat", range(3))
def test_an_emitted_activation_runs_only_after_the_step_that_stores_it(
    tmp_path: Path, strategy: str, repeat: int
) -> None:
    del repeat
    notes: list[tuple[str, str, int]] = []
    with Noting(tmp_path / "s.sqlite", notes) as store:
        flow = Flow(
            "guide-outbox",
            execution_strategy=strategy,
            max_workers=4,
            checkpoint_store=store,
        )
        flow.add_routine(Items(), "items")
        flow.add_routine(Doubler(), "double")
        flow.add_routine(Sink(), "sink")
        flow.connect("items", "item", "double", "input")
        flow.connect("double", "out", "sink", "input")
        for routine_id in ("double", "sink"):
            routine = flow.routines[routine_id]
            slot = routine.get_slot("input")
            assert slot is not None
            original = slot.handler
            assert original is not None

            def noted(n: int, _id: str = routine_id, _call: Any = original) -> None:
                with store.notes_lock:
                    notes.append(("ran", _id, n))
                _call(n=n)

            slot.handler = noted
        job = flow.execute("items", {"count": 30})
        assert job.wait(30) and job.status == "completed"
        flow.shutdown()
    ran = [(r, n) for kind, r, n in notes if kind == "ran"]
    assert sorted(ran) == sorted(
        [("double", n) for n in range(30)] + [("sink", 2 * n) for n in range(30)]
    )
    for routine_id, n in ran:
        assert notes.index(("stored", routine_id, n)) < notes.index(
            ("ran", routine_id, n)
        )


def _document(job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "flow_id": "f",
        "status": "running",
        "updated_at": "2026-01-01T00:00:00Z",
        "kind": "routilux.job",
    }


def _entry(activation_id: str) -> dict[str, Any]:
    return {"id": activation_id, "routine_id": "r", "slot": "input", "payload": {}}


def _open(kind: str, where: Path, **options: Any) -> Any:
    if kind == "sqlite":
        return SQLiteCheckpointStore(where / "f.sqlite", **options)
    return JsonFileCheckpointStore(where / "files", **options)


@pytest.mark.parametrize("kind", ["sqlite", "json"])
def test_a_lapsed_lease_is_fenced_its_old_owner_writes_nothing(
    tmp_path: Path, kind: str
) -> None:
    first, second = Owner.new(), Owner.new()
    with (
        _open(kind, tmp_path) as stalled,
        _open(kind, tmp_path, clock=_later) as taker,
    ):
        assert stalled.begin_job(_document("j"), [_entry("a0")], first)
        taker.claim("j", second)  # the first lease looks stale to this clock
        # The stalled owner wakes up: its step and its document are refused.
        with pytest.raises(JobOwnedError, match="taken over") as refused:
            stalled.record_step("j", finished=["a0"], added=[_entry("a1")])
        assert refused.value.pid == second.pid
        paused = {**_document("j"), "status": "paused"}
        with pytest.raises(JobOwnedError):
            stalled.save_job(paused)
        assert [item["id"] for item in taker.pending("j")] == ["a0"]
        assert taker.load("j")["status"] == "running"
        # The new owner writes on, and gives the lease up: still refused.
        taker.record_step("j", finished=["a0"], added=[_entry("a1")])
        taker.release("j", second)
        with pytest.raises(JobOwnedError, match="gone"):
            stalled.record_step("j", finished=["a1"])
        assert [item["id"] for item in taker.pending("j")] == ["a1"]
        # The old owner's release leaves another owner's lease alone.
        taker.claim("j", second)
        stalled.release("j", first)
        lease = taker.lease_of("j")
        assert lease is not None and lease["live"]
        taker.release("j", second)


class Gate(Routine):
    """Waits for ``go`` in its first call, then emits to the sink."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.go = threading.Event(), threading.Event()
        self.define_slot("trigger", handler=self.wait_then_emit)
        self.define_event("item", ["n"])

    def wait_then_emit(self, **_: Any) -> None:
        self.inside.set()
        assert self.go.wait(30)
        self.emit("item", n=1)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_job_whose_lease_was_taken_over_fails_and_leaves_the_store_alone(
    tmp_path: Path, strategy: str
) -> None:
    path = tmp_path / "taken.sqlite"
    with SQLiteCheckpointStore(path) as store:
        flow = Flow("guide-fenced", execution_strategy=strategy, checkpoint_store=store)
        gate, sink = Gate(), Sink()
        flow.add_routine(gate, "gate")
        flow.add_routine(sink, "sink")
        flow.connect("gate", "item", "sink", "input")
        results: list[Any] = []
        runner = threading.Thread(target=lambda: results.append(flow.execute("gate")))
        runner.start()
        assert gate.inside.wait(30)
        job_id = store.list_jobs("guide-fenced")[0]["job_id"]
        with SQLiteCheckpointStore(path, clock=_later) as taker:
            taker.claim(job_id, Owner.new())
            gate.go.set()
            runner.join(30)
            job = results[0]
            assert job.wait(30)
            assert job.status == "failed"
            assert any(
                error["error_type"] == "CheckpointError"
                and "taken over" in error["message"]
                for error in job.errors
            )
            assert sink.started == []  # its child was never stored, so never run
            assert taker.load(job_id)["status"] == "running"
            assert [item["id"] for item in taker.pending(job_id)] == ["a0"]
        flow.shutdown()


class Written(SQLiteCheckpointStore):
    """Counts the writes that carry a job document, by kind of call."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.documents: list[str] = []
        self.steps = 0

    def begin_job(self, job: dict[str, Any], added: Any, owner: Owner) -> bool:
        self.documents.append("start")
        return super().begin_job(job, added, owner)

    def record_step(self, job_id: str, **step: Any) -> None:
        self.steps += 1
        if step.get("job") is not None:
            self.documents.append(str(step["job"]["status"]))
        super().record_step(job_id, **step)

    def log_step(self, job_id: str, **step: Any) -> None:
        self.steps += 1
        if step.get("job") is not None:
            self.documents.append(str(step["job"]["status"]))
        super().log_step(job_id, **step)


class Picky(Sink):
    def take(self, n: int) -> None:
        super().take(n)
        if n == 2:
            raise ValueError("2 is bad")


def _written(tmp_path: Path, interval: float, monkeypatch: Any) -> Written:
    monkeypatch.setattr(checkpoint, "SAVE_INTERVAL", interval)
    # No partial step (emits stream), however slow the machine.
    monkeypatch.setattr(streaming, "FLUSH_AFTER", 1e9)
    store = Written(tmp_path / f"w{interval}.sqlite")
    with store:
        flow = Flow("guide-docs", checkpoint_store=store)
        sink = Picky()
        sink.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
        flow.add_routine(Items(), "items")
        flow.add_routine(sink, "sink")
        flow.connect("items", "item", "sink", "input")
        job = flow.execute("items", {"count": 5})
        assert job.status == "completed"
        flow.shutdown()
    return store


def test_the_document_is_written_at_start_after_an_error_and_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    never = _written(tmp_path, 1e9, monkeypatch)  # the interval never passes
    # Six steps (the entry, five items); the document rides with the one step
    # that follows the error (item 2's own), besides start and end.
    assert never.steps == 1 + 6
    assert never.documents == ["start", "running", "completed"]
    always = _written(tmp_path, 0.0, monkeypatch)  # the interval always passed
    assert always.documents == ["start"] + ["running"] * 6 + ["completed"]


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_step_the_store_cannot_record_fails_the_job(strategy: str) -> None:
    store = FlakyStore()
    store.fails = lambda call, job: call == "record_step" and job is None
    flow = Flow(
        "guide-failing",
        execution_strategy=strategy,
        max_workers=2,
        checkpoint_store=store,
    )
    flow.add_routine(Items(), "items")
    flow.add_routine(Sink(), "sink")
    flow.connect("items", "item", "sink", "input")
    try:
        job = flow.execute("items", {"count": 5})
        assert job.wait(30) and job.status == "failed"
        assert job.cancel_source == "stop-on-error"
        assert "CheckpointError" in [error["error_type"] for error in job.errors]
    finally:
        flow.shutdown(wait=False)
        store.close()


def test_a_flow_closes_a_store_it_opened_and_not_one_passed_in(
    tmp_path: Path,
) -> None:
    opened = Flow("guide-close", checkpoint_store=tmp_path / "opened.sqlite")
    store = opened.checkpoint_store
    assert store is not None
    opened.shutdown()
    with pytest.raises(CheckpointError):
        store.list_jobs()
    with SQLiteCheckpointStore(tmp_path / "mine.sqlite") as mine:
        passed = Flow("guide-close", checkpoint_store=mine)
        passed.shutdown()
        assert mine.list_jobs() == []  # still open: the caller's to close


class NoLeases:
    """A store of one's own without leases; ``list_jobs`` calls meet at a barrier."""

    def __init__(self, path: Path, meet: threading.Barrier) -> None:
        self.inner = SQLiteCheckpointStore(path)
        self.meet = meet

    def save_job(self, job: dict[str, Any]) -> None:
        self.inner.save_job(job)

    def record_step(self, job_id: str, **step: Any) -> None:
        self.inner.record_step(job_id, **step)

    def pending(self, job_id: str) -> list[dict[str, Any]]:
        return self.inner.pending(job_id)

    def load(self, job_id: str) -> dict[str, Any]:
        return self.inner.load(job_id)

    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        found = self.inner.list_jobs(flow_id, status)
        self.meet.wait(30)  # both processes have looked before either starts
        return found

    def delete(self, job_id: str) -> None:
        self.inner.delete(job_id)

    def close(self) -> None:
        self.inner.close()


def test_without_leases_two_starts_of_one_job_id_can_both_run(tmp_path: Path) -> None:
    meet = threading.Barrier(2)
    flows = []
    for _ in range(2):  # two "processes", each with its own store object
        flow = Flow("guide-no-leases", checkpoint_store=NoLeases(tmp_path / "n", meet))
        flow.add_routine(Items(), "items")
        flow.add_routine(Sink(), "sink")
        flow.connect("items", "item", "sink", "input")
        flows.append(flow)
    jobs: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda f=flow: jobs.append(
                f.execute("items", {"count": 1}, job_id="x")
            )
        )
        for flow in flows
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [job.status for job in jobs] == ["completed", "completed"]
    assert [_sink(flow).started for flow in flows] == [[0], [0]]  # ran twice
    for flow in flows:
        flow.shutdown()
        assert flow.checkpoint_store is not None
        flow.checkpoint_store.close()


class Start(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("go", ["item"])

    def go(self) -> None:
        self.emit("go", item="x")


class Side(Routine):
    """Forwards its item; ``crash`` (set by a test) runs first."""

    def __init__(self) -> None:
        super().__init__()
        self.crash: Any = None
        self.define_slot("input", handler=self.forward)
        self.define_event("out", ["item"])

    def forward(self, item: str) -> None:
        if self.crash is not None:
            self.crash()
        self.emit("out", item=item)


class Join(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []
        self.define_slot("input", handler=self.combine, policy="all_sources")

    def combine(self, sources: dict[str, Any]) -> None:
        self.calls.append(sorted(sources))


def _join_flow(store: Any) -> Flow:
    flow = Flow("guide-join", checkpoint_store=store)
    flow.add_routine(Start(), "start")
    flow.add_routine(Join(), "join")
    for side in ("left", "right"):
        flow.add_routine(Side(), side)
        flow.connect("start", "go", side, "input")
        flow.connect(side, "out", "join", "input")
    return flow


def test_a_join_keeps_its_inbox_across_a_crash(tmp_path: Path) -> None:
    # The "Fan-in state" subsection of the guide: a payload waiting in a join's
    # inbox at a crash is stored (held) and rebuilt by the resume.
    live_path, crashed_path = tmp_path / "live.sqlite", tmp_path / "crashed.sqlite"
    with SQLiteCheckpointStore(live_path) as live_store:
        live = _join_flow(live_store)
        right = live.routines["right"]
        assert isinstance(right, Side)
        # "left" ran first (sequential): its payload waits in the join's inbox.
        right.crash = lambda: _copy(live_path, crashed_path)
        job = live.execute("start")
        join = live.routines["join"]
        assert isinstance(join, Join)
        assert job.status == "completed" and join.calls == [["left", "right"]]
        live.shutdown()
    with SQLiteCheckpointStore(crashed_path, clock=_later) as crashed:
        runnable = [
            i["routine_id"]
            for i in crashed.pending(job.job_id)
            if "__routilux_held__" not in i["payload"]
        ]
        assert runnable == ["right"]
        resumer = _join_flow(crashed)
        resumed = resumer.resume(job.job_id)
        resumer.shutdown()
    join = resumer.routines["join"]
    assert isinstance(join, Join)
    # Left's payload waited in the inbox: the resume rebuilt it, so the join
    # fires once with both.
    assert resumed.status == "completed" and join.calls == [["left", "right"]]


class Relay(Routine):
    """Forwards each item; ``crash`` (set by a test) runs first for item 1."""

    def __init__(self) -> None:
        super().__init__()
        self.crash: Any = None
        self.define_slot("input", handler=self.forward)
        self.define_event("out", ["n"])

    def forward(self, n: int) -> None:
        if n == 1 and self.crash is not None:
            self.crash()
        self.emit("out", n=n)


class Gathered(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []
        self.define_slot("input", handler=self.take, merge_strategy="append")

    def take(self, n: Any) -> None:
        self.calls.append(n)


def _append_flow(store: Any) -> Flow:
    flow = Flow("guide-append", checkpoint_store=store)
    flow.add_routine(Items(), "items")
    flow.add_routine(Relay(), "relay")
    flow.add_routine(Gathered(), "gathered")
    flow.connect("items", "item", "relay", "input")
    flow.connect("relay", "out", "gathered", "input")
    return flow


def test_an_append_slot_keeps_its_items_across_a_crash(tmp_path: Path) -> None:
    # The "Fan-in state" subsection: what an append slot gathered is stored
    # (held) and merged again by the resume.
    live_path, crashed_path = tmp_path / "live.sqlite", tmp_path / "crashed.sqlite"
    with SQLiteCheckpointStore(live_path) as live_store:
        live = _append_flow(live_store)
        relay = live.routines["relay"]
        assert isinstance(relay, Relay)
        relay.crash = lambda: _copy(live_path, crashed_path)
        job = live.execute("items", {"count": 2})
        live.shutdown()
    gathered = live.routines["gathered"]
    assert isinstance(gathered, Gathered)
    # The append merge: a first value as it is, then the list of all so far.
    assert job.status == "completed" and gathered.calls == [0, [0, 1]]
    with SQLiteCheckpointStore(crashed_path, clock=_later) as crashed:
        runnable = [
            (i["routine_id"], i["payload"])
            for i in crashed.pending(job.job_id)
            if "__routilux_held__" not in i["payload"]
        ]
        assert runnable == [("relay", {"n": 1}), ("gathered", {"n": 0})]
        resumer = _append_flow(crashed)
        resumed = resumer.resume(job.job_id)
        resumer.shutdown()
    gathered = resumer.routines["gathered"]
    assert isinstance(gathered, Gathered)
    assert resumed.status == "completed"
    # 1 is merged into the rebuilt slot: [0, 1] as without the crash.
    assert gathered.calls == [0, [0, 1]]


# -- the figures ----------------------------------------------------------------


def test_the_guide_shows_figures_only_from_bench_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "docs" / "_ext"))
    table = importlib.import_module("bench_table")
    text = GUIDE.read_text(encoding="utf-8")
    directive = ".. bench-results:: _static/bench.json"
    assert text.count(directive) == 1
    cases = text.split(directive, 1)[1].split(":cases:", 1)[1].splitlines()[0]
    document = json.loads((ROOT / "docs/_static/bench.json").read_text("utf-8"))
    lines = table.render(document, "bench.json", cases=cases.strip())
    shown = [line for line in lines if line.startswith("   * - ")][1:]
    assert shown, "the guide's :cases: select no row of bench.json"
    assert all("checkpoint" in line for line in shown)
    # No figure is typed into the prose: the rendered rows are the only ones.
    prose = text.replace(directive, "")
    for unit in (" us/activation", " s CPU", " µs", "us per", "x no store"):
        assert unit not in prose, unit


def _cited_tests() -> list[tuple[str, str]]:
    """``(file, function)`` of every test the guide's comments name."""
    text = GUIDE.read_text(encoding="utf-8")
    return re.findall(r"(tests/[\w/]+\.py)::(\w+)", text)


def test_every_test_the_guide_cites_exists() -> None:
    cited = _cited_tests()
    assert len(cited) >= 40  # every section names its tests
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not (ROOT / path).exists()
        or not re.search(
            rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M
        )
    ]
    assert missing == []


def test_every_test_of_this_file_is_cited_by_the_guide() -> None:
    mine = re.findall(r"^def (test_\w+)\(", Path(__file__).read_text("utf-8"), re.M)
    cited = {
        name for path, name in _cited_tests() if path.endswith(Path(__file__).name)
    }
    helpers = {
        "test_the_guide_shows_figures_only_from_bench_json",
        "test_every_test_the_guide_cites_exists",
        "test_every_test_of_this_file_is_cited_by_the_guide",
    }
    assert set(mine) - helpers - cited == set()
