"""Issue 9, crash: a resumed job rebuilds its inboxes and merge slots from the store.

A sequential job stopped by Ctrl-C stays in the store as a crash leaves it (the
interrupted activation pending, nothing after it recorded); a new flow then
resumes it by id. Whatever arrived in an inbox or an ``append`` slot before the
stop is there after the resume, each arrival once, and a join that fired before
the stop does not fire again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    AllSources,
    Batch,
    CheckpointError,
    Flow,
    Routine,
    Window,
)
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore
from routilux.runtime.held import CONSUMED, HELD, INBOX, MERGE, marker_of, split_held
from routilux.runtime.ledger import streaming

from .cli_helpers import cli
from .frozen_store import FrozenStore

if TYPE_CHECKING:
    from pathlib import Path

AnyStore = SQLiteCheckpointStore | JsonFileCheckpointStore
COUNT = 10
WAIT = 30.0


@pytest.fixture
def outbox_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No partial steps: emits wait for their source's completion step.

    The tests using it stage steps committed in a given order around a
    source's completion step; with emits streaming (issue 10), a source's
    first emit would be written at once, in a step of its own. Held rows
    written in partial steps are tested in tests/test_issue_10_streaming.py.
    """
    monkeypatch.setattr(streaming, "FLUSH_FIRST", False)
    monkeypatch.setattr(streaming, "FLUSH_AFTER", 1e9)
    monkeypatch.setattr(streaming, "FLUSH_EVERY", 10**9)


