"""Issue 8: a JobState a flow runs is a view users cannot corrupt, containers too.

Assigning a field of an owned job was already refused; its lists and dicts
(``errors``, ``routine_states``, ``pending_tasks``, ``pause_points``) now refuse
every change in place, while the runtime keeps writing them. A JobState built by
hand or loaded from a document stays freely editable, as 0.9 code expects.
"""

from __future__ import annotations

import copy
import json
import pickle
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobFailedError,
    JobState,
    JobStateError,
    JobStatus,
    Routine,
)

from .routines import Boom, Source

if TYPE_CHECKING:
    from collections.abc import Callable

LIST_FIELDS = ("errors", "pending_tasks", "pause_points")


def add_in_place(container: Any) -> None:
    container += [{"x": 1}]


def repeat_in_place(container: Any) -> None:
    container *= 2


def merge_in_place(container: Any) -> None:
    container |= {"x": {"status": "completed"}}


#: Every way to change a list in place, each given a list holding one item.
LIST_CHANGES: dict[str, Callable[[Any], Any]] = {
    "append": lambda c: c.append({"x": 1}),
    "extend": lambda c: c.extend([{"x": 1}]),
    "insert": lambda c: c.insert(0, {"x": 1}),
    "remove": lambda c: c.remove(c[0]),
    "pop": lambda c: c.pop(),
    "clear": lambda c: c.clear(),
    "sort": lambda c: c.sort(key=repr),
    "reverse": lambda c: c.reverse(),
    "setitem": lambda c: c.__setitem__(0, {"x": 1}),
    "setslice": lambda c: c.__setitem__(slice(0, 1), []),
    "delitem": lambda c: c.__delitem__(0),
    "iadd": add_in_place,
    "imul": repeat_in_place,
}

#: Every way to change a dict in place, each given a dict holding one key.
DICT_CHANGES: dict[str, Callable[[Any], Any]] = {
    "setitem": lambda c: c.__setitem__("x", {"status": "completed"}),
    "delitem": lambda c: c.__delitem__(next(iter(c))),
    "pop": lambda c: c.pop(next(iter(c))),
    "popitem": lambda c: c.popitem(),
    "clear": lambda c: c.clear(),
    "update": lambda c: c.update(x={"status": "completed"}),
    "setdefault": lambda c: c.setdefault("x", {"status": "completed"}),
    "ior": merge_in_place,
}


