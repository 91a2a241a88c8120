"""Issue 8: ``append`` runs in linear time and memory.

Every arrival used to hand its handler a copy of the whole list so far (O(N²)).
Handlers now get an :class:`AppendView`: O(1) to make, over the slot's one list,
showing exactly the values up to its own arrival. No timing is asserted: the tests
check that every arrival is seen once at the right length and that every view
shares one list (no per-arrival copy).
"""

from __future__ import annotations

import pickle
import threading
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from routilux import AppendView, Flow, JobState, Routine, Slot
from routilux.persistence import SQLiteCheckpointStore
from routilux.serialization import json_copy

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(120)


class Emitter(Routine):
    """Emits ``count`` values ``tag-0``... (or 0, 1... without a tag) when triggered."""

    def __init__(self, count: int, tag: str | None = None) -> None:
        super().__init__()
        self.count = count
        self.tag = tag
        self.define_slot("trigger", handler=self.fire)
        self.define_slot("go", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, **_: Any) -> None:
        for i in range(self.count):
            self.emit("output", value=i if self.tag is None else f"{self.tag}-{i}")


class Starter(Routine):
    """Triggers every connected emitter at once."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("go", [])

    def start(self, **_: Any) -> None:
        self.emit("go")


class ViewSink(Routine):
    """Keeps what every call was handed (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[Any] = []
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.take, merge_strategy="append")

    def take(self, value: Any) -> None:
        with self._guard:
            self.handed.append(value)


def _storage(view: AppendView) -> int:
    # The list a view reads: one for the whole job means no arrival copied it.
    return id(view._items)


