"""Issue 10, cheaper steps per emit: history encoded a chunk at a time, and a
batch's removal-only steps written as one statement.

What is checked: :func:`history_batch` writes exactly the text the whole-batch
encoding wrote (plain and tagged values, across chunk boundaries, an error
naming the same entry); a :class:`HistoryBatch` reads as its entries; a batch of
removal-only steps removes the same rows, refuses an unknown job alone (the
rest of the batch written), and leaves a job's other rows alone.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from routilux import CheckpointError, SerializationError
from routilux.persistence import SQLiteCheckpointStore
from routilux.persistence.history_log import HistoryBatch
from routilux.record_log import RecordLog
from routilux.runtime import checkpoint_documents
from routilux.runtime.checkpoint_documents import encoded_history, history_batch

if TYPE_CHECKING:
    from pathlib import Path

TS = 1_700_000_000.25


def _log(values: list[Any]) -> RecordLog[Any]:
    log: RecordLog[Any] = RecordLog(4)
    for i, value in enumerate(values):
        log.append(("r", "out", {"v": value}, TS + i / 1000))
    return log


@pytest.mark.parametrize("chunk", [1, 2, 3, 512])
@pytest.mark.parametrize(
    "values",
    [
        [1, 2, 3, 4, 5, 6, 7],
        [1, Decimal("1.5"), "x", (1, 2), None, 2**70, {"a": [1, 2]}],
    ],
    ids=["plain", "tagged"],
)
def test_a_history_batch_is_the_text_of_the_whole_encoding(
    monkeypatch: pytest.MonkeyPatch, chunk: int, values: list[Any]
) -> None:
    monkeypatch.setattr(checkpoint_documents, "HISTORY_CHUNK", chunk)
    log = _log(values)
    for first, count in [(0, len(values)), (2, 4), (3, 1), (6, 1)]:
        batch = history_batch("job", log, first, count)
        whole = encoded_history("job", log.since(first)[:count], first)
        assert len(batch) == count
        assert orjson.loads(batch.text) == orjson.loads(orjson.dumps(whole))
        assert batch.text == orjson.dumps(whole).decode()
        assert list(batch) == orjson.loads(batch.text)  # read as its entries


def test_an_empty_history_batch() -> None:
    batch = history_batch("job", _log([1]), 1, 0)
    assert (batch.text, len(batch), list(batch)) == ("[]", 0, [])


def test_a_history_entry_that_cannot_be_written_is_named_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checkpoint_documents, "HISTORY_CHUNK", 2)
    log = _log([1, 2, 3, object(), 5])
    with pytest.raises(SerializationError) as batch_error:
        history_batch("job", log, 1, 4)
    with pytest.raises(SerializationError) as whole_error:
        encoded_history("job", log.since(1)[:4], 1)
    assert str(batch_error.value) == str(whole_error.value)
    assert "entry 1" in str(batch_error.value)


def test_a_bounded_history_is_refused() -> None:
    log: RecordLog[Any] = RecordLog(4, limit=3)
    log.append(("r", "out", {}, TS))
    with pytest.raises(TypeError):
        history_batch("job", log, 0, 1)


def test_the_store_logs_a_history_batch_as_its_entries(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "s.sqlite")
    try:
        store.save_job(_job("j"))
        log = _log([1, Decimal("2.5"), 3])
        store.log_step("j", history=history_batch("j", log, 0, 2), first=0)
        store.log_step("j", history=history_batch("j", log, 2, 1), first=2)
        whole = encoded_history("j", log.snapshot(), 0)  # the document's form
        assert store.load("j")["execution_history"] == orjson.loads(orjson.dumps(whole))
    finally:
        store.close()


def _job(job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "flow_id": "f",
        "status": "running",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }


def _row(key: str) -> dict[str, Any]:
    return {"id": key, "routine_id": "r", "slot": "s", "payload": {"k": key}}


def _pending(store: SQLiteCheckpointStore, job_id: str) -> list[str]:
    return [item["id"] for item in store.pending(job_id)]


def test_removal_only_steps_of_a_batch_remove_what_they_name(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "s.sqlite")
    try:
        for job_id in ("j", "k"):
            store.record_step(
                job_id, added=[_row(f"a{i}") for i in range(6)], job=_job(job_id)
            )
        batch = [
            store.prepare_step("j", finished=["a0"]),
            store.prepare_step("k", finished=["a1", "a2"]),
            store.prepare_step("j", finished=["a9"]),  # not pending: ignored
            store.prepare_step("j", added=[_row("b0")]),  # between removals
            store.prepare_step("j", finished=["a3"]),
            store.prepare_step("k", finished=[]),
        ]
        assert store.write_steps(batch) == [None] * len(batch)
        assert _pending(store, "j") == ["a1", "a2", "a4", "a5", "b0"]
        assert _pending(store, "k") == ["a0", "a3", "a4", "a5"]
    finally:
        store.close()


def test_a_removal_step_of_an_unknown_job_fails_alone(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "s.sqlite")
    try:
        store.record_step("j", added=[_row(f"a{i}") for i in range(3)], job=_job("j"))
        batch = [
            store.prepare_step("j", finished=["a0"]),
            store.prepare_step("nope", finished=["a1"]),
            store.prepare_step("j", finished=["a2"]),
        ]
        errors = store.write_steps(batch)
        assert errors[0] is None and errors[2] is None
        assert isinstance(errors[1], CheckpointError)
        assert "unknown job 'nope'" in str(errors[1])
        assert _pending(store, "j") == ["a1"]
    finally:
        store.close()


def test_a_prepared_removal_step_is_only_its_rows(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "s.sqlite")
    try:
        step = store.prepare_step("j", finished=["a0", "a1"])
        assert step.removed == [("j", "a0"), ("j", "a1")]
        assert (step.job, step.inserted, step.history, step.kept) == (
            None,
            [],
            None,
            None,
        )
        assert isinstance(HistoryBatch("[]", 0), HistoryBatch)
        with pytest.raises(CheckpointError, match="needs its document"):
            store.log_step("j", finished=["a0"], compact=True)
    finally:
        store.close()
