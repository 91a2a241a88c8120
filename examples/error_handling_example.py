"""Error handling in routilux, in six short parts.

1. The four error strategies (STOP, CONTINUE, SKIP, RETRY) on one small flow.
2. A flaky routine that succeeds on its third call under RETRY.
3. A routine timeout: the job goes on at the deadline, the late emit reaches no one.
4. A circuit breaker that opens after three failures, fails fast, then closes.
5. Cancelling a running concurrent job.
6. Pausing a concurrent job and resuming it.

Nothing sleeps for long: waits are short retry delays and threading.Events, so the
six parts together take well under a second. Run it with
``python examples/error_handling_example.py``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobState,
    Routine,
)

# --------------------------------------------------------------------------
# Printing helpers
# --------------------------------------------------------------------------


def header(title: str) -> None:
    print()
    print(f"=== {title} ===")


def show_job(job: JobState) -> None:
    """Print what a finished job recorded: status, routine states, errors."""
    print(f"job status: {job.status}")
    states = ", ".join(
        f"{rid}={state['status']}" for rid, state in sorted(job.routine_states.items())
    )
    print(f"routine states: {states}")
    for error in job.errors:
        print(
            f"error: {error['routine_id']} raised {error['error_type']} "
            f"(attempt {error['attempt']}): {error['message']}"
        )
    events = [f"{r.routine_id}:{r.event_name}" for r in job.execution_history]
    print(f"history: {' -> '.join(events)}")


# --------------------------------------------------------------------------
# Routines
# --------------------------------------------------------------------------


class Start(Routine):
    """Entry routine: emits one record."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("output", ["record"])

    def go(self, **_params: Any) -> None:
        self.emit("output", record=42)