def test_issue_8_append_100000_arrivals_sequential_each_seen_once() -> None:
    n = 100_000
    flow = Flow(execution_strategy="sequential")
    sink = ViewSink()
    flow.add_routine(Emitter(n), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "sink", "input")
    with flow:
        job = flow.execute("src")
    assert job.status == "completed"
    handed = sink.handed
    assert len(handed) == n
    assert handed[0] == 0  # the first value of a key is kept as it came
    views = handed[1:]
    assert all(type(v) is AppendView for v in views)
    # Sequential runs in arrival order: call k saw exactly k + 1 values, ending in k.
    assert [len(v) for v in views] == list(range(2, n + 1))
    assert all(v[-1] == k + 1 for k, v in enumerate(views))
    assert len({_storage(v) for v in views}) == 1  # one list, never copied
    # Later arrivals never changed what an earlier call was handed.
    for k in (1, 2, 500, n // 2, n - 1):
        assert handed[k] == list(range(k + 1))


def test_issue_8_append_concurrent_one_source_exact_counts() -> None:
    n = 20_000
    flow = Flow(execution_strategy="concurrent", max_workers=4)
    sink = ViewSink()
    flow.add_routine(Emitter(n), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "sink", "input")
    with flow:
        job = flow.execute("src")
        assert job.wait(60)
    assert job.status == "completed"
    handed = sink.handed
    assert len(handed) == n
    scalars = [v for v in handed if not isinstance(v, AppendView)]
    views = [v for v in handed if isinstance(v, AppendView)]
    assert scalars == [0]
    # Calls may finish in any order, but arrival k was handed k + 1 values once.
    assert sorted(len(v) for v in views) == list(range(2, n + 1))
    assert all(v[-1] == len(v) - 1 for v in views)
    assert len({_storage(v) for v in views}) == 1
    longest = max(views, key=len)
    assert longest == list(range(n))


def test_issue_8_append_concurrent_four_sources_one_job_exact_counts() -> None:
    sources, per_source = 4, 5_000
    total = sources * per_source
    flow = Flow(execution_strategy="concurrent", max_workers=4)
    sink = ViewSink()
    flow.add_routine(Starter(), "start")
    flow.add_routine(sink, "sink")
    for s in range(sources):
        flow.add_routine(Emitter(per_source, tag=f"s{s}"), f"s{s}")
        flow.connect("start", "go", f"s{s}", "go")
        flow.connect(f"s{s}", "output", "sink", "input")
    with flow:
        job = flow.execute("start")
        assert job.wait(60)
    assert job.status == "completed"
    handed = sink.handed
    assert len(handed) == total
    views = [v for v in handed if isinstance(v, AppendView)]
    assert len(views) == total - 1
    assert sorted(len(v) for v in views) == list(range(2, total + 1))
    longest = max(views, key=len)
    expected = {f"s{s}-{i}" for s in range(sources) for i in range(per_source)}
    assert len(longest) == total and set(longest) == expected  # none lost or repeated
    # Each view is a prefix of the one list: its last value is that arrival's.
    assert all(v[-1] == longest[len(v) - 1] for v in views)
    assert len({_storage(v) for v in views}) == 1


def test_append_view_reads_like_a_list() -> None:
    items = [1, 2, 3]
    view = AppendView(items, 2)
    items.append(4)  # what arrives later stays out of an earlier view
    as_list = [1, 2]
    assert view == as_list and as_list == view and view != [1, 2, 3]
    assert view == AppendView([1, 2, 9], 2)
    assert view != (1, 2)  # like a list, never equal to a tuple
    assert repr(view) == repr([1, 2]) and str(view) == "[1, 2]"
    assert len(view) == 2 and list(view) == [1, 2] and list(reversed(view)) == [2, 1]
    assert view[0] == 1 and view[-1] == 2 and view[-2] == 1
    assert view[:] == [1, 2] and view[::-1] == [2, 1] and view[5:] == []
    assert 2 in view and 3 not in view
    for bad in (2, -3):
        with pytest.raises(IndexError):
            view[bad]
    with pytest.raises(TypeError):
        hash(view)
    with pytest.raises(AttributeError):
        view.append(5)  # type: ignore[attr-defined]
    copied = pickle.loads(pickle.dumps(view))
    assert copied == [1, 2] and type(copied) is AppendView


def test_direct_delivery_hands_copies_as_0_9_did() -> None:
    seen: list[Any] = []
    slot = Slot("s", handler=lambda a: seen.append(a), merge_strategy="append")
    for value in range(4):
        slot.receive({"a": value})
    assert seen == [0, [0, 1], [0, 1, 2], [0, 1, 2, 3]]
    assert type(seen[1]) is list
    seen[1].append(99)  # a copy: the slot's data is untouched
    assert slot.data == {"a": [0, 1, 2, 3]}


def test_views_pass_for_lists_in_0_9_handlers() -> None:
    view = AppendView([1, 2, 3], 2)
    assert isinstance(view, list)  # how 0.9 handlers tell a first scalar apart
    assert type(view) is AppendView
    assert ", ".join(map(str, view)) == "1, 2"
    assert sum(view) == 3


def test_views_are_written_as_json_lists() -> None:
    view = AppendView([1, 2, 3], 2)
    state = JobState("f")
    state.pending_tasks = [{"routine_id": "r", "slot": "s", "payload": {"v": view}}]
    document = state.serialize()
    assert document["pending_tasks"][0]["payload"] == {"v": [1, 2]}
    assert json_copy({"v": view}, "") == {"v": [1, 2]}
    restored = JobState.deserialize(orjson.loads(orjson.dumps(document)))
    assert restored.pending_tasks[0]["payload"] == {"v": [1, 2]}


class Relay(Routine):
    """Passes what its append slot hands on, view and all."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.relay, merge_strategy="append")
        self.define_event("output", ["items"])

    def relay(self, value: Any) -> None:
        self.emit("output", items=value)


class StoreReader(Routine):
    """On its first call, reads the pending sink activations back from the store."""

    def __init__(self, store: SQLiteCheckpointStore) -> None:
        super().__init__()
        self.store = store
        self.stored: list[Any] = []
        self.define_slot("input", handler=self.read)

    def read(self, items: Any) -> None:
        context = self.get_execution_context()
        assert context is not None
        if self.stored:
            return
        pending = self.store.pending(context.job_state.job_id)
        self.stored.extend(
            p["payload"]["items"] for p in pending if p["routine_id"] == "sink"
        )


def test_views_in_checkpoints_and_history_are_json_lists(tmp_path: Path) -> None:
    with SQLiteCheckpointStore(tmp_path / "jobs.db") as store:
        flow = Flow(execution_strategy="sequential", checkpoint_store=store)
        sink = StoreReader(store)
        flow.add_routine(Emitter(3), "src")
        flow.add_routine(Relay(), "relay")
        flow.add_routine(sink, "sink")
        flow.connect("src", "output", "relay", "input")
        flow.connect("relay", "output", "sink", "input")
        with flow:
            job = flow.execute("src")
        assert job.status == "completed", job.errors
        assert sink.stored == [0, [0, 1], [0, 1, 2]]
        assert all(type(items) is not AppendView for items in sink.stored)
        history = job.serialize()["execution_history"]
        relayed = [e["data"]["items"] for e in history if e["routine_id"] == "relay"]
        assert relayed == [0, [0, 1], [0, 1, 2]]
        saved = store.load(job.job_id)
        saved_items = [
            e["data"]["items"]
            for e in saved["execution_history"]
            if e["routine_id"] == "relay"
        ]
        assert saved_items == [0, [0, 1], [0, 1, 2]]
