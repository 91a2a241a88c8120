"""Issue 8: on the sequential strategy a queued call is a spec, not an object.

A chain whose source emits N events keeps about N calls queued for the whole
job (the FIFO is as wide as the job). As Activation objects every one would be
promoted to the collector's oldest generation and walked by its full
collections, which then came ever more often: the cost per hop grew with the
job. The lane now holds ``(number, payload, params)`` cells and the Activation
is made as it runs. These tests check that nothing queued is an object, and that
pauses, cancels, failures and async handlers keep exact counts on that path.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, FlowHooks, JobStatus, Routine
from routilux.runtime.activation import Activation

from .chain_routines import CountSource as Source
from .chain_routines import PassOn as Relay
from .chain_routines import chain as shared_chain


class Sink(Routine):
    def __init__(self, on_arrival: Any = None) -> None:
        super().__init__()
        self.define_slot("input", handler=self.arrive)
        self.seen: list[int] = []
        self.on_arrival = on_arrival
        self.activations_alive: list[int] = []

    def arrive(self, value: int) -> None:
        if value == 500:
            # This job's activations only: other tests' may await collection.
            job = self.get_execution_context().job_state
            self.activations_alive.append(
                sum(
                    type(o) is Activation and o.fair_key == job.job_id
                    for o in gc.get_objects()
                )
            )
        self.seen.append(value)
        if self.on_arrival is not None:
            self.on_arrival(value)


def chain(sink: Sink, relays: int = 3) -> Flow:
    return shared_chain(sink, relays)


def test_issue_8_queued_calls_are_not_objects() -> None:
    sink = Sink()
    flow = chain(sink)
    job = flow.execute("source", {"count": 2_000})
    assert job.status is JobStatus.COMPLETED
    assert sink.seen == list(range(2_000))
    # Halfway, about 2,000 calls were queued; none of them was an object (the
    # one running, and its parent's frame, are).
    assert sink.activations_alive and sink.activations_alive[0] < 10
    history = job.execution_history
    assert sum(1 for entry in history if entry.event_name == "output") == 2_000 * 4


class Remember(FlowHooks):
    """Keeps the jobs that start, so a handler can pause or cancel its own."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def on_job_start(self, job: Any) -> None:
        self.jobs.append(job)


@pytest.mark.parametrize("repeat", range(3))
def test_issue_8_a_cancel_drops_every_queued_spec_and_counts_them(
    repeat: int,
) -> None:
    hooks = Remember()

    def cancel_at(value: int) -> None:
        if value == 100:
            assert flow.cancel(hooks.jobs[0], reason="enough")

    sink = Sink(cancel_at)
    flow = chain(sink)
    flow.add_hooks(hooks)
    job = flow.execute("source", {"count": 400})
    assert job.status is JobStatus.CANCELLED
    assert sink.seen == list(range(101))
    (cancelled,) = [e for e in job.execution_history if e.event_name == "cancelled"]
    # Every call made and not run is dropped and counted: the source's 400
    # emits each make one call per hop down the chain (4 hops).
    calls = sum(1 for e in job.execution_history if e.event_name == "output")
    runs = sum(
        1
        for e in job.execution_history
        if e.event_name == "output" and e.routine_id != "source"
    )
    assert cancelled.data["dropped"] == calls - runs - len(sink.seen)


def test_issue_8_pausing_mid_queue_parks_specs_and_resume_finishes() -> None:
    hooks = Remember()

    def pause_at(value: int) -> None:
        if value == 50 and len(hooks.jobs) == 1:
            assert flow.pause(hooks.jobs[0], reason="hold")

    sink = Sink(pause_at)
    flow = chain(sink)
    flow.add_hooks(hooks)
    job = flow.execute("source", {"count": 300})
    assert job.status is JobStatus.PAUSED
    assert job.pending_tasks  # the queued specs, parked as activations
    flow.resume(job)
    assert job.wait(10)
    assert job.status is JobStatus.COMPLETED
    assert sorted(sink.seen) == list(range(300))
    assert len(sink.seen) == 300