@pytest.fixture(params=["sqlite", "json"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    opened: AnyStore = (
        SQLiteCheckpointStore(tmp_path / "c.sqlite")
        if request.param == "sqlite"
        else JsonFileCheckpointStore(tmp_path / "c")
    )
    yield opened
    opened.close()


class Start(Routine):
    """Sends ``go`` n for n in range(count)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("go", ["n"])

    def fire(self, **params: Any) -> None:
        for n in range(params.get("count", COUNT)):
            self.emit("go", n=n)


class Feeder(Routine):
    """Passes ``n`` on as ``value``; Ctrl-C at ``stop_at``; moves a fake clock."""

    def __init__(self, clock: list[float] | None = None) -> None:
        super().__init__()
        self.stop_at: int | None = None
        self.clock = clock
        self.define_slot("input", handler=self.feed)
        self.define_event("out", ["value"])

    def feed(self, n: int) -> None:
        if n == self.stop_at:
            raise KeyboardInterrupt  # what Ctrl-C does to the main thread
        if self.clock is not None:
            self.clock[0] = 4.0 * n
        self.emit("out", value=n)


class Collector(Routine):
    """Records every ``items`` call as the list of values."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.calls: list[list[int]] = []
        self.define_slot("input", handler=self.take, policy=policy)

    def take(self, items: list[dict[str, Any]]) -> None:
        self.calls.append([item["value"] for item in items])


class Pairs:
    """A policy of one's own: calls with every two arrivals (``items``)."""

    name = "pairs"

    def open(self, sources: tuple[str, ...]) -> Any:
        return PairsInbox()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class PairsInbox:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def offer(self, source: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        self.items.append(payload)
        if len(self.items) < 2:
            return []
        items, self.items = self.items, []
        return [{"items": items}]

    def flush(self) -> list[dict[str, Any]]:
        items, self.items = self.items, []
        return [{"items": items}] if items else []

    def waiting(self) -> bool:
        return bool(self.items)


def items_flow(
    store: Any,
    policy: Any,
    clock: list[float] | None = None,
    feeder: Feeder | None = None,
    strategy: str = "sequential",
) -> Flow:
    flow = Flow(
        "held", execution_strategy=strategy, max_workers=2, checkpoint_store=store
    )
    flow.add_routine(Start(), "start")
    flow.add_routine(feeder or Feeder(clock), "feed")
    flow.add_routine(Collector(policy), "collect")
    flow.connect("start", "go", "feed", "input")
    flow.connect("feed", "out", "collect", "input")
    return flow


def stop_and_resume(
    store: Any, make: Any, stop_at: int
) -> tuple[Flow, Flow, str, list[dict[str, Any]]]:
    """Run ``make(store)`` until Ctrl-C at item ``stop_at``; resume in a new flow.

    Returns both flows, the job id and what the store held at the stop.
    """
    first = make(store)
    feeder = first.routines["feed"]
    assert isinstance(feeder, Feeder)
    feeder.stop_at = stop_at
    with pytest.raises(KeyboardInterrupt):
        first.execute("start", job_id="held-job")
    assert first.wait_for_completion(5)
    first.shutdown()
    held = store.pending("held-job")
    second = make(store)
    job = second.resume("held-job")
    assert job.wait(30) and job.status == "completed", job.errors
    assert store.pending("held-job") == []  # the job's end clears held rows
    second.shutdown()
    return first, second, "held-job", held


def calls(flow: Flow) -> list[list[int]]:
    collector = flow.routines["collect"]
    assert isinstance(collector, Collector)
    return collector.calls


def kinds(pending: list[dict[str, Any]]) -> list[str]:
    return [str((marker_of(item) or {}).get("kind", "run")) for item in pending]


def test_a_partial_batch_survives(store: AnyStore) -> None:
    first, second, _, held = stop_and_resume(
        store, lambda s: items_flow(s, Batch(3)), stop_at=5
    )
    assert kinds(held).count(INBOX) == 2  # 3 and 4 waited in the batch
    # As if nothing had stopped it: every item once, in batches of three.
    assert calls(first) + calls(second) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_a_window_rebuilt_keeps_what_arrived(store: AnyStore) -> None:
    clock = [0.0]
    first, second, _, held = stop_and_resume(
        store, lambda s: items_flow(s, Window(10, clock=lambda: clock[0]), clock), 5
    )
    assert kinds(held).count(INBOX) == 2
    made = calls(first) + calls(second)
    assert sorted(v for call in made for v in call) == list(range(COUNT))
    assert made[0] == [0, 1, 2]
    # The rebuilt window opens at the resume (the clock stood at 16): 3 and 4
    # are in it with what arrives before 26.
    assert made[1] == [3, 4, 5, 6]


def test_a_user_policy_is_rebuilt_by_offering_again(store: AnyStore) -> None:
    first, second, _, held = stop_and_resume(
        store, lambda s: items_flow(s, Pairs()), stop_at=3
    )
    assert kinds(held).count(INBOX) == 1  # item 2 waited for its pair
    assert calls(first) + calls(second) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


# -- a join that fired before the stop, and an append slot ---------------------


class Part(Routine):
    """Sends its own ``part`` once, and ``go`` to the rest of the chain."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.send)
        self.define_event("part", ["value"])

    def send(self, n: int) -> None:
        self.emit("part", value=f"{self.get_execution_context().routine_id}-{n}")


class Join(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        self.define_slot(
            "input", handler=self.join, policy=AllSources(keep="all", on_missing="call")
        )

    def join(self, sources: dict[str, Any]) -> None:
        self.calls.append(
            {k: [p["value"] for p in v] for k, v in sorted(sources.items())}
        )


class Gather(Routine):
    """An ``append`` slot: keeps the last list it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.last: list[int] = []
        self.define_slot("input", handler=self.take, merge_strategy="append")

    def take(self, value: Any) -> None:
        self.last = list(value) if isinstance(value, list) else [value]


def join_flow(store: Any) -> Flow:
    flow = Flow("held-join", checkpoint_store=store)
    flow.add_routine(Start(), "start")
    flow.add_routine(Part(), "a")
    flow.add_routine(Part(), "b")
    flow.add_routine(Join(), "join")
    flow.add_routine(Feeder(), "feed")
    flow.add_routine(Gather(), "gather")
    flow.connect("start", "go", "a", "input")
    flow.connect("start", "go", "b", "input")
    flow.connect("a", "part", "join", "input")
    flow.connect("b", "part", "join", "input")
    flow.connect("start", "go", "feed", "input")
    flow.connect("feed", "out", "gather", "input")
    return flow


def test_a_join_fires_once_and_an_append_slot_keeps_every_item(
    store: AnyStore,
) -> None:
    first = join_flow(store)
    feeder = first.routines["feed"]
    assert isinstance(feeder, Feeder)
    feeder.stop_at = 6
    with pytest.raises(KeyboardInterrupt):
        first.execute("start", job_id="j")
    first.shutdown()
    held = store.pending("j")
    second = join_flow(store)
    job = second.resume("j")
    assert job.wait(30) and job.status == "completed", job.errors
    assert store.pending("j") == []
    joins = [
        *first.routines["join"].calls,  # type: ignore[attr-defined]
        *second.routines["join"].calls,  # type: ignore[attr-defined]
    ]
    expected = {
        "a": [f"a-{n}" for n in range(COUNT)],
        "b": [f"b-{n}" for n in range(COUNT)],
    }
    # keep="all": each round fires when both delivered; the rounds hold every
    # part once, whichever side of the stop they were made on.
    merged: dict[str, list[str]] = {"a": [], "b": []}
    for call in joins:
        for key, values in call.items():
            merged[key].extend(values)
    assert merged == expected
    assert kinds(held).count(MERGE) == 6  # gather got 0..5 before the stop
    gather = second.routines["gather"]
    assert isinstance(gather, Gather)
    assert gather.last == list(range(COUNT))


def test_held_rows_are_not_pending_work(store: AnyStore) -> None:
    # A job ending with rows held (a batch remainder) flushes and clears them.
    _, second, job_id, _ = stop_and_resume(
        store, lambda s: items_flow(s, Batch(4)), stop_at=6
    )
    assert calls(second)[-1] == [8, 9]
    assert store.load(job_id)["pending_activations"] == []


def test_a_bad_held_row_refuses_the_resume_and_changes_nothing(
    store: AnyStore,
) -> None:
    first = items_flow(store, Batch(3))
    feeder = first.routines["feed"]
    assert isinstance(feeder, Feeder)
    feeder.stop_at = 5
    with pytest.raises(KeyboardInterrupt):
        first.execute("start", job_id="bad")
    first.shutdown()
    (row, *_) = [i for i in store.pending("bad") if marker_of(i) is not None]
    broken = {**row, "payload": {HELD: {"kind": INBOX, "source": "feed", "params": 3}}}
    store.record_step("bad", added=[broken])  # same id: replaced in place
    before = store.pending("bad")
    second = items_flow(store, Batch(3))
    with pytest.raises(CheckpointError, match=rf"held arrival {row['id']!r}.*collect"):
        second.resume("bad")
    assert store.pending("bad") == before
    assert store.load("bad")["status"] == "running"
    second.shutdown()


def test_split_held_drops_consumed_rows_and_orders_by_arrival() -> None:
    def row(key: str, kind: str, **marker: Any) -> dict[str, Any]:
        payload = {HELD: {"kind": kind, **marker}}
        return {"id": key, "routine_id": "j", "slot": "in", "payload": payload}

    items = [
        {"id": "a1", "routine_id": "j", "slot": "in", "payload": {"n": 1}},
        row("a9", INBOX, source="x", params={"v": 9}),
        row("a4", INBOX, source="y", params={"v": 4}),
        row("a12", CONSUMED, keys=["a3"]),
        row("a3", INBOX, source="z", params={"v": 3}),
    ]
    runnable, held, dropped = split_held(items)
    assert [i["id"] for i in runnable] == ["a1"]
    assert [i["id"] for i in held] == ["a4", "a9"]
    assert sorted(dropped) == ["a12", "a3"]


# -- steps committed out of order ----------------------------------------------


class Frozen(FrozenStore):
    """Calls ``on_step(self, step)`` after each step; it sets ``dead`` to "kill"."""

    def __init__(self, inner: Any, on_step: Any) -> None:
        super().__init__(inner)
        self.on_step = on_step

    def wrote(self, step: dict[str, Any]) -> None:
        self.on_step(self, step)


class Ordered(Routine):
    """``a`` emits first and returns only once ``b``'s step is in the store."""

    def __init__(self, events: dict[str, threading.Event]) -> None:
        super().__init__()
        self.events = events
        self.define_slot("input", handler=self.send)
        self.define_event("part", ["value"])

    def send(self, n: int) -> None:
        me = self.get_execution_context().routine_id
        if me == "b":
            assert self.events["a_emitted"].wait(WAIT)
        self.emit("part", value=me)
        if me == "a":
            self.events["a_emitted"].set()
            assert self.events["b_stored"].wait(WAIT)


class SlowJoin(Join):
    """A join whose call runs until the 'process' is killed."""

    def __init__(self, killed: threading.Event) -> None:
        super().__init__()
        self.killed = killed

    def join(self, sources: dict[str, Any]) -> None:
        assert self.killed.wait(WAIT)
        super().join(sources)


def ordered_flow(store: Any, events: dict[str, threading.Event]) -> Flow:
    flow = Flow(
        "held-order",
        execution_strategy="concurrent",
        max_workers=4,
        checkpoint_store=store,
    )
    flow.add_routine(Start(), "start")
    flow.add_routine(Ordered(events), "a")
    flow.add_routine(Ordered(events), "b")
    flow.add_routine(SlowJoin(events["killed"]), "join")
    flow.connect("start", "go", "a", "input")
    flow.connect("start", "go", "b", "input")
    flow.connect("a", "part", "join", "input")
    flow.connect("b", "part", "join", "input")
    return flow


@pytest.mark.usefixtures("outbox_only")
@pytest.mark.parametrize("repeat", range(3))
def test_a_join_fired_before_its_senders_step_is_stored_fires_once(
    store: AnyStore, repeat: int
) -> None:
    # b's arrival fires the join while a's arrival waits for a's step: b's
    # step (the join's call) is committed first, a's (its held row) after.
    events = {name: threading.Event() for name in ("a_emitted", "b_stored", "killed")}

    def on_step(frozen: Frozen, step: dict[str, Any]) -> None:
        added = step.get("added") or ()
        if any(row["routine_id"] == "join" and marker_of(row) is None for row in added):
            events["b_stored"].set()
        elif any((marker_of(row) or {}).get("kind") == INBOX for row in added):
            frozen.dead = True  # killed right after a's step
            events["killed"].set()

    frozen = Frozen(store, on_step)
    first = ordered_flow(frozen, events)
    job = first.execute("start", job_id="o", entry_params={"count": 1})
    assert job.wait(WAIT)
    first.shutdown()
    held = store.pending("o")
    assert sorted(kinds(held)) == [CONSUMED, INBOX, "run"]
    second = ordered_flow(store, events)  # killed is set: the join runs
    resumed = second.resume("o")
    assert resumed.wait(WAIT) and resumed.status == "completed", resumed.errors
    join = second.routines["join"]
    assert isinstance(join, Join)
    assert join.calls == [{"a": ["a"], "b": ["b"]}]  # once, and no flush of a
    assert store.pending("o") == []
    second.shutdown()


class Pausing(Feeder):
    """Pauses its job at item ``pause_at`` (after passing it on)."""

    pause_at = 4

    def feed(self, n: int) -> None:
        super().feed(n)
        if n == self.pause_at:
            context = self.get_execution_context()
            context.flow.pause(context.job_state, reason="test")


def test_a_paused_job_resumed_by_id_elsewhere_keeps_its_inbox(
    store: AnyStore,
) -> None:
    # The held rows stay in the store while the job is paused: a new flow (a
    # new process) resuming it by id rebuilds the batch. The job's
    # pending_tasks list only activations: held arrivals are not work to run.
    first = items_flow(store, Batch(3), feeder=Pausing())
    job = first.execute("start", job_id="p")
    assert job.wait(WAIT) and job.status == "paused"
    assert all(marker_of(task) is None for task in job.pending_tasks)
    first.shutdown()
    second = items_flow(store, Batch(3))
    resumed = second.resume("p")
    assert resumed.wait(WAIT) and resumed.status == "completed", resumed.errors
    assert calls(first) + calls(second) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert store.pending("p") == []


class Resetting(Feeder):
    """Resets the ``gather`` slot (its kept data) before passing item 3 on."""

    def feed(self, n: int) -> None:
        if n == 3:
            flow = self.get_execution_context().flow
            slot = flow.routines["gather"].get_slot("input")
            assert slot is not None
            slot.reset()
        super().feed(n)


def gather_flow(store: Any, feeder: Feeder) -> Flow:
    flow = Flow("held-gather", checkpoint_store=store)
    flow.add_routine(Start(), "start")
    flow.add_routine(feeder, "feed")
    flow.add_routine(Gather(), "gather")
    flow.connect("start", "go", "feed", "input")
    flow.connect("feed", "out", "gather", "input")
    return flow


def test_a_reset_slot_is_rebuilt_from_the_reset_on(store: AnyStore) -> None:
    first = gather_flow(store, Resetting())
    feeder = first.routines["feed"]
    assert isinstance(feeder, Feeder)
    feeder.stop_at = 6
    with pytest.raises(KeyboardInterrupt):
        first.execute("start", job_id="r")
    first.shutdown()
    merged = [(marker_of(i) or {}).get("params") for i in store.pending("r")]
    assert [p["value"] for p in merged if p is not None] == [3, 4, 5]
    second = gather_flow(store, Resetting())
    job = second.resume("r")
    assert job.wait(WAIT) and job.status == "completed", job.errors
    gather = second.routines["gather"]
    assert isinstance(gather, Gather)
    assert gather.last == list(range(3, COUNT))


def test_the_command_line_counts_held_rows_apart(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "jobs.sqlite"
    with SQLiteCheckpointStore(path) as opened:
        first = items_flow(opened, Batch(3))
        feeder = first.routines["feed"]
        assert isinstance(feeder, Feeder)
        feeder.stop_at = 5
        with pytest.raises(KeyboardInterrupt):
            first.execute("start", job_id="cli")
        first.shutdown()
        runnable = len(split_held(opened.pending("cli"))[0])
    got = cli(capsys, "show", "cli", "--store", str(path))
    assert got.code == 0, got.err
    assert f"pending activations: {runnable} (and 2 held arrivals)" in got.out


@pytest.mark.usefixtures("outbox_only")
@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_job_killed_with_only_held_rows_left_flushes_them(
    store: AnyStore, strategy: str
) -> None:
    # Killed after the last item's step: nothing runnable is pending, only the
    # batch's arrivals; the resumed job flushes them in one call and ends.
    def on_step(frozen: Frozen, step: dict[str, Any]) -> None:
        for row in step.get("added") or ():
            marker = marker_of(row) or {}
            if marker.get("kind") == INBOX and marker["params"]["value"] == 9:
                frozen.dead = True

    first = items_flow(Frozen(store, on_step), Batch(20), strategy=strategy)
    job = first.execute("start", job_id="k")
    assert job.wait(WAIT) and job.status == "completed"
    first.shutdown()
    assert kinds(store.pending("k")) == [INBOX] * COUNT
    second = items_flow(store, Batch(20), strategy=strategy)
    job = second.resume("k")
    assert job.wait(WAIT) and job.status == "completed", job.errors
    assert calls(second) == [list(range(COUNT))]
    assert store.pending("k") == []
    second.shutdown()


class Burst(Routine):
    """Emits ``value`` 0..COUNT-1 from one activation."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, **_: Any) -> None:
        for n in range(COUNT):
            self.emit("out", value=n)


@pytest.mark.usefixtures("outbox_only")
def test_arrivals_a_call_consumed_within_their_senders_step_are_not_stored(
    store: AnyStore,
) -> None:
    # One activation sends every item: the batches it fills go in its own step
    # as calls, their arrivals never as held rows; only the remainder is held.
    def on_step(frozen: Frozen, step: dict[str, Any]) -> None:
        if any(row["routine_id"] == "collect" for row in step.get("added") or ()):
            frozen.dead = True

    def burst_flow(at: Any) -> Flow:
        flow = Flow("held-burst", checkpoint_store=at)
        flow.add_routine(Burst(), "burst")
        flow.add_routine(Collector(Batch(3)), "collect")
        flow.connect("burst", "out", "collect", "input")
        return flow

    first = burst_flow(Frozen(store, on_step))
    assert first.execute("burst", job_id="b").status == "completed"
    held = store.pending("b")
    assert kinds(held) == ["run", "run", "run", INBOX]
    assert held[3]["payload"][HELD]["params"] == {"value": 9}
    second = burst_flow(store)
    job = second.resume("b")
    assert job.wait(WAIT) and job.status == "completed", job.errors
    assert calls(second) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert store.pending("b") == []
