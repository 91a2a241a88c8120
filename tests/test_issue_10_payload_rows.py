"""Issue 10: reliability rows 15, 18 and 24 (payloads through documents and stores).

Row 15: a payload dict with int keys could not be saved. Row 18: values changed
through a checkpoint (NaN to None, datetime and UUID to text, an enum member to its
value, a tuple to a list). Row 24: a stored payload that is not a JSON object
escaped as a bare TypeError or ValueError, or ``[[1, 2]]`` became ``{1: 2}``.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import math
import sqlite3
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from routilux import CheckpointError, Flow, JobState, JobStatus, Routine
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore

from .payload_values import same

if TYPE_CHECKING:
    from pathlib import Path


class Hue(enum.Enum):
    """An enum whose members travel in payloads."""

    RED = 1


VALUES: dict[str, Any] = {
    "nan": math.nan,
    "inf": -math.inf,
    "when": datetime.datetime(2024, 5, 1, 12, 0),
    "aware": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc),
    "day": datetime.date(2025, 1, 2),
    "id": uuid.UUID(int=7),
    "colour": Hue.RED,
    "pair": (1, 2),
    "price": Decimal("10.05"),
    "counts": {1: 5, 2: 7},
    "big": 2**128 + 1,
}


class Source(Routine):
    """Emits :data:`VALUES` (or ``values``) once."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", list(VALUES))

    def go(self) -> None:
        self.emit("out", **VALUES)


class Sink(Routine):
    """Keeps what it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[dict[str, Any]] = []
        self.define_slot("input", handler=self.take)

    def take(self, **values: Any) -> None:
        self.got.append(values)


class Gate(Routine):
    """Pauses the job the first time it runs: the sink's activation stays pending."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, **values: Any) -> None:
        context = self.get_execution_context()
        assert context is not None
        context.flow.pause(context.job_state, reason="restart")


def _flow(store: Any) -> Flow:
    flow = Flow("values", execution_strategy="sequential", checkpoint_store=store)
    flow.add_routine(Source(), "src")
    flow.add_routine(Gate(), "gate")
    flow.add_routine(Sink(), "sink")
    flow.connect("src", "out", "gate", "input")  # runs first: pauses the job
    flow.connect("src", "out", "sink", "input")
    return flow


def _sink(flow: Flow) -> Sink:
    sink = flow.routines["sink"]
    assert isinstance(sink, Sink)
    return sink


@pytest.mark.parametrize("kind", ["sqlite", "jsonfile"])
def test_row_18_values_keep_their_types_through_a_store(
    kind: str, tmp_path: Path
) -> None:
    def store() -> Any:
        if kind == "sqlite":
            return SQLiteCheckpointStore(tmp_path / "c.sqlite")
        return JsonFileCheckpointStore(tmp_path / "json")

    first_store = store()  # a store passed in is the caller's to close
    first = _flow(first_store)
    try:
        job = first.execute("src")
        assert job.wait(10) and job.status is JobStatus.PAUSED
        assert _sink(first).got == []
    finally:
        first.shutdown(wait=False)
        first_store.close()
    second_store = store()
    second = _flow(second_store)
    try:
        resumed = second.resume(job.job_id)
        assert resumed.wait(10) and resumed.status is JobStatus.COMPLETED
        (got,) = _sink(second).got
        assert same(VALUES, got)
    finally:
        second.shutdown(wait=False)
        second_store.close()


def test_row_18_values_keep_their_types_through_a_saved_job(tmp_path: Path) -> None:
    # The cross-host recipe: save the paused job, load it elsewhere, resume.
    first = _flow(None)
    try:
        job = first.execute("src")
        assert job.wait(10) and job.status is JobStatus.PAUSED
        job.save(tmp_path / "job.json")
    finally:
        first.shutdown(wait=False)
    second = _flow(None)
    try:
        resumed = second.resume(JobState.load(tmp_path / "job.json"))
        assert resumed.wait(10) and resumed.status is JobStatus.COMPLETED
        (got,) = _sink(second).got
        assert same(VALUES, got)
    finally:
        second.shutdown(wait=False)


class Histogram(Routine):
    """Emits a dict with int keys."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("hist", ["counts"])

    def go(self) -> None:
        self.emit("hist", counts={1: 5, 2: 7})


def _histogram_flow(**options: Any) -> Flow:
    flow = Flow("hist", **options)
    flow.add_routine(Histogram(), "src")
    flow.add_routine(Sink(), "sink")
    flow.connect("src", "hist", "sink", "input")
    return flow


def test_row_15_int_keys_are_saved_and_read_back(tmp_path: Path) -> None:
    flow = _histogram_flow()
    try:
        job = flow.execute("src")
        assert job.wait(10)
        job.save(tmp_path / "job.json")  # raised SerializationError before
    finally:
        flow.shutdown(wait=False)
    loaded = JobState.load(tmp_path / "job.json")
    data = [record.data for record in loaded.execution_history if record.data]
    assert {"counts": {1: 5, 2: 7}} in data
    assert all(type(key) is int for key in data[0]["counts"])


def test_row_15_int_keys_pass_a_checkpointed_job(tmp_path: Path) -> None:
    flow = _histogram_flow(
        execution_strategy="concurrent",
        max_workers=1,
        checkpoint_store=tmp_path / "c.sqlite",
    )
    try:
        job = flow.execute("src")
        assert job.wait(10)
        assert job.status is JobStatus.COMPLETED, job.errors
        assert _sink(flow).got == [{"counts": {1: 5, 2: 7}}]
    finally:
        flow.shutdown(wait=False)


# -- row 24 ------------------------------------------------------------------------


class Counter(Routine):
    """Emits ``count`` items."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("item", ["n"])

    def go(self, count: int) -> None:
        for n in range(count):
            self.emit("item", n=n)


