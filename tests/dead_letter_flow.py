"""The flow of the dead-letter tests: a source emits items, a worker fails some.

Run as a script (``python dead_letter_flow.py STORE``) it runs one job with the
SQLite store at ``STORE``, prints the job id and exits: the test then reads the
letters from another process.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from routilux import ErrorHandler, Flow, Routine

#: The items the worker fails on (until it is fixed).
BAD = frozenset({3, 17, 42, 66, 99})
ITEMS = 100
FLOW_ID = "dead-letters"


class Source(Routine):
    """Emits ``count`` numbered items (config)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(count=ITEMS)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])

    def fire(self, **params: Any) -> None:
        for n in range(self.get_config("count")):
            self.emit("item", n=n)


class Worker(Routine):
    """Delivers items; raises (with a cause) on the ``bad`` ones until fixed."""

    def __init__(self) -> None:
        super().__init__()
        self.bad = set(BAD)
        self.delivered: list[int] = []
        self.calls = 0
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.work)

    def work(self, n: int) -> None:
        with self._guard:
            self.calls += 1
        if n in self.bad:
            try:
                raise KeyError(f"no record {n}")
            except KeyError as missing:
                raise ValueError(f"item {n} is bad") from missing
        with self._guard:
            self.delivered.append(n)

    def fix(self) -> None:
        self.bad.clear()


def build(
    strategy: str = "sequential", store: Any = None, flow_id: str = FLOW_ID
) -> tuple[Flow, Worker]:
    """source -> worker, the worker retried twice and then skipped."""
    flow = Flow(
        flow_id=flow_id,
        execution_strategy=strategy,
        max_workers=4,
        checkpoint_store=store,
    )
    worker = Worker()
    worker.set_error_handler(
        ErrorHandler("retry", max_retries=2, retry_delay=0, on_exhausted="skip")
    )
    flow.add_routine(Source(), "source")
    flow.add_routine(worker, "worker")
    flow.connect("source", "item", "worker", "input")
    return flow, worker


if __name__ == "__main__":
    with build("concurrent", sys.argv[1])[0] as flow:
        job = flow.execute("source")
        job.wait(30)
        print(job.job_id, job.status.value, flush=True)
