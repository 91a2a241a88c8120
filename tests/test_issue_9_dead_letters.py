"""Issue 9, item 5: dead letters kept by the ledger, listed, and replayed."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from routilux import (
    CheckpointError,
    CircuitOpenError,
    ConfigurationError,
    DeadLetter,
    ErrorHandler,
    Flow,
    ForeignJobError,
    JobStateError,
    RoutiluxError,
    Routine,
    StrategyShutdownError,
    UnknownRoutineError,
    UnknownSlotError,
)
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore
from routilux.runtime.dead_letters import DeadLetterBox, causes_of

from .dead_letter_flow import BAD, FLOW_ID, ITEMS, build

ROOT = Path(__file__).resolve().parents[1]
WAIT = 30.0


def run_job(flow: Flow) -> Any:
    job = flow.execute("source")
    assert job.wait(WAIT)
    return job


def payloads(letters: list[DeadLetter]) -> list[int]:
    return sorted(letter.payload["n"] for letter in letters)


def open_store(kind: str, tmp_path: Path) -> Any:
    if kind == "sqlite":
        return SQLiteCheckpointStore(tmp_path / "jobs.db")
    return JsonFileCheckpointStore(tmp_path / "jobs")


# -- the acceptance test ---------------------------------------------------------


@pytest.mark.parametrize("store_kind", [None, "sqlite", "jsonfile"])
def test_issue_9_retry_then_skip_leaves_dead_letters_that_replay(
    strategy: str, store_kind: str | None, tmp_path: Path
) -> None:
    store = open_store(store_kind, tmp_path) if store_kind else None
    flow, worker = build(strategy, store)
    with flow:
        job = run_job(flow)
        assert job.status == "completed"
        assert sorted(worker.delivered) == sorted(set(range(ITEMS)) - BAD)
        assert worker.calls == ITEMS + 2 * len(BAD)
        letters = flow.dead_letters()
        assert payloads(letters) == sorted(BAD)
        for letter in letters:
            assert (letter.flow_id, letter.job_id) == (FLOW_ID, job.job_id)
            assert (letter.routine_id, letter.slot) == ("worker", "input")
            assert letter.attempts == 3
            assert letter.error_type == "ValueError"
            assert letter.error == f"item {letter.payload['n']} is bad"
            assert letter.causes == (f"KeyError: 'no record {letter.payload['n']}'",)
            assert not letter.replayed
        assert len({letter.letter_id for letter in letters}) == len(BAD)
        assert flow.dead_letters(job_id=job.job_id) == letters
        assert flow.dead_letters(job_id="another job") == []
        assert flow.get_stats()["dead_letters"] == len(BAD)

        worker.fix()
        replay = flow.replay(letters)
        assert replay.wait(WAIT)
        assert replay.status == "completed"
        assert replay.job_id != job.job_id
        assert sorted(worker.delivered) == list(range(ITEMS))
        history = replay.execution_history
        assert history[0].event_name == "replay"
        assert history[0].data == {"dead_letters": [x.letter_id for x in letters]}
        assert flow.dead_letters() == []
        replayed = flow.dead_letters(include_replayed=True)
        assert [x.letter_id for x in replayed] == [x.letter_id for x in letters]
        assert {x.replayed_by for x in replayed} == {replay.job_id}
        assert flow.get_stats()["dead_letters"] == 0
    if store is not None:
        store.close()


@pytest.mark.parametrize("store_kind", ["sqlite", "jsonfile"])
def test_issue_9_dead_letters_outlive_the_flow_that_made_them(
    strategy: str, store_kind: str, tmp_path: Path
) -> None:
    with open_store(store_kind, tmp_path) as store:
        flow, _ = build(strategy, store)
        with flow:
            run_job(flow)
    with open_store(store_kind, tmp_path) as store:
        again, worker = build(strategy, store)
        with again:
            letters = again.dead_letters()
            assert payloads(letters) == sorted(BAD)
            worker.fix()
            replay = again.replay(letters)
            assert replay.wait(WAIT) and replay.status == "completed"
            assert sorted(worker.delivered) == sorted(BAD)
    with open_store(store_kind, tmp_path) as store:
        third, _ = build(strategy, store)
        with third:
            assert third.dead_letters() == []
            kept = third.dead_letters(include_replayed=True)
            assert [x.replayed_by for x in kept] == [replay.job_id] * len(BAD)
        other, _ = build(strategy, store, flow_id="another flow")
        with other:
            assert other.dead_letters(include_replayed=True) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_issue_9_dead_letters_survive_a_process_restart(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = ROOT / "tests" / "dead_letter_flow.py"
    done = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    job_id, status = done.stdout.split()
    assert status == "completed"
    flow, worker = build("concurrent", path)
    with flow:
        letters = flow.dead_letters()
        assert payloads(letters) == sorted(BAD)
        assert {letter.job_id for letter in letters} == {job_id}
        assert {letter.attempts for letter in letters} == {3}
        worker.fix()
        replay = flow.replay(letters)
        assert replay.wait(WAIT) and replay.status == "completed"
        assert sorted(worker.delivered) == sorted(BAD)
    with SQLiteCheckpointStore(path, read_only=True) as store:
        kept = store.dead_letters(FLOW_ID, include_replayed=True)
        assert [item["replayed_by"] for item in kept] == [replay.job_id] * len(BAD)
        assert store.dead_letters(FLOW_ID) == []


# -- what makes a dead letter, and what does not -------------------------------------


class Entry(Routine):
    """The entry: emits ``n`` for each of ``count`` items."""

    def __init__(self, count: int = 1) -> None:
        super().__init__()
        self.set_config(count=count)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])

    def fire(self, **params: Any) -> None:
        for n in range(self.get_config("count")):
            self.emit("item", n=n)


class Breaks(Routine):
    """Raises ValueError for every item."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.work)

    def work(self, n: int) -> None:
        raise ValueError(f"item {n}")


