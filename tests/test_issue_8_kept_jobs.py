"""Issue 8 (speed): a finished job a caller keeps holds few objects of its own.

A service that keeps its finished jobs makes the garbage collector walk every
object they hold, again and again. A finished job therefore shares what needs
no copy of its own: its open done latch, the ``completed`` routine state, and
the empty ``errors``/``pause_points``/``pending_tasks`` views. These tests check
that every public read of such a job answers as before, that the shared parts
refuse changes, that copies of them are the caller's own, and how many objects
a kept job leaves (the figure the sharing is for).
"""

from __future__ import annotations

import asyncio
import copy
import gc
import pickle
from typing import Any

import pytest

from routilux import Flow, JobState, JobStateError, Routine, RoutineState
from routilux._views import OwnedList, share_empty_lists, writable_list


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, count: int = 1) -> None:
        for i in range(count):
            self.emit("output", value=i)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.seen: list[int] = []

    def take(self, value: int) -> int:
        self.seen.append(value)
        return value * 10


class WholePayload(Routine):
    """Takes the whole payload dict (the all-payload rule) and changes it."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.got: list[dict[str, Any]] = []

    def take(self, payload: dict[str, Any]) -> None:
        payload["value"] = "changed by the handler"
        self.got.append(payload)


def two_routine_flow(strategy: str, sink: Routine | None = None) -> Flow:
    flow = Flow(f"kept-{strategy}", execution_strategy=strategy, max_workers=2)
    flow.add_routine(Source(), "source")
    flow.add_routine(sink if sink is not None else Sink(), "sink")
    flow.connect("source", "output", "sink", "input")
    return flow


def reads(job: JobState) -> dict[str, Any]:
    """Every public read of a job, as plain values."""
    document = job.serialize()
    for moment in ("created_at", "updated_at"):
        assert document.pop(moment)
    return {
        "status": job.status,
        "is_done": job.is_done,
        "is_owned": job.is_owned,
        "wait": job.wait(0),
        "result": job.result(0),
        "states": {
            rid: dict(state.items()) for rid, state in job.routine_states.items()
        },
        "state_attrs": {
            rid: (s.status, s.error, s.error_type, s.retry_count)
            for rid, s in job.routine_states.items()
        },
        "get_state": job.get_routine_state("sink"),
        "errors": list(job.errors),
        "pending": list(job.pending_tasks),
        "pauses": list(job.pause_points),
        "history": [
            (r.routine_id, r.event_name, r.data) for r in job.execution_history
        ],
        "document": document,
        "dump": job.model_dump(exclude={"created_at", "updated_at"}),
    }


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_8_a_finished_job_answers_every_read_as_a_running_one_did(
    strategy: str,
) -> None:
    with two_routine_flow(strategy) as flow:
        job = flow.execute("source", {"count": 2})
        assert job.wait(10)
        first = reads(job)
        assert first["status"] == "completed" and first["result"] == {"sink": 10}
        assert first["states"] == {
            "source": {"status": "completed"},
            "sink": {"status": "completed"},
        }
        assert first["state_attrs"]["sink"] == ("completed", None, None, None)
        assert first["errors"] == first["pending"] == first["pauses"] == []
        assert job.get_routine_state("sink") == {"status": "completed"}
        # A copy and a document round trip read the same.
        assert reads(copy.copy(job))["document"] == first["document"]
        assert reads(copy.deepcopy(job))["states"] == first["states"]
        loaded = JobState.deserialize(job.serialize())
        assert loaded.routine_states == job.routine_states
        assert job.routine_states == loaded.routine_states
        assert asyncio.run(job.wait_async(0))
        # Many jobs later, every job still reads the same.
        jobs = [flow.execute("source", {"count": 2}) for _ in range(50)]
        assert flow.wait_for_completion(10)
        assert all(reads(other)["states"] == first["states"] for other in jobs)
        assert reads(job) == first


def test_issue_8_the_shared_completed_state_is_read_only_its_copies_editable() -> None:
    with two_routine_flow("sequential") as flow:
        job = flow.execute("source", {"count": 1})
        other = flow.execute("source", {"count": 1})
    state = job.routine_states["sink"]
    for change in (
        lambda: setattr(state, "status", "failed"),
        lambda: setattr(state, "note", 1),
        lambda: delattr(state, "status"),
    ):
        with pytest.raises(JobStateError, match="read-only: cannot set") as refused:
            change()
        assert "update_routine_state" in str(refused.value)
    assert other.routine_states["sink"] == {"status": "completed"}
    made = [
        copy.copy(state),
        copy.deepcopy(state),
        pickle.loads(pickle.dumps(state)),
        state.model_copy(),
        state.model_copy(deep=True),
    ]
    for plain in made:
        assert type(plain) is RoutineState
        assert plain == state and state == plain
        plain.status = "skipped"
        assert plain != state
    assert state.model_copy(update={"error": "e"}).error == "e"
    # Copies of the job hold editable states of their own.
    for twin in (copy.copy(job), copy.deepcopy(job), job.model_copy()):
        twin.routine_states["sink"].status = "skipped"
        assert twin.routine_states["sink"]["status"] == "skipped"
    assert state.status == "completed"
    assert other.routine_states["sink"]["status"] == "completed"
    # The job's own way to change a state still works, for this job only.
    job.update_routine_state("sink", {"status": "skipped"})
    assert job.routine_states["sink"]["status"] == "skipped"
    assert other.routine_states["sink"]["status"] == "completed"


def test_issue_8_a_finished_jobs_empty_lists_still_refuse_changes() -> None:
    with two_routine_flow("sequential") as flow:
        job = flow.execute("source", {"count": 1})
    for field in ("errors", "pending_tasks", "pause_points"):
        view = getattr(job, field)
        assert view == [] and isinstance(view, list)
        with pytest.raises(JobStateError) as refused:
            view.append({})
        assert str(refused.value) == (
            f"this job is run by a flow: its {field!r} are read-only "
            f"({field}.append() refused; list(job.{field}) is a copy you may change)"
        )
        assert type(copy.copy(view)) is list and pickle.loads(pickle.dumps(view)) == []
    assert job.errors == [] and job.pending_tasks == []


def test_issue_8_a_write_after_the_end_gives_the_job_a_list_of_its_own() -> None:
    with two_routine_flow("sequential") as flow:
        job, other = (
            flow.execute("source", {"count": 1}),
            flow.execute("source", {"count": 1}),
        )
    values = job.__dict__
    assert values["errors"] is other.__dict__["errors"]  # shared while empty
    own = writable_list(values, "errors")
    list.append(own, {"message": "late"})
    assert job.errors == [{"message": "late"}] and other.errors == []
    assert writable_list(values, "errors") is own  # its own from now on
    with pytest.raises(JobStateError, match=repr(job.job_id)):
        job.errors.clear()
    share_empty_lists(values)  # a non-empty list stays the job's own
    assert job.errors == [{"message": "late"}]


def test_issue_8_a_job_that_failed_keeps_its_own_errors() -> None:
    class Boom(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.take)

        def take(self, value: int) -> None:
            raise ValueError(f"bad {value}")

    with two_routine_flow("sequential", Boom()) as flow:
        job = flow.execute("source", {"count": 1})
    assert job.status == "failed"
    assert [error["message"] for error in job.errors] == ["bad 0"]
    assert job.routine_states["sink"]["status"] == "failed"
    assert type(job.errors) is OwnedList
    with pytest.raises(JobStateError, match=repr(job.job_id)):
        job.errors.pop()


def test_issue_8_the_tracker_records_what_arrived_not_the_handlers_changes() -> None:
    sink = WholePayload()
    with two_routine_flow("sequential", sink) as flow:
        job = flow.execute("source", {"count": 2})
        runs = flow.execution_tracker.routine_executions["sink"]
    assert job.status == "completed"
    assert sink.got == [{"value": "changed by the handler"}] * 2
    assert [run["params"] for run in runs] == [{"value": 0}, {"value": 1}]
    history = [r.data for r in job.execution_history if r.event_name == "output"]
    assert history == [{"value": 0}, {"value": 1}]


def test_issue_8_the_tracker_records_mapped_params_under_their_new_names() -> None:
    class Renamed(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.take)

        def take(self, number: int) -> None:
            pass

    flow = Flow("mapped")
    flow.add_routine(Source(), "source")
    flow.add_routine(Renamed(), "sink")
    flow.connect("source", "output", "sink", "input", param_mapping={"value": "number"})
    with flow:
        flow.execute("source", {"count": 1})
        runs = flow.execution_tracker.routine_executions["sink"]
    assert [run["params"] for run in runs] == [{"number": 0}]


def test_issue_8_a_kept_finished_job_leaves_few_objects_to_the_collector() -> None:
    with two_routine_flow("sequential") as flow:
        for _ in range(50):  # warm up: caches, routes, statistics
            flow.execute("source", {"count": 1})
        gc.collect()
        before = len(gc.get_objects())
        kept = [flow.execute("source", {"count": 1}) for _ in range(1_000)]
        gc.collect()
        per_job = (len(gc.get_objects()) - before) / len(kept)
    # JobState, its two dicts, routine_states, outputs, the job's lock, the
    # history log and its list: 8 (18 before the sharing).
    assert per_job < 9, per_job
    assert all(job.status == "completed" for job in kept)


def test_issue_8_the_shared_fields_set_of_run_jobs_refuses_changes() -> None:
    with two_routine_flow("sequential") as flow:
        job, other = (flow.execute("source", {"count": 1}) for _ in range(2))
    assert job.model_fields_set == {"flow_id"} and repr(job.model_fields_set) == (
        "{'flow_id'}"
    )
    with pytest.raises(JobStateError, match="read-only"):
        job.model_fields_set.add("status")
    assert other.model_fields_set == {"flow_id"}
    assert job.model_dump(exclude_unset=True) == {"flow_id": job.flow_id}
    twin = job.model_copy(update={"status": "failed"})
    twin.current_routine_id = "x"
    assert twin.status == "failed" and "current_routine_id" in twin.model_fields_set
    assert job.model_fields_set == {"flow_id"}


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_issue_8_a_finished_job_loaded_edited_and_resumed_runs_and_waits(
    strategy: str,
) -> None:
    # A document of a finished job shares the open latch; edited back to paused
    # (it is the user's own) and resumed, it gets a latch of its own again.
    sink = Sink()
    with two_routine_flow(strategy, sink) as flow:
        job = flow.execute("source", {"count": 1})
        assert job.wait(10)
        loaded = JobState.deserialize(job.serialize())
        assert loaded.is_done and loaded.wait(0)
        loaded.status = "paused"  # type: ignore[assignment]
        loaded.pending_tasks = [
            {"routine_id": "sink", "slot": "input", "payload": {"value": 5}}
        ]
        again = flow.resume(loaded)
        assert again is loaded and again.wait(10)
        assert again.status == "completed" and sorted(sink.seen) == [0, 5]
        assert again.result(0) == {"sink": 50}