class Fragile(Routine):
    """Raises ValueError on every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.define_slot("input", handler=self.parse)
        self.define_event("output", ["record"])

    def parse(self, record: int) -> None:
        self.calls += 1
        raise ValueError(f"cannot parse record {record}")


class Sink(Routine):
    """Collects what it receives (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.guard = threading.Lock()
        self.define_slot("input", handler=self.take)

    def take(self, **data: Any) -> None:
        with self.guard:
            self.received.append(data)


def make_failing_flow() -> Flow:
    """start -> fragile (STOP, the default) -> report: every job fails.

    For the command line: ``routilux run
    examples/error_handling_example.py:make_failing_flow`` exits 1.
    """
    flow = Flow(flow_id="failing")
    flow.add_routine(Start(), "start")
    flow.add_routine(Fragile(), "fragile")
    flow.add_routine(Sink(), "report")
    flow.connect("start", "output", "fragile", "input")
    flow.connect("fragile", "output", "report", "input")
    return flow


# --------------------------------------------------------------------------
# 1. The four strategies
# --------------------------------------------------------------------------


def strategies() -> None:
    header("1. The four error strategies")
    print("flow: start -> fragile -> report, and start -> audit")
    for strategy in ErrorStrategy:
        fragile = Fragile()
        report, audit = Sink(), Sink()
        # The routine's own handler applies; without one the flow's would, and
        # without that STOP. retry_delay is short so the example stays quick.
        fragile.set_error_handler(
            ErrorHandler(strategy, max_retries=2, retry_delay=0.01)
        )
        with Flow(flow_id=f"strategy-{strategy}") as flow:
            flow.add_routine(Start(), "start")
            flow.add_routine(fragile, "fragile")
            flow.add_routine(report, "report")
            flow.add_routine(audit, "audit")
            flow.connect("start", "output", "fragile", "input")
            flow.connect("fragile", "output", "report", "input")
            flow.connect("start", "output", "audit", "input")
            job = flow.execute("start")  # sequential: returns when the job ends
        print(f"--- {strategy.name} ---")
        show_job(job)
        print(
            f"fragile called {fragile.calls} time(s); audit received "
            f"{len(audit.received)}, report received {len(report.received)}"
        )


# --------------------------------------------------------------------------
# 2. Retry: success on the third call
# --------------------------------------------------------------------------


class FlakyService(Routine):
    """Fails with ConnectionError on its first two calls, then answers."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.started = time.monotonic()
        self.define_slot("trigger", handler=self.call)
        self.define_event("output", ["answer"])

    def call(self, **_params: Any) -> None:
        self.calls += 1
        elapsed = time.monotonic() - self.started
        if self.calls < 3:
            print(f"call {self.calls} at {elapsed:.2f}s: connection refused")
            raise ConnectionError(f"connection refused (call {self.calls})")
        print(f"call {self.calls} at {elapsed:.2f}s: answered")
        self.emit("output", answer="pong")


def retry() -> None:
    header("2. RETRY: a flaky service succeeds on its third call")
    service = FlakyService()
    handler = ErrorHandler(
        ErrorStrategy.RETRY,
        max_retries=3,
        retry_delay=0.05,  # waits 0.05 s, then 0.10 s (delay * backoff ** (n - 1))
        retry_backoff=2.0,
        retryable_exceptions=(ConnectionError,),
    )
    service.set_error_handler(handler)
    sink = Sink()
    with Flow(flow_id="retry") as flow:
        flow.add_routine(service, "service")
        flow.add_routine(sink, "sink")
        flow.connect("service", "output", "sink", "input")
        service.started = time.monotonic()
        job = flow.execute("service")
    show_job(job)
    print(f"retries made: {handler.retry_count}; sink received {sink.received}")


# --------------------------------------------------------------------------
# 3. Timeout
# --------------------------------------------------------------------------


class Stuck(Routine):
    """Blocks until released, then emits: too late, past its timeout."""

    def __init__(self, release: threading.Event, finished: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.finished = finished
        self.define_slot("trigger", handler=self.work)
        self.define_event("output", ["value"])

    def work(self, **_params: Any) -> None:
        self.release.wait(5)
        self.emit("output", value="late")
        self.finished.set()


def timeout() -> None:
    header("3. Timeout: a routine that overruns set_timeout(0.1)")
    release, finished = threading.Event(), threading.Event()
    stuck = Stuck(release, finished)
    stuck.set_timeout(0.1)
    stuck.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    sink = Sink()
    flow = Flow(flow_id="timeout", execution_strategy="concurrent", max_workers=2)
    try:
        flow.add_routine(stuck, "stuck")
        flow.add_routine(sink, "sink")
        flow.connect("stuck", "output", "sink", "input")
        started = time.monotonic()
        job = flow.execute("stuck")
        job.wait(timeout=5)  # the job settles at the deadline
        print(f"job settled after {time.monotonic() - started:.1f}s")
        show_job(job)
        print("the handler is still running: Python cannot stop a thread")
        release.set()  # now it emits, too late
        finished.wait(5)
    finally:
        flow.shutdown()
    late = [r for r in job.execution_history if r.event_name == "late_emit_discarded"]
    print(f"late emits discarded: {len(late)}; sink received {len(sink.received)}")


# --------------------------------------------------------------------------
# 4. Circuit breaker
# --------------------------------------------------------------------------


class ManualClock:
    """A clock the example moves by hand, so the breaker is deterministic."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Unreliable(Routine):
    """Raises while ``healthy`` is False."""

    def __init__(self) -> None:
        super().__init__()
        self.healthy = False
        self.calls = 0
        self.define_slot("trigger", handler=self.call)

    def call(self, **_params: Any) -> None:
        self.calls += 1
        if not self.healthy:
            raise ValueError("backend unavailable")


def circuit_breaker() -> None:
    header("4. Circuit breaker: opens after 3 failures, closes after the reset")
    clock = ManualClock()
    backend = Unreliable()
    breaker = backend.set_circuit_breaker(
        failure_threshold=3, reset_timeout=30.0, clock=clock
    )
    backend.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    with Flow(flow_id="breaker") as flow:
        flow.add_routine(backend, "backend")

        def run(label: str) -> None:
            job = flow.execute("backend")
            outcome = job.errors[0]["error_type"] if job.errors else "ok"
            print(
                f"{label + ':':<15}{outcome:<17}breaker {breaker.state}, "
                f"handler called {backend.calls} time(s)"
            )

        for n in range(1, 6):
            run(f"job {n}")
        stats = breaker.stats()
        print(f"rejected without calling the handler: {stats['rejected']}")
        clock.now += 30.0  # the reset timeout passes
        print(f"after {breaker.reset_timeout:g}s: breaker {breaker.state}")
        backend.healthy = True
        run("job 6 (trial)")
        run("job 7")


# --------------------------------------------------------------------------
# 5 and 6. Cancel, pause and resume a concurrent job
# --------------------------------------------------------------------------

ITEMS = 10
WORKERS = 2


class Producer(Routine):
    """Emits ITEMS items."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.produce)
        self.define_event("output", ["item"])

    def produce(self, **_params: Any) -> None:
        for item in range(ITEMS):
            self.emit("output", item=item)


class GatedWorker(Routine):
    """Holds every item until the gate opens; tells when all workers are busy."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.all_busy = threading.Event()
        self.guard = threading.Lock()
        self.started = 0
        self.done: list[int] = []
        self.define_slot("input", handler=self.work)

    def work(self, item: int) -> None:
        with self.guard:
            self.started += 1
            if self.started == WORKERS:
                self.all_busy.set()
        self.gate.wait(5)
        with self.guard:
            self.done.append(item)


def gated_flow(flow_id: str) -> tuple[Flow, GatedWorker]:
    worker = GatedWorker()
    flow = Flow(flow_id=flow_id, execution_strategy="concurrent", max_workers=WORKERS)
    flow.add_routine(Producer(), "producer")
    flow.add_routine(worker, "worker")
    flow.connect("producer", "output", "worker", "input")
    return flow, worker


def cancel() -> None:
    header("5. Cancel a running concurrent job")
    flow, worker = gated_flow("cancel")
    try:
        job = flow.execute("producer")
        worker.all_busy.wait(5)  # both workers hold an item; the rest are queued
        print(f"cancelled by this call: {flow.cancel(job, reason='operator request')}")
        worker.gate.set()  # running handlers finish; queued items never start
        job.wait(timeout=5)
    finally:
        flow.shutdown()
    print(f"job status: {job.status}")
    print(f"cancel source: {job.cancel_source}; reason: {job.cancel_reason}")
    record = next(r for r in job.execution_history if r.event_name == "cancelled")
    print(
        f"processed {len(worker.done)} item(s), dropped {record.data['dropped']} "
        f"(of {ITEMS})"
    )
    print(f"cancel again: {flow.cancel(job)}")


def pause_resume() -> None:
    header("6. Pause and resume a concurrent job")
    flow, worker = gated_flow("pause")
    try:
        job = flow.execute("producer")
        worker.all_busy.wait(5)
        flow.pause(job, reason="maintenance", checkpoint={"note": "half way"})
        worker.gate.set()  # running handlers finish; nothing new starts
        job.wait(timeout=5)  # paused once the running handlers are done
        print(f"job status: {job.status}")
        print(
            f"processed {len(worker.done)} item(s), held {len(job.pending_tasks)} "
            f"in pending_tasks"
        )
        point = job.pause_points[-1]
        print(f"pause point: {point['reason']}, checkpoint {point['checkpoint']}")
        same = flow.resume(job) is job
        flow.wait_for_completion(timeout=5)
        print(f"resumed the same job: {same}; job status: {job.status}")
        print(f"processed {len(worker.done)} item(s) in all")
    finally:
        flow.shutdown()


def main() -> None:
    started = time.monotonic()
    strategies()
    retry()
    timeout()
    circuit_breaker()
    cancel()
    pause_resume()
    print()
    print(f"Example finished in {time.monotonic() - started:.1f}s.")


if __name__ == "__main__":
    main()
