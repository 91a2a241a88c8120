"""A CPU-heavy fan-out on the thread pool and on Ray, timed side by side.

One Splitter emits a chunk of work to each of four Crunch routines, which do
pure-Python arithmetic (the GIL lets only one thread run it at a time) and send
their totals to a Gather. The same flow runs on the ``concurrent`` strategy
(threads in this process) and on the ``ray`` strategy (handlers on Ray host
actors, one process per CPU), and the demo prints both wall times.

Ray workers rebuild each routine from the flow document, so the classes must be
importable there: they live in this module, imported by name (``ray_flow_demo``)
rather than run as ``__main__``, and the workers get this folder on their
PYTHONPATH through ``runtime_env``. Settings are in config, results travel as
emits. Needs the ``ray`` extra (``pip install 'routilux[ray]'``); without it the
demo says so and exits. Set RAY_ADDRESS to use a running Ray instance instead of
starting a local one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from routilux import ExtraNotInstalledError, Flow, Routine

HERE = Path(__file__).resolve().parent
CRUNCHERS = 4
ROUNDS = 1_500_000  # per cruncher: about a quarter of a second of pure Python


class Splitter(Routine):
    """Sends one chunk of work to every connected cruncher."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("chunk", ["rounds"])

    def fire(self, **_: Any) -> None:
        self.emit("chunk", rounds=self.get_config("rounds", ROUNDS))


class Crunch(Routine):
    """Pure-Python arithmetic: the work the GIL serializes across threads."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("chunk", handler=self.crunch)
        self.define_event("total", ["value"])

    def crunch(self, rounds: int) -> None:
        total = 0
        for i in range(rounds):
            total += i * i % 7
        self.emit("total", value=total)


class Gather(Routine):
    """Keeps the totals (in its stats, which Ray brings back at the job's end)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("total", handler=self.keep)

    def keep(self, value: int) -> None:
        self._track_operation("totals", value=value)


def build(strategy: Any) -> Flow:
    flow = Flow(execution_strategy=strategy, max_workers=CRUNCHERS)
    flow.add_routine(Splitter(), "split")
    flow.add_routine(Gather(), "gather")
    for index in range(CRUNCHERS):
        flow.add_routine(Crunch(), f"crunch{index}")
        flow.connect("split", "chunk", f"crunch{index}", "chunk")
        flow.connect(f"crunch{index}", "total", "gather", "total")
    return flow


def timed_run(flow: Flow) -> tuple[float, list[int]]:
    """One job's wall time, and the totals it gathered (sorted)."""
    gather = flow.routines["gather"]
    seen = len(gather.get_stat("totals_history", []))
    start = time.perf_counter()
    job = flow.execute("split")
    job.wait(300)
    took = time.perf_counter() - start
    assert str(job.status) == "completed", job.errors
    history = gather.get_stat("totals_history", [])[seen:]
    return took, sorted(item["value"] for item in history)


def main() -> None:
    try:
        from routilux.strategies import RayStrategy

        ray_strategy = RayStrategy(
            max_workers=CRUNCHERS,
            runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}},
        )
    except ExtraNotInstalledError as exc:
        print(f"Ray is not installed: {exc}")
        return
    with build("concurrent") as threads:
        thread_time, thread_totals = timed_run(threads)
    print(f"concurrent (threads, one GIL): {thread_time:.2f} s")
    with build(ray_strategy) as remote:
        timed_run(remote)  # the first job starts Ray and builds the routines
        ray_time, ray_totals = timed_run(remote)
    print(f"ray (host actors, one process per CPU): {ray_time:.2f} s")
    print(f"Same totals: {ray_totals == thread_totals}")


if __name__ == "__main__":
    # Run the module by its importable name, so that Ray workers can build
    # these routine classes from the flow document.
    sys.path.insert(0, str(HERE))
    import ray_flow_demo

    ray_flow_demo.main()