class PausingSink(Sink):
    """Pauses the job at item 1: items 2 and 3 stay pending in the store."""

    def take(self, **values: Any) -> None:
        super().take(**values)
        if values.get("n") == 1:
            context = self.get_execution_context()
            assert context is not None
            context.flow.pause(context.job_state, reason="x")


def _counting_flow(store: Any) -> Flow:
    flow = Flow("c", execution_strategy="sequential", checkpoint_store=store)
    flow.add_routine(Counter(), "src")
    flow.add_routine(PausingSink(), "sink")
    flow.connect("src", "item", "sink", "input")
    return flow


def _paused_job(store: Any) -> str:
    flow = _counting_flow(store)
    try:
        job = flow.execute("src", entry_params={"count": 4})
        assert job.wait(10) and job.status is JobStatus.PAUSED
        return job.job_id
    finally:
        flow.shutdown(wait=False)


@pytest.mark.parametrize("bad", ["[1, 2]", '"text"', "42", "[[1, 2]]", "null"])
def test_row_24_a_stored_payload_that_is_not_an_object_is_named(
    bad: str, tmp_path: Path
) -> None:
    path = tmp_path / "c.sqlite"
    job_id = _paused_job(path)
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "UPDATE pending SET payload = ? WHERE seq = (SELECT min(seq) FROM pending)",
            (bad,),
        )
    connection.close()
    flow = _counting_flow(path)
    try:
        with pytest.raises(CheckpointError, match=r"payload: expected an object"):
            flow.resume(job_id)
        assert _sink(flow).got == []  # [[1, 2]] did not become {1: 2}
    finally:
        flow.shutdown(wait=False)


def test_row_24_the_json_file_store_names_the_payload(tmp_path: Path) -> None:
    directory = tmp_path / "json"
    job_id = _paused_job(JsonFileCheckpointStore(directory))
    file = directory / f"{job_id}.json"
    content = orjson.loads(file.read_bytes())
    content["pending_activations"][0]["payload"] = [[1, 2]]
    file.write_bytes(orjson.dumps(content))
    flow = _counting_flow(JsonFileCheckpointStore(directory))
    try:
        with pytest.raises(
            CheckpointError, match=r"pending_activations\[0\]: payload: expected"
        ):
            flow.resume(job_id)
    finally:
        flow.shutdown(wait=False)


class ListPayloads(SQLiteCheckpointStore):
    """A store of another make whose pending payloads are lists."""

    def load(self, job_id: str) -> dict[str, Any]:
        document = super().load(job_id)
        for item in document["pending_activations"]:
            item["payload"] = [[1, 2]]
        return document


def test_row_24_a_custom_store_s_payload_that_is_not_a_dict_is_refused(
    tmp_path: Path,
) -> None:
    job_id = _paused_job(tmp_path / "c.sqlite")
    store = ListPayloads(tmp_path / "c.sqlite")
    flow = _counting_flow(store)
    try:
        with pytest.raises(
            CheckpointError, match=r"pending_activations\[0\]\.payload of job"
        ):
            flow.resume(job_id)
        assert _sink(flow).got == []
    finally:
        flow.shutdown(wait=False)
        store.close()


def test_documents_of_the_previous_format_still_load(tmp_path: Path) -> None:
    # Written before the tagged encoding (no tags): plain values load as they are.
    old_job = {
        "schema_version": 1,
        "kind": "routilux.job",
        "job_id": "j1",
        "flow_id": "c",
        "status": "paused",
        "current_routine_id": "src",
        "routine_states": {"src": {"status": "completed"}},
        "pending_tasks": [
            {"routine_id": "sink", "slot": "input", "payload": {"n": 2}},
            {"routine_id": "sink", "slot": "input", "payload": {"n": "10.05"}},
        ],
        "pause_points": [],
        "errors": [],
        "cancel_reason": None,
        "cancel_source": None,
        "created_at": "2026-11-01T10:00:00Z",
        "updated_at": "2026-11-01T10:00:01Z",
        "execution_history": [
            {
                "routine_id": "src",
                "event_name": "item",
                "data": {"n": [1, 2], "when": "2025-01-02"},
                "timestamp": "2026-11-01T10:00:00.5Z",
            }
        ],
    }
    (tmp_path / "old.json").write_bytes(orjson.dumps(old_job))
    loaded = JobState.load(tmp_path / "old.json")
    assert loaded.pending_tasks[1]["payload"] == {"n": "10.05"}
    assert loaded.execution_history[0].data == {"n": [1, 2], "when": "2025-01-02"}
    flow = _counting_flow(None)
    try:
        resumed = flow.resume(loaded)
        assert resumed.wait(10) and resumed.status is JobStatus.COMPLETED
        assert _sink(flow).got == [{"n": 2}, {"n": "10.05"}]
    finally:
        flow.shutdown(wait=False)
