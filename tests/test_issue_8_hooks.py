"""Issue 8: FlowHooks, OpenTelemetry spans, logging and flow-wide statistics."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from routilux import (
    ActivationInfo,
    ConfigurationError,
    Flow,
    FlowHooks,
    JobState,
    JobStatus,
    Outcome,
)
from routilux.telemetry import OpenTelemetryHooks
from tests.routines import Boom, Collector, Relay, Source

WAIT = 10.0
FAN = 6


def diamond(strategy: str) -> Flow:
    """src -> FAN relays -> one collector (fan-out, then fan-in)."""
    flow = Flow(execution_strategy=strategy, max_workers=4)
    source = Source()
    source.set_config(count=3)
    flow.add_routine(source, "src")
    flow.add_routine(Collector(), "sink")
    for index in range(FAN):
        flow.add_routine(Relay(), f"r{index}")
        flow.connect("src", "output", f"r{index}", "input")
        flow.connect(f"r{index}", "output", "sink", "input")
    return flow


class Recorder(FlowHooks):
    """Records every hook call in order (thread-safe)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def _add(self, name: str, key: Any) -> None:
        with self._lock:
            self.calls.append((name, key))

    def on_job_start(self, job: JobState) -> None:
        self._add("job_start", job.job_id)

    def on_activation_start(self, job: JobState, activation: ActivationInfo) -> None:
        self._add("start", activation.activation_id)

    def on_activation_end(
        self, job: JobState, activation: ActivationInfo, outcome: Outcome
    ) -> None:
        assert outcome.ok
        self._add("end", activation.activation_id)

    def on_error(
        self, job: JobState, activation: ActivationInfo | None, error: BaseException
    ) -> None:
        self._add("error", activation.activation_id if activation else None)

    def on_job_end(self, job: JobState) -> None:
        self._add("job_end", job.status.value)


