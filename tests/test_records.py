"""Routine states and error records: pydantic models that read like 0.9's dicts."""

from __future__ import annotations

import pytest

from routilux import ErrorHandler, ErrorRecord, Flow, JobState, RoutineState

from .routines import Boom


def test_routine_state_reads_like_a_dict_and_has_attributes() -> None:
    state = RoutineState(status="failed", error="boom", error_type="RuntimeError")
    assert state.status == state["status"] == "failed"
    assert state.get("retry_count") is None and "retry_count" not in state
    assert dict(state.items()) == {
        "status": "failed",
        "error": "boom",
        "error_type": "RuntimeError",
    }
    assert state == {"status": "failed", "error": "boom", "error_type": "RuntimeError"}
    with pytest.raises(KeyError):
        state["retry_count"]


def test_job_records_are_models() -> None:
    flow = Flow()
    boom = Boom()
    boom.set_error_handler(ErrorHandler("continue"))
    flow.add_routine(boom, "boom")
    job = flow.execute("boom")
    (error,) = job.errors
    assert isinstance(error, ErrorRecord)
    assert (error.routine_id, error.slot, error.error_type, error.attempt) == (
        "boom",
        "trigger",
        "RuntimeError",
        1,
    )
    assert error["message"] == "boom" and "RuntimeError: boom" in error.traceback
    state = job.routine_states["boom"]
    assert isinstance(state, RoutineState) and state.status == "error_continued"


def test_plain_dicts_from_old_code_are_adopted() -> None:
    job = JobState("f")
    job.update_routine_state("a", {"status": "completed", "rows": 3})
    assert job.get_routine_state("a") == {"status": "completed", "rows": 3}
    job.routine_states["b"] = {"status": "skipped"}  # type: ignore[assignment]
    job.errors.append({"routine_id": "b", "message": "old style"})  # type: ignore[arg-type]
    document = job.serialize()
    assert document["routine_states"]["b"] == {"status": "skipped"}
    restored = JobState.deserialize(document)
    assert restored.routine_states["a"]["rows"] == 3
    assert restored.errors[0].message == "old style"
