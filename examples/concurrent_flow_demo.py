"""Concurrent flows in routilux, in five short parts.

1. Parallel fetchers: one job fans out to several slow DataFetcher routines that
   run side by side on the thread pool; an aggregator collects their results with
   the "append" merge strategy.
2. Timing: the same work run sequentially and concurrently, with the speed-up.
3. Error handling: with ``ErrorHandler(strategy=ErrorStrategy.CONTINUE)`` one
   fetcher fails and the others still complete.
4. Serialization: a concurrent flow is serialized, rebuilt with
   ``Flow.deserialize`` (strategy and max_workers included) and run again.
5. Strategy switching: one flow moves between sequential and concurrent with
   ``set_execution_strategy``.

The fetchers only sleep, so the demo needs no network and finishes in a few
seconds. Run it with ``python examples/concurrent_flow_demo.py``; ``make_flow``
gives its flow to the command line (``routilux run
examples/concurrent_flow_demo.py:make_flow``).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine

FETCH_DELAY = 0.15  # seconds each fetcher "waits on the network"
SOURCES = ("orders", "customers", "inventory", "prices")


# --------------------------------------------------------------------------
# Routines
# --------------------------------------------------------------------------


class Dispatcher(Routine):
    """Entry routine: starts one job and fans out to every connected fetcher."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("go", ["request"])

    def start(self, **params: Any) -> None:
        # A **kwargs handler receives the entry parameters as keywords.
        self.emit("go", request=params.get("request", "all"))


class DataFetcher(Routine):
    """Pretends to fetch data from a remote source by sleeping.

    Its settings live in the routine's config (set_config), so serialization
    can rebuild it: ``source_name``, ``delay`` and ``fail`` (raise instead of
    returning data, to show error handling).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(source_name="source", delay=FETCH_DELAY, fail=False)
        self.define_slot("trigger", handler=self.fetch)
        self.define_event("output", ["data", "source"])

    def fetch(self, **_params: Any) -> None:
        name = self.get_config("source_name")
        time.sleep(self.get_config("delay"))
        if self.get_config("fail"):
            raise ConnectionError(f"{name}: the remote service did not answer")
        self.emit("output", data=f"{name} rows", source=name)


class Aggregator(Routine):
    """Collects fetcher results through an "append" slot.

    With "append", the first arrival of a key keeps its value as it came; from the
    second arrival on, the key holds the list of every value so far, in arrival
    order. The handler runs once per arrival; on a thread pool those calls may
    finish in any order, so we keep every view and report the most complete one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.aggregate, merge_strategy="append")
        # Handlers may run on several pool threads at once: guard our own list.
        self.seen_lock = threading.Lock()
        self.snapshots: list[list[str]] = []

    def aggregate(self, data: Any, source: Any) -> list[str]:
        sources = source if isinstance(source, list) else [source]
        with self.seen_lock:
            self.snapshots.append(list(sources))
        return sorted(sources)  # the job's result: the sources seen so far

    def collected(self) -> list[str]:
        """The sources of the most complete view the handler was given."""
        with self.seen_lock:
            return sorted(max(self.snapshots, key=len, default=[]))


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def header(title: str) -> None:
    print()
    print(f"=== {title} ===")


def build_flow(
    flow_id: str,
    strategy: str = "concurrent",
    max_workers: int = 4,
    failing: tuple[str, ...] = (),
) -> Flow:
    """Dispatcher -> one DataFetcher per source -> Aggregator."""
    flow = Flow(flow_id, execution_strategy=strategy, max_workers=max_workers)
    flow.add_routine(Dispatcher(), "dispatcher")
    flow.add_routine(Aggregator(), "aggregator")
    for name in SOURCES:
        fetcher = DataFetcher()
        fetcher.set_config(source_name=name, fail=name in failing)
        fetcher_id = f"fetch_{name}"
        flow.add_routine(fetcher, fetcher_id)
        flow.connect("dispatcher", "go", fetcher_id, "trigger")
        flow.connect(fetcher_id, "output", "aggregator", "input")
    return flow


def make_flow() -> Flow:
    """The demo's flow for the command line: ``routilux run
    examples/concurrent_flow_demo.py:make_flow --json``."""
    return build_flow("concurrent_demo")


