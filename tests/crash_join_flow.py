"""The flow of the inbox crash test: a join and an append slot fed over time.

``start`` sends ITEMS numbered items round-robin to SOURCES source routines
(``src0``...). Each source writes a line per item to a log, sends the item to
``acc`` (an ``append`` slot) and, at one item of its own (early for ``src0``,
late for the last source), delivers its part to ``join`` (``all_sources``).
``join`` writes one ``J`` line per call. Run as a script it starts the job under
a fixed id and waits: the test kills it.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from routilux import Flow, Routine
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore

ITEMS = 100
SOURCES = 5
JOB_ID = "crash-join-job"


def delivers_at(index: int) -> int:
    """The item at which source ``index`` delivers to the join (spread in time)."""
    per_source = ITEMS // SOURCES
    return index + SOURCES * ((per_source - 1) * (index + 1) // SOURCES)


class Start(Routine):
    """Sends the numbered items round-robin to the sources."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        for index in range(SOURCES):
            self.define_event(f"to{index}", ["n"])

    def fire(self, **_: Any) -> None:
        for n in range(ITEMS):
            self.emit(f"to{n % SOURCES}", n=n)


class Source(Routine):
    """Logs each item, sends it on to ``acc``, and its part to ``join`` once."""

    def __init__(self, index: int, log: Path) -> None:
        super().__init__()
        self.set_config(index=index, log=str(log))
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.take)
        self.define_event("item", ["n"])
        self.define_event("part", ["value"])

    def take(self, n: int) -> None:
        threading.Event().wait(0.004)  # some work to be killed in
        self.emit("item", n=n)
        index = self.get_config("index")
        if n == delivers_at(index):
            self.emit("part", value=f"part-{index}@{n}")
        with self._guard, open(self.get_config("log"), "a") as out:
            out.write(f"S {n}\n")
            out.flush()


class Accumulator(Routine):
    """An ``append`` slot; keeps the longest list of items it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.longest: list[int] = []
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.take, merge_strategy="append")

    def take(self, n: Any) -> None:
        seen = list(n) if isinstance(n, list) else [n]
        with self._guard:
            if len(seen) > len(self.longest):
                self.longest = seen


class Join(Routine):
    """An ``all_sources`` slot; logs each call as one ``J`` line."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.set_config(log=str(log))
        self.define_slot("input", handler=self.join, policy="all_sources")

    def join(self, sources: dict[str, Any]) -> None:
        parts = ",".join(f"{k}={v['value']}" for k, v in sorted(sources.items()))
        with open(self.get_config("log"), "a") as out:
            out.write(f"J {parts}\n")
            out.flush()


def open_store(kind: str, path: Path) -> Any:
    """The store of ``kind`` (``sqlite`` or ``json``) at ``path``."""
    if kind == "sqlite":
        return SQLiteCheckpointStore(path / "jobs.sqlite")
    return JsonFileCheckpointStore(path / "jobs")


def build(store: Any, log: Path, strategy: str) -> Flow:
    """The same flow in every process: same id, same routines, same store."""
    flow = Flow(
        flow_id="crash-join",
        execution_strategy=strategy,
        max_workers=4,
        checkpoint_store=store,
    )
    flow.add_routine(Start(), "start")
    flow.add_routine(Accumulator(), "acc")
    flow.add_routine(Join(log), "join")
    for index in range(SOURCES):
        flow.add_routine(Source(index, log), f"src{index}")
        flow.connect("start", f"to{index}", f"src{index}", "input")
        flow.connect(f"src{index}", "item", "acc", "input")
        flow.connect(f"src{index}", "part", "join", "input")
    return flow


if __name__ == "__main__":
    kind, where, log, strategy = sys.argv[1:5]
    flow = build(open_store(kind, Path(where)), Path(log), strategy)
    flow.execute("start", job_id=JOB_ID)
    flow.wait_for_completion()
    os._exit(0)  # the test kills us long before this
