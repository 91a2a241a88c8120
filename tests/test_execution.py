"""Running flows: delivery, history, errors, context, on every strategy."""

from __future__ import annotations

from typing import Any

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, JobStatus, Routine

from .routines import Boom, Collector, Relay, Source


def run(flow: Flow, entry: str, params: dict[str, Any] | None = None) -> JobState:
    job = flow.execute(entry, params)
    assert flow.wait_for_completion(timeout=10)
    assert job.wait(timeout=1)
    return job


def chain(strategy: str) -> tuple[Flow, Collector]:
    flow = Flow(flow_id="chain", execution_strategy=strategy, max_workers=4)
    source = Source()
    source.set_config(count=3)
    relay = Relay()
    relay.set_config(add=10)
    sink = Collector()
    flow.add_routine(source, "src")
    flow.add_routine(relay, "relay")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "relay", "input")
    flow.connect("relay", "output", "sink", "input", {"value": "result"})
    return flow, sink


def test_chain_delivers_with_mapping(strategy: str) -> None:
    flow, sink = chain(strategy)
    with flow:
        job = run(flow, "src", {"tag": "t"})
    assert job.status == JobStatus.COMPLETED == "completed"
    assert sorted(item["result"] for item in sink.received) == [10, 11, 12]
    assert all(item["tag"] == "t" and "value" not in item for item in sink.received)
    assert job.routine_states["src"]["status"] == "completed"
    assert job.routine_states["sink"]["status"] == "completed"


def test_history_records_start_emits_and_completion(strategy: str) -> None:
    flow, _ = chain(strategy)
    with flow:
        job = run(flow, "src", {"tag": "t"})
    history = job.execution_history
    assert (history[0].routine_id, history[0].event_name, history[0].data) == (
        "src",
        "start",
        {"tag": "t"},
    )
    assert (history[-1].routine_id, history[-1].event_name) == ("src", "completed")
    emits = [(r.routine_id, r.event_name) for r in history[1:-1]]
    assert sorted(emits) == [("relay", "output")] * 3 + [("src", "output")] * 3
    assert [r.data for r in job.get_execution_history("src")][1:4] == [
        {"value": i, "tag": "t"} for i in range(3)
    ]


def test_sequential_runs_fifo_with_siblings_in_connection_order() -> None:
    order: list[str] = []

    class Named(Routine):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.label = name
            self.define_slot("input", handler=self.note)
            self.define_event("output")

        def note(self, **data: Any) -> None:
            order.append(self.label)
            if data.get("depth", 0) < 1:
                self.emit("output", depth=1)

    flow = Flow()
    source = Source()
    flow.add_routine(source, "src")
    for name in ("a", "b", "c"):
        flow.add_routine(Named(name), name)
    flow.add_routine(Named("a2"), "a2")
    flow.connect("src", "output", "a", "input")
    flow.connect("src", "output", "b", "input")
    flow.connect("src", "output", "c", "input")
    flow.connect("a", "output", "a2", "input")
    job = flow.execute("src")
    assert job.status == "completed"
    # Breadth first: a's child runs after b and c, which were queued before it.
    assert order == ["a", "b", "c", "a2"]


