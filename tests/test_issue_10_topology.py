"""Issue 10, item 6: every stored job carries its flow's topology; resume checks it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    ConfigurationError,
    Flow,
    FlowTopology,
    JobState,
    JobStatus,
    Routine,
    SerializationError,
    TopologyChangedError,
    TopologyChanges,
)
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KINDS = ["sqlite", "jsonfile"]
HERE = __name__


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.run)
        self.define_event("out", ["n"])

    def run(self, count: int = 3) -> None:
        for n in range(count):
            self.emit("out", n=n)


class Worker(Routine):
    """Passes items on; pauses its job after the first (config ``pause``)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(pause=True)
        self.define_slot("in", handler=self.work)
        self.define_event("out", ["n"])

    def work(self, n: int) -> None:
        self.emit("out", n=n)
        if n == 0 and self.get_config("pause"):
            context = self.get_execution_context()
            assert context is not None
            context.flow.pause(context.job_state, reason="change the flow")


class Sink(Routine):
    def __init__(self, slot: str = "in") -> None:
        super().__init__()
        self.got: list[int] = []
        self.define_slot(slot, handler=self.take)

    def take(self, n: int) -> None:
        self.got.append(n)


def build(
    store: Any = None,
    *,
    sink: bool = True,
    slot: str = "in",
    extra_link: bool = False,
    pause: bool = False,
) -> Flow:
    """source -> worker -> sink, with the changes the tests make."""
    flow = Flow("shop", checkpoint_store=store)
    worker = Worker()
    worker.set_config(pause=pause)
    flow.add_routine(Source(), "source")
    flow.add_routine(worker, "worker")
    flow.connect("source", "out", "worker", "in")
    if sink:
        flow.add_routine(Sink(slot), "sink")
        flow.connect("worker", "out", "sink", slot)
        if extra_link:
            flow.connect("source", "out", "sink", slot)
    return flow


def open_store(kind: str, tmp_path: Path) -> Any:
    if kind == "sqlite":
        return SQLiteCheckpointStore(tmp_path / "store.db")
    return JsonFileCheckpointStore(tmp_path / "store")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(str(request.param), tmp_path) as opened:
        yield opened


def paused_job(store: Any, **shape: Any) -> str:
    """A job paused (and stored) on a flow of the given shape."""
    flow = build(store, pause=True, **shape)
    job = flow.execute("source", {"count": 3})
    assert job.status is JobStatus.PAUSED
    flow.shutdown()
    return job.job_id


SINK = ("sink", f"{HERE}:Sink")
SOURCE_TO_SINK = ("source", "out", "sink", "in")
WORKER_TO_SINK = ("worker", "out", "sink", "in")
WORKER_TO_INPUT = ("worker", "out", "sink", "input")