def test_issue_8_a_failure_mid_queue_stops_the_job_with_exact_counts() -> None:
    class Failing(Relay):
        def relay(self, value: int) -> None:
            if value == 30:
                raise ValueError("thirty")
            super().relay(value)

    sink = Sink()
    flow = Flow(error_handler=ErrorHandler(strategy=ErrorStrategy.STOP))
    flow.add_routine(Source(), "source")
    flow.add_routine(Failing(), "relay")
    flow.add_routine(sink, "sink")
    flow.connect("source", "output", "relay", "input")
    flow.connect("relay", "output", "sink", "input")
    job = flow.execute("source", {"count": 100})
    assert job.status is JobStatus.FAILED
    assert [e.message for e in job.errors] == ["thirty"]
    # FIFO: the source's 100 calls to the relay were queued first, so the
    # sink's calls for 0..29 waited behind the relay's 31..99 when 30 failed.
    # The halt dropped all of those, and counted them.
    assert sink.seen == []
    (dropped,) = [e for e in job.execution_history if e.event_name == "dropped"]
    assert dropped.data == {"count": 69 + 30}


def test_issue_8_async_handlers_emit_into_a_spec_queue() -> None:
    class AsyncRelay(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("input", handler=self.relay)
            self.define_event("output", ["value"])

        async def relay(self, value: int) -> None:
            await asyncio.sleep(0)
            self.emit("output", value=value)

    sink = Sink()
    flow = Flow()
    flow.add_routine(Source(), "source")
    flow.add_routine(AsyncRelay(), "relay")
    flow.add_routine(sink, "sink")
    flow.connect("source", "output", "relay", "input")
    flow.connect("relay", "output", "sink", "input")
    job = flow.execute("source", {"count": 200})
    assert job.status is JobStatus.COMPLETED
    assert sorted(sink.seen) == list(range(200))


def test_issue_8_jobs_on_many_threads_share_no_queue() -> None:
    # Sequential jobs run by several threads at once: each lane keeps its own
    # specs and builds them for its own job.
    sinks = [Sink() for _ in range(4)]
    flows = [chain(sink, relays=2) for sink in sinks]
    errors: list[BaseException] = []

    def run(flow: Flow) -> None:
        try:
            for _ in range(5):
                job = flow.execute("source", {"count": 300})
                assert job.status is JobStatus.COMPLETED
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(flow,)) for flow in flows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    for sink in sinks:
        assert sorted(sink.seen) == sorted(list(range(300)) * 5)


def test_issue_8_with_a_store_released_calls_queue_as_specs(tmp_path: Any) -> None:
    # With a store, an emit's calls are objects until their parent's step lists
    # them by key; then they wait in the lane as specs, keys kept.
    from routilux.persistence import SQLiteCheckpointStore

    store = SQLiteCheckpointStore(tmp_path / "jobs.sqlite")
    try:
        sink = Sink()
        flow = chain(sink, relays=2)
        flow.checkpoint_store = store
        job = flow.execute("source", {"count": 1_000})
        assert job.status is JobStatus.COMPLETED
        assert sink.seen == list(range(1_000))
        assert sink.activations_alive and sink.activations_alive[0] < 10
        stored = store.load(job.job_id)
        assert stored["status"] == "completed"
        assert store.pending(job.job_id) == []
    finally:
        store.close()


def test_issue_8_a_ctrl_c_while_a_queued_call_is_made_ends_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A KeyboardInterrupt in the caller's thread while the lane makes a queued
    # call's Activation: the call is settled as failed, the job stops and
    # settles, and execute raises the interrupt only then. Nothing waits for ever.
    from routilux.runtime.ledger import emitting

    made = [0]
    real = emitting.Activation

    def interrupted(*args: Any, **kwargs: Any) -> Activation:
        made[0] += 1
        if made[0] == 20:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(emitting, "Activation", interrupted)
    sink = Sink()
    flow = chain(sink)
    hooks = Remember()
    flow.add_hooks(hooks)
    with pytest.raises(KeyboardInterrupt):
        flow.execute("source", {"count": 50})
    (job,) = hooks.jobs
    assert job.wait(5)
    assert job.status is JobStatus.FAILED
    assert [e.error_type for e in job.errors] == ["KeyboardInterrupt"]
    assert flow.wait_for_completion(5)
    # The next job on the flow runs as usual.
    monkeypatch.setattr(emitting, "Activation", real)
    assert flow.execute("source", {"count": 5}).status is JobStatus.COMPLETED
