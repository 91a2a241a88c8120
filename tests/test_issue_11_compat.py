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


# -- ExecutionTracker(flow_id=...) as SPEC lists it ------------------------------


def test_execution_tracker_api_as_documented() -> None:
    from routilux import ExecutionTracker

    tracker = ExecutionTracker(flow_id="f")
    tracker.record_routine_end("never_started")  # ignored: no start recorded
    tracker.record_routine_start("a", {"x": 1})
    tracker.record_routine_end("a", result=3)
    tracker.record_routine_start("a", {"x": 2})
    tracker.record_routine_end("a", status="failed", error="boom")
    tracker.record_event("a", "out", "b", {"v": 1})
    runs = tracker.routine_executions
    assert list(runs) == ["a"]
    assert [r["status"] for r in runs["a"]] == ["completed", "failed"]
    assert runs["a"][0]["result"] == 3 and runs["a"][1]["error"] == "boom"
    assert runs["a"][0]["params"] == {"x": 1}
    [event] = tracker.event_flow
    assert (event["source_routine_id"], event["target_routine_id"]) == ("a", "b")
    performance = tracker.get_routine_performance("a")
    assert performance is not None
    assert (performance["total_executions"], performance["failed"]) == (2, 1)
    assert performance["success_rate"] == 0.5
    assert tracker.get_routine_performance("nobody") is None
    flow_figures = tracker.get_flow_performance()
    assert (flow_figures["total_routines"], flow_figures["total_events"]) == (1, 1)
    assert set(tracker.performance_metrics) == {"routines", "flow"}


# -- a handler reads and resets its slot's data (0.9's advanced patterns) ------


class Numbers(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, **_: object) -> None:
        for value in range(7):
            self.emit("output", value=value)


class Aggregator(Routine):
    """0.9's tutorial aggregator: once 3 have arrived, process them and reset."""

    def __init__(self, atomic: bool) -> None:
        super().__init__()
        self.atomic = atomic
        self.batches: list[list[int]] = []
        self.input_slot = self.define_slot(
            "input", handler=self.collect, merge_strategy="append"
        )

    def collect(self, **_: object) -> None:
        if self.atomic:
            values = _as_list(self.input_slot.data.get("value"))
            if len(values) >= 3:
                self.batches.append(_as_list(self.input_slot.take().get("value")))
            return
        values = _as_list(self.input_slot._data.get("value"))
        if len(values) >= 3:
            self.batches.append(values)
            self.input_slot._data = {}


def _as_list(value: object) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("strategy", "atomic"),
    [("sequential", False), ("sequential", True), ("concurrent", True)],
)
def test_a_handler_reads_and_resets_its_slot_data(strategy: str, atomic: bool) -> None:
    # The slot's data is what arrived in this job so far: in the sequential
    # strategy all seven arrive before the first call, so the first call takes
    # them all; later calls find less than three. Nothing is taken twice.
    aggregator = Aggregator(atomic)
    aggregator.set_max_concurrency(1)
    flow = Flow(flow_id="f", execution_strategy=strategy)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(aggregator, "agg")
    flow.connect("numbers", "output", "agg", "input")
    try:
        job = flow.execute("numbers")
        assert job.wait(10) and job.status == JobStatus.COMPLETED
        taken = [v for batch in aggregator.batches for v in batch]
        assert len(taken) == len(set(taken))  # nothing taken twice
        assert all(len(batch) >= 3 for batch in aggregator.batches)
        if strategy == "sequential":
            assert aggregator.batches == [list(range(7))]
    finally:
        flow.shutdown(wait=True)


def test_slot_data_public_api_in_and_out_of_jobs() -> None:
    seen: list[dict[str, object]] = []

    class Peek(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.slot = self.define_slot(
                "input", handler=self.peek, merge_strategy="append"
            )
            self.other = self.define_slot("other", handler=self.peek)

        def peek(self, **_: object) -> None:
            copy = self.slot.data
            seen.append(dict(copy))
            copy["value"] = "mine"  # a copy: the job's data is not changed
            if len(seen) == 2:
                self.slot.reset()

    peek = Peek()
    flow = Flow(flow_id="f")
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(peek, "peek")
    flow.connect("numbers", "output", "peek", "input")
    flow.execute("numbers")
    # all seven arrived before the first call; the second call resets, and
    # later calls find nothing kept (arrivals after a reset would start afresh)
    assert seen == [{"value": list(range(7))}] * 2 + [{}] * 5
    # outside any job: what direct delivery keeps
    peek.slot.receive({"value": "x"})
    assert peek.slot.data == {"value": "x"}
    peek.slot.reset()
    assert peek.slot.data == {}