def run_and_time(flow: Flow) -> tuple[Any, float]:
    """Run one job to the end; return its JobState and the wall time."""
    start = time.perf_counter()
    job = flow.execute("dispatcher", entry_params={"request": "daily"})
    # Sequential jobs are already done here; concurrent ones are still running.
    finished = flow.wait_for_completion(timeout=10.0)
    elapsed = time.perf_counter() - start
    if not finished:
        raise RuntimeError(f"flow {flow.flow_id!r} did not finish in time")
    return job, elapsed


def aggregator_of(flow: Flow) -> Aggregator:
    aggregator = flow.routines["aggregator"]
    assert isinstance(aggregator, Aggregator)
    return aggregator


# --------------------------------------------------------------------------
# The five parts
# --------------------------------------------------------------------------


def part_parallel_fetchers() -> None:
    header("1. Parallel fetchers into an aggregator")
    flow = build_flow("parallel_fetchers")
    try:
        start = time.perf_counter()
        job = flow.execute("dispatcher", entry_params={"request": "daily"})
        print(f"execute() returned at once, job status: {job.status}")
        flow.wait_for_completion(timeout=10.0)
        elapsed = time.perf_counter() - start
        print(f"job status after wait_for_completion: {job.status}")
        collected = aggregator_of(flow).collected()
        print(f"aggregator collected {len(collected)} results: {', '.join(collected)}")
        print(f"{len(SOURCES)} fetchers of {FETCH_DELAY:.2f}s each took {elapsed:.2f}s")
    finally:
        flow.shutdown(wait=True)


def part_timing() -> None:
    header("2. Sequential versus concurrent")
    with build_flow("timing_sequential", strategy="sequential") as flow:
        _, sequential = run_and_time(flow)
    with build_flow("timing_concurrent", max_workers=len(SOURCES)) as flow:
        _, concurrent = run_and_time(flow)
    print(f"sequential: {sequential:.2f}s")
    print(f"concurrent: {concurrent:.2f}s (max_workers={len(SOURCES)})")
    print(f"Speed-up: {sequential / concurrent:.1f}x")


def part_error_handling() -> None:
    header("3. Error handling with ErrorStrategy.CONTINUE")
    with build_flow("errors", failing=("inventory",)) as flow:
        flow.set_error_handler(ErrorHandler(strategy=ErrorStrategy.CONTINUE))
        job, _ = run_and_time(flow)
        print(f"job status: {job.status}")
        print("routine states:")
        for routine_id in sorted(job.routine_states):
            state = job.routine_states[routine_id]
            error = f"  ({state['error']})" if state.get("error") else ""
            print(f"  {routine_id:<16} {state['status']}{error}")
        collected = aggregator_of(flow).collected()
        print(f"aggregator still collected: {', '.join(collected)}")


def part_serialization() -> None:
    header("4. Serialization round trip")
    with build_flow("to_serialize", max_workers=3) as original:
        document = original.serialize()
    text = json.dumps(document)
    print(f"serialized flow: {len(text)} bytes of JSON")

    with Flow.deserialize(json.loads(text)) as restored:
        print(
            f"restored flow: strategy={restored.execution_strategy}, "
            f"max_workers={restored.max_workers}, "
            f"routines={len(restored.routines)}, "
            f"connections={len(restored.connections)}"
        )
        job, elapsed = run_and_time(restored)
        collected = aggregator_of(restored).collected()
        print(
            f"restored flow ran: status={job.status}, "
            f"{len(collected)} results in {elapsed:.2f}s"
        )

    # Called on an instance, deserialize fills that flow instead of making one.
    with Flow() as filled:
        filled.deserialize(document)
        print(
            f"Flow().deserialize(document) filled flow {filled.flow_id!r}: "
            f"strategy={filled.execution_strategy}, max_workers={filled.max_workers}"
        )


def part_strategy_switching() -> None:
    header("5. Switching strategies")
    with build_flow("switching", strategy="sequential") as flow:
        for strategy, workers in (
            ("sequential", None),
            ("concurrent", len(SOURCES)),
            ("sequential", None),
        ):
            flow.set_execution_strategy(strategy, max_workers=workers)
            job, elapsed = run_and_time(flow)
            print(
                f"{flow.execution_strategy:<10} max_workers={flow.max_workers}: "
                f"{job.status} in {elapsed:.2f}s"
            )


def main() -> None:
    print("routilux concurrent flow demo")
    part_parallel_fetchers()
    part_timing()
    part_error_handling()
    part_serialization()
    part_strategy_switching()
    print()
    print("Demo finished.")


if __name__ == "__main__":
    main()