def test_slot_data_is_per_job(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy, max_workers=4)
    source = Source()
    source.set_config(count=3)
    sink = Collector("append")
    flow.add_routine(source, "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "output", "sink", "input")
    with flow:
        for _ in range(5):
            flow.execute("src")
        assert flow.wait_for_completion(timeout=10)
    longest = max(
        len(item["value"]) if isinstance(item["value"], list) else 1
        for item in sink.received
    )
    assert longest == 3  # never more than one job's three values


def flow_with_error(
    strategy: str, handler: ErrorHandler | None, on_routine: bool
) -> tuple[Flow, Collector, Boom]:
    flow = Flow(execution_strategy=strategy, max_workers=4)
    source = Source()
    source.set_config(count=2)
    boom = Boom()
    after = Collector()
    beside = Collector()
    flow.add_routine(source, "src")
    flow.add_routine(boom, "boom")
    flow.add_routine(after, "after")
    flow.add_routine(beside, "beside")
    flow.connect("src", "output", "boom", "input")
    flow.connect("src", "output", "beside", "input")
    flow.connect("boom", "output", "after", "input")
    if on_routine:
        boom.set_error_handler(handler)
    else:
        flow.set_error_handler(handler)
    return flow, after, boom


def test_stop_fails_the_job_and_records_the_error(strategy: str) -> None:
    flow, after, boom = flow_with_error(strategy, None, on_routine=False)
    with flow:
        job = run(flow, "src")
    assert job.status == "failed"
    state = job.routine_states["boom"]
    assert state["status"] == "failed" and state["error"] == "boom"
    assert state["error_type"] == "RuntimeError"
    assert after.received == []
    # Sequential: the second activation was still queued and is dropped. On the
    # pool both may have started before the first failed: running ones finish.
    assert (
        boom.get_stat("calls") == 1
        if strategy == "sequential"
        else 1 <= boom.get_stat("calls") <= 2
    )
    errors = job.errors
    assert len(errors) == boom.get_stat("calls")  # every raised error is recorded
    assert errors[0]["routine_id"] == "boom" and errors[0]["slot"] == "input"
    assert "RuntimeError: boom" in errors[0]["traceback"]
    assert any(
        r.event_name == "error" and r.routine_id == "boom"
        for r in job.execution_history
    )


@pytest.mark.parametrize("on_routine", [True, False])
def test_continue_records_and_goes_on(strategy: str, on_routine: bool) -> None:
    handler = ErrorHandler(strategy=ErrorStrategy.CONTINUE)
    flow, _, boom = flow_with_error(strategy, handler, on_routine)
    with flow:
        job = run(flow, "src")
    assert job.status == "completed"
    assert job.routine_states["boom"]["status"] == "error_continued"
    assert boom.get_stat("calls") == 2
    assert len(job.errors) == 2
    assert sum(r.event_name == "error_continued" for r in job.execution_history) == 2


def test_skip_marks_the_routine_skipped(strategy: str) -> None:
    flow, _, _boom = flow_with_error(strategy, ErrorHandler(strategy="skip"), True)
    with flow:
        job = run(flow, "src")
    assert job.status == "completed"
    assert job.routine_states["boom"]["status"] == "skipped"


def test_routine_handler_wins_over_flow_handler(strategy: str) -> None:
    flow, _, _boom = flow_with_error(strategy, ErrorHandler(strategy="continue"), True)
    flow.set_error_handler(ErrorHandler(strategy="stop"))
    with flow:
        job = run(flow, "src")
    assert job.status == "completed"


def test_retry_then_succeed(strategy: str) -> None:
    class Flaky(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self) -> None:
            if self.increment_stat("calls") < 3:
                raise ConnectionError("flaky")

    flaky = Flaky()
    flaky.set_error_handler(
        ErrorHandler(strategy="retry", max_retries=3, retry_delay=0.0)
    )
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(flaky, "flaky")
    with flow:
        job = run(flow, "flaky")
    assert job.status == "completed" and flaky.get_stat("calls") == 3


def test_entry_error_fails_job(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(Boom(), "boom")
    with flow:
        job = run(flow, "boom")
    assert job.status == "failed"


def test_execution_context_inside_and_outside(strategy: str) -> None:
    seen: list[Any] = []

    class Probe(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.look)

        def look(self) -> None:
            seen.append(self.get_execution_context())

    probe = Probe()
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(probe, "probe")
    with flow:
        job = run(flow, "probe")
    (context,) = seen
    assert (
        context.flow is flow
        and context.job_state is job
        and context.routine_id == "probe"
    )
    assert probe.get_execution_context() is None


def test_emit_outside_a_flow_delivers_directly() -> None:
    source = Source()
    sink = Collector()
    source.get_event("output").connect(sink.get_slot("input"))  # type: ignore[union-attr]
    source.emit("output", value=1)
    assert sink.received == [{"value": 1}]


def test_emit_with_flow_outside_a_job_uses_its_mapping() -> None:
    flow, sink = chain("sequential")
    relay = flow.routines["relay"]
    relay.emit("output", flow=flow, value=5)
    assert sink.received == [{"result": 5}]


def test_unknown_event_on_emit() -> None:
    with pytest.raises(ValueError, match="nosuch"):
        Source().emit("nosuch")


def test_tracker_uses_flow_ids(strategy: str) -> None:
    flow, _ = chain(strategy)
    with flow:
        run(flow, "src")
    tracker = flow.execution_tracker
    assert tracker is not None
    assert set(tracker.routine_executions) == {"src", "relay", "sink"}
    perf = tracker.get_routine_performance("relay")
    assert (
        perf is not None
        and perf["total_executions"] == 3
        and perf["success_rate"] == 1.0
    )
    assert tracker.get_flow_performance()["total_routines"] == 3
    targets = {
        (e["source_routine_id"], e["target_routine_id"]) for e in tracker.event_flow
    }
    assert targets == {("src", "relay"), ("relay", "sink")}
    stats = flow.get_stats()
    assert stats["routines"]["relay"]["total_executions"] == 3


def test_per_call_strategy_leaves_the_flow_alone() -> None:
    flow, sink = chain("sequential")
    with flow:
        job = flow.execute("src", execution_strategy="concurrent")
        assert flow.wait_for_completion(timeout=10)
    assert job.status == "completed" and len(sink.received) == 3
    assert flow.execution_strategy == "sequential"


def test_history_limit_caps_records() -> None:
    flow, _ = chain("sequential")
    flow.history_limit = 4
    job = flow.execute("src")
    assert len(job.execution_history) == 4


def test_routine_stats_and_helpers() -> None:
    routine = Relay()
    routine.set_stat("a", 1)
    assert routine.increment_stat("a", 2) == 3
    routine._track_operation("fetch", success=False, url="x")
    stats = routine.stats()
    assert stats["total_fetch"] == 1 and stats["failed_fetch"] == 1
    assert stats["fetch_history"] == [{"success": False, "url": "x"}]
    routine.reset_stats(["a"])
    assert routine.get_stat("a") is None and routine.get_stat("total_fetch") == 1
    routine.reset_stats()
    assert routine.stats() == {}
    extract = routine._extract_input_data
    assert extract([1]) == [1]
    assert extract(data=None, data2=5) == 5
    assert extract(a=1, b=2) == {"a": 1, "b": 2}
    assert extract() == {}