#: (saved shape, resuming shape, the changes) — each case both ways round.
CASES = {
    "routine removed": (
        {},
        {"sink": False},
        TopologyChanges(
            routines_removed=(SINK,),
            slots_removed=(("sink", "in"),),
            connections_removed=(WORKER_TO_SINK,),
        ),
    ),
    "routine added": (
        {"sink": False},
        {},
        TopologyChanges(
            routines_added=(SINK,),
            slots_added=(("sink", "in"),),
            connections_added=(WORKER_TO_SINK,),
        ),
    ),
    "slot renamed": (
        {},
        {"slot": "input"},
        TopologyChanges(
            slots_added=(("sink", "input"),),
            slots_removed=(("sink", "in"),),
            connections_added=(WORKER_TO_INPUT,),
            connections_removed=(WORKER_TO_SINK,),
        ),
    ),
    "slot renamed back": (
        {"slot": "input"},
        {},
        TopologyChanges(
            slots_added=(("sink", "in"),),
            slots_removed=(("sink", "input"),),
            connections_added=(WORKER_TO_SINK,),
            connections_removed=(WORKER_TO_INPUT,),
        ),
    ),
    "connection added": (
        {},
        {"extra_link": True},
        TopologyChanges(connections_added=(SOURCE_TO_SINK,)),
    ),
    "connection removed": (
        {"extra_link": True},
        {},
        TopologyChanges(connections_removed=(SOURCE_TO_SINK,)),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_changed_flow_is_reported_exactly(store: Any, case: str) -> None:
    saved, resuming, expected = CASES[case]
    job_id = paused_job(store, **saved)
    before = store.load(job_id)
    flow = build(store, **resuming)
    with pytest.raises(TopologyChangedError) as caught:
        flow.resume(job_id)
    assert caught.value.changes == expected
    assert caught.value.job_id == job_id
    assert isinstance(caught.value, ConfigurationError)
    assert str(expected) in str(caught.value)
    assert "allow_changes=True" in str(caught.value)
    # Nothing changed: the job waits, as stored, for the right flow.
    assert store.load(job_id) == before
    flow.shutdown()
    again = build(store, **saved)
    assert again.resume(job_id).status is JobStatus.COMPLETED
    again.shutdown()


def test_the_message_names_every_change() -> None:
    changes = CASES["slot renamed"][2]
    assert str(changes) == (
        "slots added: sink.input; slots removed: sink.in; connections added: "
        "worker.out -> sink.input; connections removed: worker.out -> sink.in"
    )
    assert changes.to_dict()["slots_removed"] == [["sink", "in"]]
    assert not TopologyChanges()
    assert str(TopologyChanges()) == "no changes"


def test_every_stored_job_carries_the_topology(store: Any) -> None:
    flow = build(store)
    job = flow.execute("source", {"count": 2})
    expected = FlowTopology.of(flow.routines, flow.connections)
    assert job.topology == expected
    document = store.load(job.job_id)
    assert document["topology"]["fingerprint"] == expected.fingerprint
    assert document["topology"]["connections"] == [
        ["source", "out", "worker", "in"],
        ["worker", "out", "sink", "in"],
    ]
    assert document["topology"]["routines"][0] == {
        "id": "sink",
        "class_key": f"{HERE}:Sink",
        "slots": ["in"],
        "events": [],
    }
    document.pop("pending_activations")
    assert JobState.deserialize(document).topology == expected
    flow.shutdown()


def test_the_fingerprint_follows_the_flow() -> None:
    flow = build()
    first = flow.execute("source", {"count": 1}).topology
    assert first is not None
    assert flow.execute("source", {"count": 1}).topology is first  # made once
    flow.routines["sink"].define_slot("late")  # a change the wiring does not see
    second = flow.execute("source", {"count": 1}).topology
    assert second is not None and second.fingerprint != first.fingerprint
    assert first.changes_to(second) == TopologyChanges(slots_added=(("sink", "late"),))
    # Classes are described, not compared: a script's classes are in __main__,
    # and a class refactored with the same slots and events is the same shape.
    renamed = FlowTopology.of(
        {rid: Shaped(spec.slots, spec.events) for rid, spec in _specs(flow).items()},
        flow.connections,
    )
    assert {r.class_key for r in renamed.routines} == {f"{HERE}:Shaped"}
    assert (
        renamed.fingerprint
        == FlowTopology.of(flow.routines, flow.connections).fingerprint
    )


class Shaped(Routine):
    """Any slots and events, for a flow of the same shape and other classes."""

    def __init__(self, slots: Any = (), events: Any = ()) -> None:
        super().__init__()
        for name in slots:
            self.define_slot(name)
        for name in events:
            self.define_event(name)


def _specs(flow: Flow) -> dict[str, Any]:
    return {rid: routine.get_spec() for rid, routine in flow.routines.items()}


def test_allow_changes_resumes_what_exists_and_records_what_was_dropped(
    store: Any,
) -> None:
    job_id = paused_job(store)
    held = store.pending(job_id)
    to_sink = [item for item in held if item["routine_id"] == "sink"]
    assert len(to_sink) == 1 and len(held) == 3  # worker.in x2, sink.in x1
    flow = build(store, sink=False)
    job = flow.resume(job_id, allow_changes=True)
    assert job.status is JobStatus.COMPLETED
    record = job.errors[-1]
    assert record["error_type"] == "TopologyChangedError"
    assert "sink.in" in record["message"]
    assert record["dropped"] == [
        {key: to_sink[0][key] for key in ("id", "routine_id", "slot", "payload")}
    ]
    assert record["changes"]["routines_removed"] == [list(SINK)]
    assert sorted(job.routine_states) == ["source", "worker"]
    stored = store.load(job_id)
    assert stored["status"] == "completed"
    assert stored["pending_activations"] == []
    assert stored["topology"]["fingerprint"] == job.topology.fingerprint  # type: ignore[union-attr]
    assert stored["errors"][-1]["dropped"] == record["dropped"]
    flow.shutdown()


def test_allow_changes_on_an_unchanged_flow_records_nothing(store: Any) -> None:
    job_id = paused_job(store)
    flow = build(store)
    job = flow.resume(job_id, allow_changes=True)
    assert job.status is JobStatus.COMPLETED
    assert job.errors == []
    assert flow.routines["sink"].got == [0, 1, 2]  # type: ignore[attr-defined]
    flow.shutdown()


def test_allow_changes_must_be_a_bool(store: Any) -> None:
    job_id = paused_job(store)
    flow = build(store)
    with pytest.raises(ConfigurationError, match="allow_changes"):
        flow.resume(job_id, allow_changes=1)  # type: ignore[arg-type]
    assert store.load(job_id)["status"] == "paused"
    flow.shutdown()


def test_a_job_stored_without_a_fingerprint_resumes_as_before(store: Any) -> None:
    job_id = paused_job(store)
    document = store.load(job_id)
    pending = document.pop("pending_activations")
    del document["topology"]  # as routilux wrote it before fingerprints
    store.save_job(document)
    assert len(store.pending(job_id)) == len(pending)
    changed = build(store, extra_link=True)
    job = changed.resume(job_id)  # nothing to compare with: no check
    assert job.status is JobStatus.COMPLETED
    assert job.topology == FlowTopology.of(changed.routines, changed.connections)
    changed.shutdown()


def test_without_a_fingerprint_a_missing_target_still_raises(store: Any) -> None:
    job_id = paused_job(store)
    document = store.load(job_id)
    document.pop("pending_activations")
    del document["topology"]
    store.save_job(document)
    flow = build(store, sink=False)
    with pytest.raises(ConfigurationError, match="sink"):
        flow.resume(job_id)
    flow.shutdown()


# -- a paused JobState carried to another process (no store) -------------------------


def test_a_loaded_job_state_is_checked_too(tmp_path: Path) -> None:
    here = build(pause=True)
    job = here.execute("source", {"count": 3})
    assert job.status is JobStatus.PAUSED
    job.save(tmp_path / "job.json")
    here.shutdown()

    there = build(slot="input")
    moved = JobState.load(tmp_path / "job.json")
    with pytest.raises(TopologyChangedError) as caught:
        there.resume(moved)
    assert caught.value.changes == CASES["slot renamed"][2]
    assert moved.status is JobStatus.PAUSED and not moved.is_owned

    resumed = there.resume(moved, allow_changes=True)
    assert resumed is moved and moved.status is JobStatus.COMPLETED
    assert [d["routine_id"] for d in moved.errors[-1]["dropped"]] == ["sink"]
    assert there.routines["sink"].got == [1, 2]  # type: ignore[attr-defined]
    there.shutdown()


def test_a_loaded_job_state_resumes_on_the_same_shape(tmp_path: Path) -> None:
    here = build(pause=True)
    job = here.execute("source", {"count": 3})
    job.save(tmp_path / "job.json")
    here.shutdown()
    there = build()
    moved = there.resume(JobState.load(tmp_path / "job.json"))
    assert moved.status is JobStatus.COMPLETED and moved.errors == []
    assert there.routines["sink"].got == [0, 1, 2]  # type: ignore[attr-defined]
    there.shutdown()


def test_allow_changes_on_a_job_without_a_fingerprint_drops_what_has_no_target(
    store: Any,
) -> None:
    job_id = paused_job(store)
    document = store.load(job_id)
    document.pop("pending_activations")
    del document["topology"]
    store.save_job(document)
    flow = build(store, sink=False)
    job = flow.resume(job_id, allow_changes=True)
    assert job.status is JobStatus.COMPLETED
    record = job.errors[-1]
    assert record["changes"] == {}  # nothing to compare with
    assert [item["routine_id"] for item in record["dropped"]] == ["sink"]
    flow.shutdown()


class Counter(Routine):
    """Counts its calls under a lock (the test reads it after the job)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", handler=self.take)
        self.define_event("out", ["n"])

    def take(self, n: int) -> None:
        self.increment_stat("calls")


@pytest.mark.parametrize("repeat", range(3))
def test_allow_changes_drops_exactly_the_lost_targets_on_eight_threads(
    tmp_path: Path, repeat: int
) -> None:
    with SQLiteCheckpointStore(tmp_path / f"{repeat}.db") as store:
        job_id = paused_job(store)
        work = [
            {"id": f"w{n}", "routine_id": "worker", "slot": "in", "payload": {"n": n}}
            for n in range(300)
        ]
        lost = [
            {"id": f"s{n}", "routine_id": "sink", "slot": "in", "payload": {"n": n}}
            for n in range(200)
        ]
        store.record_step(job_id, added=work + lost)
        flow = Flow("shop", "concurrent", 8, checkpoint_store=store)
        flow.add_routine(Source(), "source")
        flow.add_routine(Counter(), "worker")
        flow.connect("source", "out", "worker", "in")
        job = flow.resume(job_id, allow_changes=True)
        assert job.wait(timeout=60)
        assert job.status is JobStatus.COMPLETED
        # The two worker.in held by the pause, and the 300 added.
        assert flow.routines["worker"].get_stat("calls") == 302
        dropped = job.errors[-1]["dropped"]
        assert len(dropped) == 201  # the one sink.in held by the pause, and 200
        assert {item["id"] for item in dropped} >= {item["id"] for item in lost}
        assert store.pending(job_id) == []
        flow.shutdown()


@pytest.mark.parametrize(
    ("topology", "path"),
    [
        (5, "topology"),
        ({"routines": []}, "topology.fingerprint"),
        ({"fingerprint": "x", "routines": [{"id": "a"}]}, "topology.routines.0"),
        ({"fingerprint": "x", "connections": [["a", "b"]]}, "topology.connections"),
        ({"fingerprint": "x", "extra": 1}, "topology.extra"),
    ],
)
def test_a_bad_topology_in_a_document_names_its_path(topology: Any, path: str) -> None:
    document = build().execute("source", {"count": 1}).serialize()
    document["topology"] = topology
    with pytest.raises(SerializationError, match=path.replace(".", r"\.")):
        JobState.deserialize(document)