class Pauser(Routine):
    """Fails on value 1 (its policy goes on), pauses its job on value 2."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.define_slot("input", handler=self.take)
        self.set_error_handler(ErrorHandler(strategy=ErrorStrategy.CONTINUE))

    def take(self, value: int) -> None:
        self.seen.append(value)
        if value == 1:
            raise ValueError("one is odd")
        if value == 2:
            context = self.get_execution_context()
            assert context is not None
            context.flow.pause(context.job_state, reason="half way")


def pausing_flow(strategy: str) -> tuple[Flow, Pauser]:
    """src emits 0..5 to a Pauser; one worker, so the pause always holds 3..5."""
    flow = Flow("views", execution_strategy=strategy, max_workers=1)
    source = Source()
    source.set_config(count=6)
    pauser = Pauser()
    flow.add_routine(source, "src")
    flow.add_routine(pauser, "pauser")
    flow.connect("src", "output", "pauser", "input")
    return flow, pauser


def paused_job(flow: Flow) -> JobState:
    """A paused job whose four containers all hold something."""
    job = flow.execute("src")
    assert job.wait(10) and job.status == "paused"
    assert job.is_owned
    assert [task["payload"]["value"] for task in job.pending_tasks] == [3, 4, 5]
    assert len(job.errors) == 1 and len(job.pause_points) == 1
    assert set(job.routine_states) == {"src", "pauser"}
    return job


def test_issue_8_every_change_to_an_owned_jobs_containers_is_refused(
    strategy: str,
) -> None:
    flow, _ = pausing_flow(strategy)
    with flow:
        job = paused_job(flow)
        before = job.serialize()
        for field in LIST_FIELDS:
            for name, change in LIST_CHANGES.items():
                with pytest.raises(JobStateError) as refused:
                    change(getattr(job, field))
                message = str(refused.value)
                assert repr(job.job_id) in message, name
                assert f"its {field!r} are read-only" in message, name
        for change in DICT_CHANGES.values():
            with pytest.raises(JobStateError, match="'routine_states' are read-only"):
                change(job.routine_states)
        assert job.serialize() == before  # errors, states, history: all as they were
        assert len(job.execution_history) == len(before["execution_history"])


def test_issue_8_the_refusal_says_what_was_refused_and_what_to_do() -> None:
    flow, _ = pausing_flow("sequential")
    with flow:
        job = paused_job(flow)
        with pytest.raises(JobStateError) as refused:
            job.errors.clear()
        assert str(refused.value) == (
            f"job {job.job_id!r} is run by a flow: its 'errors' are read-only "
            "(errors.clear() refused; list(job.errors) is a copy you may change)"
        )
        with pytest.raises(JobStateError, match=r"routine_states\[\.\.\.\] = \.\.\."):
            job.routine_states["x"] = job.routine_states["src"]
        with pytest.raises(JobStateError, match=r"dict\(job\.routine_states\)"):
            job.routine_states |= {}
        flow.cancel(job)


def test_issue_8_owned_containers_read_as_plain_lists_and_dicts(strategy: str) -> None:
    flow, _ = pausing_flow(strategy)
    with flow:
        job = paused_job(flow)
        for field in LIST_FIELDS:
            view = getattr(job, field)
            assert isinstance(view, list) and view == list(view)
            assert list(view) == view and repr(view) == repr(list(view))
        assert isinstance(job.routine_states, dict)
        assert job.routine_states == dict(job.routine_states)
        assert job.pause_points[-1]["reason"] == "half way"
        dumped = job.model_dump()
        assert type(dumped["errors"]) is list and type(dumped["routine_states"]) is dict
        document = json.loads(job.model_dump_json())
        assert document["pending_tasks"] == job.serialize()["pending_tasks"]
        assert document["errors"][0]["message"] == "one is odd"


def test_issue_8_copies_of_owned_containers_are_plain_and_editable() -> None:
    flow, _ = pausing_flow("sequential")
    with flow:
        job = paused_job(flow)
        for field in (*LIST_FIELDS, "routine_states"):
            view = getattr(job, field)
            plain: type[Any] = type(view).__mro__[1]  # list or dict
            copies: list[Any] = [
                copy.copy(view),
                copy.deepcopy(view),
                pickle.loads(pickle.dumps(view)),
                view.copy(),
                plain(view),
            ]
            for made in copies:
                assert type(made) is plain and made == view, field
                made.clear()
            assert view, field  # the job's own is untouched
        deep = copy.deepcopy({"a": job.errors, "b": job.errors})
        assert deep["a"] is deep["b"]  # the memo is kept
        assert type(job.errors[:]) is list


def test_issue_8_a_hand_built_job_stays_editable() -> None:
    job = JobState("mine")
    assert not job.is_owned
    job.status = JobStatus.RUNNING
    job.errors.append({"routine_id": "a", "message": "old style"})  # type: ignore[arg-type]
    job.routine_states["a"] = {"status": "completed"}  # type: ignore[assignment]
    job.pending_tasks.append({"routine_id": "a", "slot": "input", "payload": {}})
    job.pause_points.append({"reason": "mine"})
    for field in LIST_FIELDS:
        assert type(getattr(job, field)) is list
    job.routine_states.pop("a")
    job.errors.clear()
    assert job.errors == [] and job.routine_states == {}


def test_issue_8_a_loaded_job_is_editable_until_a_flow_resumes_it(
    strategy: str,
) -> None:
    flow, _ = pausing_flow(strategy)
    with flow:
        job = paused_job(flow)
        document = job.serialize()
        flow.cancel(job)
    loaded = JobState.deserialize(document)
    assert loaded.serialize() == document
    assert not JobState.deserialize(document).is_owned
    edited = JobState.deserialize(document)
    edited.errors.clear()
    edited.routine_states.pop("pauser")
    edited.pending_tasks.pop()
    edited.pause_points.append({"reason": "again"})
    assert (len(edited.errors), len(edited.pending_tasks)) == (0, 2)
    built = JobState("f", errors=list(loaded.errors))
    built.errors.clear()  # a JobState made from an owned job's values is the user's

    there, pauser = pausing_flow(strategy)
    with there:
        resumed = there.resume(loaded)
        assert resumed is loaded and loaded.wait(10)
        assert loaded.status == "completed" and pauser.seen == [3, 4, 5]
        assert loaded.is_owned and loaded.pending_tasks == []
        with pytest.raises(JobStateError, match="'pending_tasks' are read-only"):
            loaded.pending_tasks.append({})
        with pytest.raises(JobStateError, match="'errors' are read-only"):
            loaded.errors.clear()
        assert loaded.errors[0]["message"] == "one is odd"  # kept from the document


def test_issue_8_pause_and_resume_still_write_the_containers(strategy: str) -> None:
    flow, pauser = pausing_flow(strategy)
    with flow:
        job = paused_job(flow)
        held = job.pending_tasks
        assert flow.resume(job) is job
        assert job.wait(10) and job.status == "completed"
        assert pauser.seen == [0, 1, 2, 3, 4, 5]
        assert job.pending_tasks == [] and len(held) == 3  # a new (empty) list
        assert [point["reason"] for point in job.pause_points] == ["half way"]
        assert job.routine_states["pauser"]["status"] == "error_continued"
        with pytest.raises(JobStateError, match="'pending_tasks' are read-only"):
            job.pending_tasks.append({})


def test_issue_8_a_cancelled_paused_job_holds_no_tasks(strategy: str) -> None:
    flow, _ = pausing_flow(strategy)
    with flow:
        job = paused_job(flow)
        assert flow.cancel(job, reason="enough")
        assert job.wait(10) and job.status == "cancelled"
        assert job.pending_tasks == []
        with pytest.raises(JobStateError, match="'pending_tasks' are read-only"):
            job.pending_tasks.extend([{}])


def test_issue_8_a_failing_job_still_records_its_errors(strategy: str) -> None:
    flow = Flow("failing", execution_strategy=strategy, max_workers=2)
    flow.add_routine(Boom(), "boom")
    with flow:
        job = flow.execute("boom")
        assert job.wait(10) and job.status == "failed"
    assert [error["routine_id"] for error in job.errors] == ["boom"]
    assert job.routine_states["boom"]["status"] == "failed"
    with pytest.raises(JobFailedError):
        job.result()
    with pytest.raises(JobStateError, match="'errors' are read-only"):
        job.errors.pop()
    assert len(job.errors) == 1


def test_issue_8_update_routine_state_works_on_an_owned_job(strategy: str) -> None:
    seen: list[bool] = []

    class Noter(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.note)

        def note(self) -> None:
            context = self.get_execution_context()
            assert context is not None
            seen.append(context.job_state.is_owned)
            context.job_state.update_routine_state("noted", {"status": "completed"})

    flow = Flow("noting", execution_strategy=strategy)
    flow.add_routine(Noter(), "noter")
    with flow:
        job = flow.execute("noter")
        assert job.wait(10) and job.status == "completed"
    assert seen == [True]
    job.update_routine_state("after", {"status": "skipped", "why": "late"})
    assert job.routine_states["noted"]["status"] == "completed"
    assert job.get_routine_state("after") == {"status": "skipped", "why": "late"}
    with pytest.raises(JobStateError, match="'routine_states' are read-only"):
        job.routine_states.pop("after")