def chain(target: Routine, strategy: str, count: int = 1, **options: Any) -> Flow:
    flow = Flow(execution_strategy=strategy, **options)
    flow.add_routine(Entry(count), "source")
    flow.add_routine(target, "target")
    flow.connect("source", "item", "target", "input")
    return flow


@pytest.mark.parametrize(
    ("handler", "status"),
    [
        (None, "failed"),
        (ErrorHandler("stop"), "failed"),
        (ErrorHandler("continue"), "completed"),
        (ErrorHandler("skip"), "completed"),
        (ErrorHandler("retry", max_retries=1, retry_delay=0), "failed"),
        (ErrorHandler("retry", retryable_exceptions=(KeyError,)), "failed"),
    ],
)
def test_issue_9_every_policy_keeps_the_failed_activation(
    strategy: str, handler: ErrorHandler | None, status: str
) -> None:
    target = Breaks()
    target.set_error_handler(handler)
    with chain(target, strategy) as flow:
        job = run_job(flow)
        assert job.status == status
        letters = flow.dead_letters()
    assert [(x.routine_id, x.payload, x.error) for x in letters] == [
        ("target", {"n": 0}, "item 0")
    ]
    assert letters[0].attempts == (2 if handler and handler.max_retries == 1 else 1)


def test_issue_9_activations_a_halt_drops_are_not_dead_letters(strategy: str) -> None:
    target = Breaks()
    with chain(target, strategy, count=20, max_workers=1) as flow:
        job = run_job(flow)
        assert job.status == "failed"
        letters = flow.dead_letters()
    # One worker: the first failure halts the job before the others start.
    assert [x.payload for x in letters] == [{"n": 0}]
    dropped = [r for r in job.execution_history if r.event_name == "dropped"]
    assert dropped and dropped[0].data["count"] == 19


class Patient(Routine):
    """Fails; its retry wait cancels the job, which cuts the retries short."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.work)

    def work(self, n: int) -> None:
        raise ValueError(f"item {n}")

    def cancel_own_job(self, seconds: float) -> None:
        context = self.get_execution_context()
        assert context is not None
        context.flow.cancel(context.job_state, reason="enough")


def test_issue_9_a_retry_cut_short_by_a_halt_is_a_dead_letter(strategy: str) -> None:
    target = Patient()
    target.set_error_handler(
        ErrorHandler("retry", max_retries=5, sleep=target.cancel_own_job)
    )
    with chain(target, strategy) as flow:
        job = run_job(flow)
        assert job.status == "cancelled"
        letters = flow.dead_letters()
    assert [(x.payload, x.attempts) for x in letters] == [({"n": 0}, 1)]


class Slow(Routine):
    """An async handler that would take far longer than its timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.work)

    async def work(self, n: int) -> None:
        await asyncio.sleep(WAIT)


def test_issue_9_a_routine_timeout_is_a_dead_letter(strategy: str) -> None:
    target = Slow()
    target.set_timeout(0.05)
    target.set_error_handler(ErrorHandler("continue"))
    with chain(target, strategy) as flow:
        job = run_job(flow)
        assert job.status == "completed"
        letters = flow.dead_letters()
    assert [(x.error_type, x.payload) for x in letters] == [
        ("RoutineTimeoutError", {"n": 0})
    ]


def test_issue_9_an_open_circuit_is_a_dead_letter(strategy: str) -> None:
    target = Breaks()
    target.set_circuit_breaker(failure_threshold=1, clock=lambda: 0.0)
    target.set_error_handler(ErrorHandler("skip"))
    with chain(target, strategy, count=3, max_workers=1) as flow:
        job = run_job(flow)
        assert job.status == "completed"
        letters = flow.dead_letters()
    assert sorted(x.error_type for x in letters) == [
        CircuitOpenError.__name__,
        CircuitOpenError.__name__,
        "ValueError",
    ]


