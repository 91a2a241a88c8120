"""The flow of the crash test: a source emits N items; a sink appends each to a file.

Run as a script it starts the job, prints its id and waits: the test kills it.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine


class ItemSource(Routine):
    """Emits ``count`` numbered items."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(count=300)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])

    def fire(self, **params: Any) -> None:
        for n in range(self.get_config("count")):
            self.emit("item", n=n)


class FileSink(Routine):
    """Appends each item to a file, one line per item (flushed at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(path="", pause=0.002, fail_on=-1)
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.write)

    def write(self, n: int) -> None:
        threading.Event().wait(self.get_config("pause"))  # some work to be killed in
        with self._guard, open(self.get_config("path"), "a") as out:
            out.write(f"{n}\n")
            out.flush()
        if n == self.get_config("fail_on"):
            raise ValueError(f"item {n} is bad")


def build(store: Path, sink_file: Path, workers: int = 4, fail_on: int = -1) -> Flow:
    """The same flow in every process: same id, same routines, same store."""
    flow = Flow(
        flow_id="crash-test",
        execution_strategy="concurrent",
        max_workers=workers,
        checkpoint_store=store,
    )
    sink = FileSink()
    sink.set_config(path=str(sink_file), fail_on=fail_on)
    sink.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(ItemSource(), "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "item", "sink", "input")
    return flow


if __name__ == "__main__":
    fail_on = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    flow = build(Path(sys.argv[1]), Path(sys.argv[2]), fail_on=fail_on)
    job = flow.execute("source")
    print(job.job_id, flush=True)
    flow.wait_for_completion()
    os._exit(0)  # the test kills us long before this
