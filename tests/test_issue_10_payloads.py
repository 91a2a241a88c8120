"""Issue 10, item 4: faithful payloads, one tagged JSON encoding everywhere.

Every supported type, nested anyhow in a payload, reads back as the same type and
value through JobState documents (serialize and save), flow documents (routine
configs) and both checkpoint stores (pending activations and dead letters). A value
no encoding holds is refused at write time, naming its path, and nothing is written.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings

from routilux import Flow, JobState, SerializationError
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore

from .payload_values import payloads, same, values
from .routines import Relay

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from routilux.persistence import CheckpointStore

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _job_with(payload: dict[str, Any]) -> JobState:
    """A job holding ``payload`` in every field that keeps user values."""
    job = JobState("flow")
    job.pending_tasks = [{"routine_id": "r", "slot": "input", "payload": payload}]
    job.pause_points = [{"reason": "wait", "checkpoint": payload}]
    job.routine_states["r"] = {"status": "completed", "result": payload}
    job.errors = [{"routine_id": "r", "message": "m", "context": payload}]
    job.record_execution("r", "output", payload)
    return job


def _held(job: JobState) -> list[Any]:
    # Records' extra keys by attribute: key access reads them through
    # model_dump(), which turns models and dataclasses into dicts.
    return [
        job.pending_tasks[0]["payload"],
        job.pause_points[0]["checkpoint"],
        job.routine_states["r"].result,  # type: ignore[attr-defined]
        job.errors[0].context,  # type: ignore[attr-defined]
        job.execution_history[0].data,
    ]


@EXAMPLES
@given(payloads)
def test_job_documents_keep_every_type(payload: dict[str, Any]) -> None:
    job = _job_with(payload)
    document = job.serialize()
    restored = JobState.deserialize(document)
    assert all(same(payload, held) for held in _held(restored))
    assert restored.serialize() == document  # written back alike


@EXAMPLES
@given(payloads)
def test_saved_jobs_keep_every_type(payload: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "job.json"
        _job_with(payload).save(path)
        restored = JobState.load(path)
    assert all(same(payload, held) for held in _held(restored))


@EXAMPLES
@given(values)
def test_flow_documents_keep_every_type_of_config_value(value: Any) -> None:
    relay = Relay()
    relay.set_config(value=value)
    flow = Flow("configs")
    flow.add_routine(relay, "relay")
    try:
        raw = flow.to_json()
        document = flow.serialize()
    finally:
        flow.shutdown(wait=False)
    for loaded in (Flow.from_json(raw), Flow.deserialize(document)):
        try:
            assert same(value, loaded.routines["relay"].get_config("value"))
            assert loaded.to_json() == raw  # byte for byte
        finally:
            loaded.shutdown(wait=False)


def _job_document(job_id: str) -> dict[str, Any]:
    return JobState("flow", job_id=job_id).serialize()


def _stores() -> Iterator[tuple[str, Callable[[], CheckpointStore]]]:
    directory = Path(tempfile.mkdtemp())
    yield "sqlite", lambda: SQLiteCheckpointStore(directory / "c.sqlite")
    yield "jsonfile", lambda: JsonFileCheckpointStore(directory / "json")


def _letter(letter_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "letter_id": letter_id,
        "flow_id": "flow",
        "job_id": "job",
        "routine_id": "r",
        "slot": "input",
        "payload": payload,
        "error_type": "ValueError",
        "error": "bad",
        "causes": [],
        "attempts": 1,
        "failed_at": 1.0,
        "replayed_by": None,
    }


@EXAMPLES
@given(payloads)
def test_both_stores_keep_every_type(payload: dict[str, Any]) -> None:
    for _kind, opener in _stores():
        with opener() as store:
            store.save_job(_job_document("job"))
            activation = {"id": "a1", "routine_id": "r", "slot": "input"}
            store.record_step("job", added=[{**activation, "payload": payload}])
            store.add_dead_letter(_letter("l1", payload))  # type: ignore[attr-defined]
        with opener() as reopened:
            assert same(payload, reopened.pending("job")[0]["payload"])
            loaded = reopened.load("job")["pending_activations"][0]["payload"]
            assert same(payload, loaded)
            letters = reopened.dead_letters()  # type: ignore[attr-defined]
            assert same(payload, letters[0]["payload"])


# -- what no encoding holds ----------------------------------------------------------


def _unsupported() -> list[tuple[Any, str]]:
    """(payload, the path its message names)."""
    return [
        ({"items": [1, 2, 3, {"price": object()}]}, r"\.items\[3\]\.price: object"),
        ({"f": lambda: None}, r"\.f: function is not"),
        ({"pair": (1, socket.socket)}, r"\.pair\[1\]: type is not"),
        ({"n": {1: {"deep": {2, 3}, "x": range(3)}}}, r"\.n\.1\.x: range is not"),
    ]


@pytest.mark.parametrize(("payload", "path"), _unsupported())
def test_an_unsupported_value_is_refused_by_serialize_and_save(
    payload: dict[str, Any], path: str, tmp_path: Path
) -> None:
    job = _job_with({"ok": 1})
    target = tmp_path / "job.json"
    job.save(target)
    before = target.read_bytes()
    job.pending_tasks = [{"routine_id": "r", "slot": "input", "payload": payload}]
    with pytest.raises(SerializationError, match=r"pending_tasks\[0\]\.payload" + path):
        job.serialize()
    with pytest.raises(SerializationError, match=r"pending_tasks\[0\]\.payload" + path):
        job.save(target)
    assert target.read_bytes() == before  # the file is left as it was
    assert [p.name for p in tmp_path.iterdir()] == ["job.json"]


@pytest.mark.parametrize(("payload", "path"), _unsupported())
def test_an_unsupported_value_is_refused_by_both_stores(
    payload: dict[str, Any], path: str
) -> None:
    for _kind, opener in _stores():
        with opener() as store:
            store.save_job(_job_document("job"))
            ok = {"id": "a1", "routine_id": "r", "slot": "input", "payload": {"x": 1}}
            store.record_step("job", added=[ok])
            before = store.load("job")
            bad = {**ok, "id": "a2", "payload": payload}
            with pytest.raises(SerializationError, match=r"payload" + path):
                store.record_step("job", finished=["a1"], added=[bad])
            with pytest.raises(SerializationError, match=r"payload" + path):
                store.add_dead_letter(_letter("l1", payload))  # type: ignore[attr-defined]
            assert store.load("job") == before
            assert store.dead_letters() == []  # type: ignore[attr-defined]


def test_a_socket_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    job = JobState("flow")
    with socket.socket() as connection:
        job.record_execution("r", "output", {"conn": connection})
        with pytest.raises(
            SerializationError, match=r"execution_history\[0\]\.data\.conn: socket is"
        ):
            job.save(tmp_path / "job.json")
    assert list(tmp_path.iterdir()) == []


def test_an_unsupported_config_value_is_refused_naming_its_path() -> None:
    relay = Relay()
    relay.set_config(items=[1, {"price": object()}])
    flow = Flow("configs")
    flow.add_routine(relay, "relay")
    try:
        with pytest.raises(
            SerializationError,
            match=r"^routines\.relay\.config\.items\[1\]\.price: object is not",
        ):
            flow.to_json()
    finally:
        flow.shutdown(wait=False)


def test_plain_values_are_written_as_themselves() -> None:
    # Readable documents: only what JSON cannot hold as itself is tagged.
    payload = {"a": [1, 2.5, None, True, "x"], "b": {"c": {}}, "$two": 1, "$": 2}
    job = JobState("flow")
    job.pending_tasks = [{"routine_id": "r", "slot": "input", "payload": payload}]
    assert job.serialize()["pending_tasks"][0]["payload"] == payload


def test_a_plain_dict_that_looks_like_a_tag_reads_back_as_itself() -> None:
    payload = {"value": {"$decimal": "1.5"}, "other": {"$esc": {"$int": "2"}}}
    job = JobState("flow")
    job.pending_tasks = [{"routine_id": "r", "slot": "input", "payload": payload}]
    restored = JobState.deserialize(job.serialize())
    assert restored.pending_tasks[0]["payload"] == payload