class Appends(Routine):
    """An append slot that fails on the second arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.work, merge_strategy="append")

    def work(self, n: Any) -> None:
        if isinstance(n, list):
            raise ValueError("two arrived")


def test_issue_9_a_letter_keeps_append_views_as_lists() -> None:
    with chain(Appends(), "sequential", count=2) as flow:
        flow.set_error_handler(ErrorHandler("continue"))
        run_job(flow)
        (letter,) = flow.dead_letters()
    assert letter.payload == {"n": [0, 1]}
    assert type(letter.payload["n"]) is list


def test_issue_9_a_letter_keeps_the_error_chain() -> None:
    class Chained(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.work)

        def work(self, n: int) -> None:
            try:
                try:
                    raise OSError("disk gone")
                except OSError:
                    raise KeyError("row") from None
            except KeyError:
                raise RuntimeError("cannot load") from None

    with chain(Chained(), "sequential") as flow:
        run_job(flow)
        (letter,) = flow.dead_letters()
    assert letter.causes == ()  # "from None" hides the context
    outer = ValueError("outer")
    middle = KeyError("middle")
    middle.__context__ = OSError("inner")
    outer.__cause__ = middle
    assert causes_of(outer) == ("KeyError: 'middle'", "OSError: inner")
    looped = ValueError("a")
    looped.__cause__ = looped  # a cycle ends the chain
    assert causes_of(looped) == ()
    long = ValueError("top")
    link = long
    for n in range(20):
        link.__cause__ = ValueError(str(n))
        link = link.__cause__
    assert len(causes_of(long)) == 8


def test_issue_9_memory_keeps_the_newest_letters() -> None:
    box = DeadLetterBox(limit=3)
    letters = [
        DeadLetter(f"l{i}", "f", "j", "r", "s", {}, "E", "e", (), 1, float(i))
        for i in range(5)
    ]
    for letter in letters:
        box.keep(letter, None)
    assert box.listed("f", None, None, False) == letters[2:]
    assert box.evicted == 2
    box.mark_replayed(letters[3:4], "again", [], None)
    assert [x.letter_id for x in box.listed("f", None, None, False)] == ["l2", "l4"]
    assert box.waiting() == 2


class CalledEntry(Routine):
    """A 0.9 entry: ``__call__`` and no ``trigger`` slot; fails until fixed."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **params: Any) -> None:
        if self.broken:
            raise ValueError("not yet")
        self.calls.append(params)


def test_issue_9_a_called_entry_replays(strategy: str) -> None:
    entry = CalledEntry()
    entry.set_error_handler(ErrorHandler("continue"))
    with Flow(execution_strategy=strategy) as flow:
        flow.add_routine(entry, "entry")
        job = flow.execute("entry", {"x": 1})
        assert job.wait(WAIT)
        (letter,) = flow.dead_letters()
        assert (letter.slot, letter.payload) == ("trigger", {"x": 1})
        entry.broken = False
        replay = flow.replay([letter])
        assert replay.wait(WAIT) and replay.status == "completed"
    assert entry.calls == [{"x": 1}]


# -- a store that fails ---------------------------------------------------------------


class RefusingStore(SQLiteCheckpointStore):
    """Keeps jobs, but cannot keep dead letters (or mark them)."""

    refuse_letters = True

    def add_dead_letter(self, letter: dict[str, Any]) -> None:
        if self.refuse_letters:
            raise OSError("disk full")
        super().add_dead_letter(letter)

    def mark_dead_letters_replayed(self, letter_ids: Any, job_id: str) -> None:
        raise CheckpointError("the store refuses to mark")


def test_issue_9_a_store_that_cannot_keep_a_letter_fails_the_job(
    strategy: str,
) -> None:
    store = RefusingStore(":memory:")
    flow, _ = build(strategy, store)
    with flow, store:
        job = run_job(flow)
        assert flow.wait_for_completion(WAIT)
        assert job.status == "failed"
        assert job.cancel_source == "stop-on-error"
        stored = [e for e in job.errors if e["error_type"] == "CheckpointError"]
        assert (
            stored and "could not be stored: OSError: disk full" in stored[0]["message"]
        )
        assert stored[0]["routine_id"] == "worker"
        assert flow.dead_letters() == []  # the store lists what it kept: nothing
        assert flow.get_stats()["dead_letters"] >= 1  # memory kept it