def check_sequence(calls: list[tuple[str, Any]], activations: int) -> None:
    assert calls[0][0] == "job_start"
    assert calls[-1][0] == "job_end"
    assert [name for name, _ in calls].count("job_start") == 1
    per: dict[Any, list[str]] = defaultdict(list)
    for name, key in calls[1:-1]:
        per[key].append(name)
    assert len(per) <= activations  # ids may be reused once an activation ended
    assert sum(len(names) for names in per.values()) == 2 * activations
    for names in per.values():
        # Each activation: start, then end or error (ids of ended ones may recur).
        assert names[0::2] == ["start"] * (len(names) // 2)
        assert all(name in ("end", "error") for name in names[1::2])


@pytest.mark.parametrize("repeat", range(5))
def test_issue_8_hook_sequence_on_fan_out_fan_in(strategy: str, repeat: int) -> None:
    flow = diamond(strategy)
    recorder = Recorder()
    flow.add_hooks(recorder)
    with flow:
        job = flow.execute("src")
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED
    activations = 1 + 3 * FAN + 3 * FAN  # trigger, relays, collector calls
    check_sequence(recorder.calls, activations)
    assert recorder.calls[-1] == ("job_end", "completed")


class Raising(FlowHooks):
    """Raises in every hook."""

    def on_job_start(self, job: JobState) -> None:
        raise RuntimeError("start hook broke")

    def on_activation_end(
        self, job: JobState, activation: ActivationInfo, outcome: Outcome
    ) -> None:
        time.sleep(0)  # let other workers overtake: job end must still come last
        raise ValueError("end hook broke")


@pytest.mark.parametrize("repeat", range(5))
def test_issue_8_a_raising_hook_is_recorded_and_the_job_completes(
    strategy: str, repeat: int
) -> None:
    flow = diamond(strategy)
    flow.add_hooks(Raising())
    recorder = Recorder()
    flow.add_hooks(recorder)  # hooks after a broken one still run
    with flow:
        job = flow.execute("src")
        assert job.wait(WAIT)
    assert job.status is JobStatus.COMPLETED
    hook_errors = [e for e in job.errors if e.routine_id == "<hooks>"]
    assert {e.error_type for e in hook_errors} == {"RuntimeError", "ValueError"}
    assert sum(e.slot == "Raising.on_activation_end" for e in hook_errors) == (
        1 + 6 * FAN
    )
    assert recorder.calls[-1] == ("job_end", "completed")


def test_issue_8_error_hook_gets_the_handler_error(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(Boom(), "boom")
    recorder = Recorder()
    flow.add_hooks(recorder)
    with flow:
        job = flow.execute("boom")
        assert job.wait(WAIT)
    names = [name for name, _ in recorder.calls]
    assert names == ["job_start", "start", "error", "job_end"]
    assert recorder.calls[-1] == ("job_end", "failed")


def test_issue_8_add_hooks_refuses_other_objects() -> None:
    flow = Flow()
    with pytest.raises(ConfigurationError, match="FlowHooks"):
        flow.add_hooks(object())  # type: ignore[arg-type]


def test_issue_8_otel_span_per_activation_under_the_job_span(strategy: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    flow = diamond(strategy)
    flow.add_hooks(OpenTelemetryHooks(tracer_provider=provider))
    with flow:
        job = flow.execute("src")
        assert job.wait(WAIT)
    spans = exporter.get_finished_spans()
    jobs = [s for s in spans if s.name == "routilux.job"]
    activations = [s for s in spans if s.name.startswith("routilux.activation")]
    assert len(jobs) == 1
    assert len(activations) == 1 + 6 * FAN
    job_span = jobs[0]
    assert job_span.attributes is not None
    assert job_span.attributes["routilux.status"] == "completed"
    for span in activations:
        assert span.parent is not None
        assert span.parent.span_id == job_span.context.span_id
        assert span.context.trace_id == job_span.context.trace_id
        assert span.attributes is not None
        assert span.attributes["routilux.outcome"] == "ok"
        assert span.attributes["routilux.attempt"] == 1
    routines = sorted(
        str(s.attributes["routilux.routine_id"]) for s in activations if s.attributes
    )
    assert routines.count("sink") == 3 * FAN
    assert job.job_id == job_span.attributes["routilux.job_id"]


def test_issue_8_otel_failed_activation_is_an_error_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    flow = Flow()
    flow.add_routine(Boom(), "boom")
    flow.add_hooks(OpenTelemetryHooks(tracer_provider=provider))
    flow.execute("boom")
    (activation,) = [
        s for s in exporter.get_finished_spans() if s.name.startswith("routilux.act")
    ]
    assert activation.attributes is not None
    assert activation.attributes["routilux.outcome"] == "error"
    assert not activation.status.is_ok
    assert activation.events[0].name == "exception"


def test_issue_8_logging_names_job_and_routine(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = Flow()
    flow.add_routine(Boom(), "boom")
    with caplog.at_level(logging.DEBUG, logger="routilux"):
        job = flow.execute("boom")
    records = [r for r in caplog.records if r.name.startswith("routilux")]
    assert records
    raised = [r for r in records if "raised" in r.getMessage()]
    assert raised[0].levelno == logging.WARNING
    assert raised[0].__dict__["job_id"] == job.job_id
    assert raised[0].__dict__["routine_id"] == "boom"
    assert all(r.__dict__.get("job_id") == job.job_id for r in records)


def test_issue_8_library_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("routilux").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_issue_8_get_stats_covers_every_job(strategy: str) -> None:
    flow = diamond(strategy)
    flow.add_routine(Boom(), "boom")
    with flow:
        for _ in range(4):
            assert flow.execute("src").wait(WAIT)
        assert flow.execute("boom").wait(WAIT)
        stats = flow.get_stats()
    assert stats["jobs"] == {"completed": 4, "failed": 1}
    sink = stats["routines"]["sink"]
    assert sink["total_executions"] == 4 * 3 * FAN
    assert sink["failed"] == 0
    assert 0 <= sink["p50_execution_time"] <= sink["p95_execution_time"]
    assert stats["routines"]["boom"]["failed"] == 1
    pool = stats["strategies"][flow.execution_strategy]
    assert pool["workers"] == flow.max_workers


def test_issue_8_outcomes_list_what_the_handler_emitted(strategy: str) -> None:
    outcomes: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    guard = threading.Lock()

    class Emits(FlowHooks):
        def on_activation_end(
            self, job: JobState, activation: ActivationInfo, outcome: Outcome
        ) -> None:
            with guard:
                outcomes.setdefault(activation.routine_id, []).extend(outcome.emitted)

    flow = diamond(strategy)
    flow.add_hooks(Emits())
    with flow:
        assert flow.execute("src").wait(WAIT)
    assert [data["value"] for _, data in outcomes["src"]] == [0, 1, 2]
    assert all(event == "output" for event, _ in outcomes["src"])
    assert sorted(data["value"] for _, data in outcomes["r0"]) == [0, 1, 2]
    assert outcomes["sink"] == []
