"""Issue 11: routilux 0.9 programs that did not run, written as 0.9 code does."""

from __future__ import annotations

import pytest

from routilux import (
    Flow,
    JobState,
    JobStateError,
    JobStatus,
    Routine,
    SerializationError,
)


class Step(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.run)
        self.define_event("output", ["value"])

    def run(self, **params: object) -> None:
        self.emit("output", value=1)


# -- JobState().deserialize(data) fills the instance (0.9's user guide) ---------


def test_instance_deserialize_fills_the_instance() -> None:
    flow = Flow(flow_id="f")
    flow.add_routine(Step(), "entry")
    job = flow.execute("entry")
    data = job.serialize()

    job_state2 = JobState()
    returned = job_state2.deserialize(data)

    assert returned is job_state2
    assert job_state2.job_id == job.job_id
    assert job_state2.flow_id == "f"
    assert job_state2.status == JobStatus.COMPLETED
    assert [r.event_name for r in job_state2.execution_history] == [
        r.event_name for r in job.execution_history
    ]
    assert job_state2.is_done and not job_state2.is_owned
    job_state2.status = JobStatus.PAUSED  # loaded: editable, as 0.9 expects
    assert JobState.deserialize(data).status == JobStatus.COMPLETED  # class call


def test_instance_deserialize_of_a_bad_document_leaves_the_instance() -> None:
    job_state = JobState("mine")
    before = job_state.serialize()
    with pytest.raises(SerializationError, match="status"):
        job_state.deserialize({**before, "status": "exploded"})
    assert job_state.serialize() == before


def test_instance_deserialize_refuses_a_job_a_flow_runs() -> None:
    flow = Flow(flow_id="f")
    flow.add_routine(Step(), "entry")
    job = flow.execute("entry")
    with pytest.raises(JobStateError, match="run by a flow"):
        job.deserialize(JobState("f").serialize())


# -- pause, resume, cancel of a finished job: no effect, and they say so --------


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_pause_resume_cancel_of_a_finished_job(strategy: str) -> None:
    flow = Flow(flow_id="f", execution_strategy=strategy)
    flow.add_routine(Step(), "entry")
    try:
        job = flow.execute("entry")
        assert job.wait(10)
        history = len(job.execution_history)
        assert flow.pause(job) is False
        assert flow.cancel(job) is False
        assert flow.resume(job) is job
        assert job.status == JobStatus.COMPLETED
        assert job.pause_points == []
        assert len(job.execution_history) == history
    finally:
        flow.shutdown(wait=True)


# -- entry routines written with __call__ and no trigger slot (0.9's guide) -----


class CallEntry(Routine):
    """0.9's entry routine: __call__ emits, no trigger slot."""

    def __init__(self) -> None:
        super().__init__()
        self.output_event = self.define_event("output", ["data"])

    def __call__(self, **kwargs: object) -> None:
        data = kwargs.get("data", "default")
        self.emit("output", data=data)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[object] = []
        self.input_slot = self.define_slot("input", handler=self.process)

    def process(self, data: object = None, **_: object) -> object:
        self.received.append(data)
        return data


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_an_entry_routine_with_call_and_no_trigger_slot(strategy: str) -> None:
    flow = Flow(flow_id="f", execution_strategy=strategy)
    entry = flow.add_routine(CallEntry(), "entry")
    sink = Sink()
    flow.add_routine(sink, "sink")
    flow.connect(entry, "output", "sink", "input")
    try:
        job = flow.execute(entry, entry_params={"data": "hello"})
        assert job.wait(10)
        assert job.status == JobStatus.COMPLETED
        assert sink.received == ["hello"]
        assert job.result() == {"sink": "hello"}
        assert flow.validate() == [] or all(
            f.severity != "error" for f in flow.validate()
        )
        assert flow.routines["entry"].get_slot("trigger") is None  # not declared
    finally:
        flow.shutdown(wait=True)


def test_a_routine_with_neither_still_cannot_start_a_job() -> None:
    from routilux import EntryPointError

    flow = Flow(flow_id="f")
    flow.add_routine(Sink(), "sink")
    with pytest.raises(EntryPointError, match=r"'sink'.*no 'trigger' slot"):
        flow.execute("sink")