def test_issue_9_a_store_that_cannot_mark_letters_fails_the_replay(
    strategy: str,
) -> None:
    store = RefusingStore(":memory:")
    store.refuse_letters = False
    flow, worker = build(strategy, store)
    with flow, store:
        run_job(flow)
        letters = flow.dead_letters()
        assert len(letters) == len(BAD)
        worker.fix()
        with pytest.raises(CheckpointError, match="refuses to mark"):
            flow.replay(letters)
        assert flow.wait_for_completion(WAIT)
        assert flow.dead_letters() == letters  # nothing was marked
        assert not set(worker.delivered) & BAD  # the replay never ran
        (failed,) = [s for s in store.list_jobs(FLOW_ID) if s["status"] == "failed"]
        assert store.pending(failed["job_id"]) == []  # nothing left to resume


# -- bad input -------------------------------------------------------------------------


@pytest.fixture
def failed_flow() -> Any:
    flow, worker = build("sequential")
    with flow:
        run_job(flow)
        yield flow, worker, flow.dead_letters()


@pytest.mark.parametrize(
    ("letters", "words"),
    [
        ("abc", "expects a list of DeadLetters"),
        ({"letter_id": "x"}, "expects a list of DeadLetters"),
        (42, "expects a list of DeadLetters"),
        ([], "nothing to replay"),
        ([{"letter_id": "x"}], r"letters\[0\] is a dict, not a DeadLetter"),
    ],
)
def test_issue_9_replay_refuses_what_is_not_dead_letters(
    failed_flow: Any, letters: Any, words: str
) -> None:
    flow, _, _ = failed_flow
    with pytest.raises(ConfigurationError, match=words) as info:
        flow.replay(letters)
    assert isinstance(info.value, RoutiluxError)
    assert flow.get_stats()["active_jobs"] == 0


def test_issue_9_replay_refuses_one_letter_alone_and_twice(failed_flow: Any) -> None:
    flow, _, letters = failed_flow
    with pytest.raises(ConfigurationError, match="expects a list of DeadLetters"):
        flow.replay(letters[0])
    with pytest.raises(ConfigurationError, match="given twice"):
        flow.replay([letters[0], letters[0]])
    with pytest.raises(ConfigurationError, match=r"letters\[1\] is a str"):
        flow.replay([letters[0], "nope"])


def test_issue_9_replay_names_an_unknown_routine_or_slot(failed_flow: Any) -> None:
    flow, worker, letters = failed_flow
    gone = dataclasses.replace(letters[0], routine_id="gone")
    with pytest.raises(UnknownRoutineError, match="routine 'gone'"):
        flow.replay([gone])
    no_slot = dataclasses.replace(letters[0], slot="nowhere")
    with pytest.raises(UnknownSlotError, match="slot 'nowhere' of routine 'worker'"):
        flow.replay([letters[1], no_slot])
    assert flow.dead_letters() == letters  # nothing replayed, nothing marked
    assert worker.calls == ITEMS + 2 * len(BAD)


def test_issue_9_replay_refuses_a_letter_of_another_flow(failed_flow: Any) -> None:
    flow, _, letters = failed_flow
    foreign = dataclasses.replace(letters[0], flow_id="elsewhere")
    with pytest.raises(ForeignJobError, match="belongs to flow 'elsewhere'"):
        flow.replay([foreign])


def test_issue_9_replay_refuses_letters_already_replayed(failed_flow: Any) -> None:
    flow, worker, letters = failed_flow
    worker.fix()
    first = flow.replay(letters[:2])
    assert first.status == "completed"
    # The letters the caller still holds were listed before the replay.
    with pytest.raises(
        JobStateError, match=f"already replayed by job '{first.job_id}'"
    ):
        flow.replay(letters)
    replayed = flow.dead_letters(include_replayed=True)[0]
    with pytest.raises(JobStateError, match="already replayed"):
        flow.replay([replayed])
    assert len(flow.dead_letters()) == len(BAD) - 2


def test_issue_9_dead_letters_checks_its_arguments(failed_flow: Any) -> None:
    flow, _, _ = failed_flow
    with pytest.raises(ConfigurationError, match="job_id"):
        flow.dead_letters(job_id=3)
    with pytest.raises(ConfigurationError, match="include_replayed"):
        flow.dead_letters(include_replayed="yes")


def test_issue_9_replay_after_shutdown_is_refused() -> None:
    flow, _ = build("sequential")
    run_job(flow)
    letters = flow.dead_letters()
    flow.shutdown()
    with pytest.raises(StrategyShutdownError, match="cannot replay"):
        flow.replay(letters)


def test_issue_9_a_concurrent_replay_returns_at_once() -> None:
    release = threading.Event()
    flow, worker = build("concurrent")
    with flow:
        run_job(flow)
        worker.fix()
        slot, work = worker.get_slot("input"), worker.work
        assert slot is not None
        slot.handler = lambda n: release.wait(WAIT) and work(n)
        replay = flow.replay(flow.dead_letters())
        assert replay.status == "running"
        release.set()
        assert replay.wait(WAIT)
        assert replay.status == "completed"
        assert sorted(worker.delivered) == list(range(ITEMS))
