"""Seed 001 ("Concurrent Flow Demo"): its code blocks run unchanged.

The page's example program (``examples/concurrent_flow_demo.py``) is run by
``test_examples.py``. Its Python blocks run here, each as written, in order, in
one namespace. The first four build and serialize flows. The last two call
``flow.execute("entry_routine")`` on a flow they have just made, leaving the
page's reader to add the routines; for them the namespace's ``Flow`` is a Flow
that starts with an ``entry_routine`` fanning out to three workers.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import routilux
from routilux import ErrorHandler, ErrorStrategy, Routine, StrategyShutdownError

from .seed_blocks import find_seed, parse_blocks

SEED = find_seed("001_cb7b60e44ecf7c58")
if SEED is None:
    pytest.skip(
        "seed 001 not found: ../shared/seeds/001_cb7b60e44ecf7c58.txt is missing "
        "next to the repository (the shared folder is not checked out here)",
        allow_module_level=True,
    )


def _python_blocks() -> list[str]:
    assert SEED is not None
    return [b.code for b in parse_blocks(SEED.read_text()) if b.lang == "python"]


class Entry(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("fetch", ["source"])

    def start(self) -> None:
        for source in ("orders", "prices", "customers"):
            self.emit("fetch", source=source)


class Worker(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.done: list[str] = []
        self.lock = threading.Lock()
        self.define_slot("input", handler=self.fetch)

    def fetch(self, source: str) -> None:
        with self.lock:
            self.done.append(source)


FLOWS: list[routilux.Flow] = []


class FlowWithEntry(routilux.Flow):
    """The flow the page's last two blocks leave to the reader."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_routine(Entry(), "entry_routine")
        self.add_routine(Worker(), "worker")
        self.connect("entry_routine", "fetch", "worker", "input")
        FLOWS.append(self)


def test_the_seed_has_the_blocks_this_test_reads() -> None:
    blocks = _python_blocks()
    assert len(blocks) == 6
    assert all('execute("entry_routine")' in code for code in blocks[4:])


def test_configuring_and_serializing_blocks_run_as_written() -> None:
    namespace: dict[str, Any] = {
        "Flow": routilux.Flow,
        "ErrorHandler": ErrorHandler,
        "ErrorStrategy": ErrorStrategy,
    }
    blocks = _python_blocks()
    made = []
    try:
        exec(blocks[0], namespace)  # the seed's own code
        first = namespace["flow"]
        made.append(first)
        assert (first.execution_strategy, first.max_workers) == ("concurrent", 5)
        for code in blocks[1:4]:
            exec(code, namespace)
        flow, new_flow = namespace["flow"], namespace["new_flow"]
        assert (flow.execution_strategy, flow.max_workers) == ("concurrent", 10)
        assert flow.error_handler.strategy is ErrorStrategy.CONTINUE
        # "Execution strategy and max_workers are preserved"
        assert (new_flow.execution_strategy, new_flow.max_workers) == (
            "concurrent",
            10,
        )
        assert new_flow.error_handler.strategy is ErrorStrategy.CONTINUE
    finally:
        made += [namespace[name] for name in ("flow", "new_flow") if name in namespace]
        for flow in made:
            flow.shutdown()


def test_waiting_and_cleanup_blocks_run_as_written() -> None:
    FLOWS.clear()
    namespace: dict[str, Any] = {"Flow": FlowWithEntry}
    waiting, cleanup = _python_blocks()[4:]
    try:
        exec(waiting, namespace)  # the seed's own code
        flow, job = namespace["flow"], namespace["job_state"]
        # "Now all tasks are guaranteed to be finished"
        assert job.status == "completed"
        assert sorted(flow.routines["worker"].done) == [
            "customers",
            "orders",
            "prices",
        ]
        exec(cleanup, namespace)
        flow, job = namespace["flow"], namespace["job_state"]
        assert job.status == "completed" and len(flow.routines["worker"].done) == 3
        with pytest.raises(StrategyShutdownError):
            flow.execute("entry_routine")  # shut down by the block's finally
    finally:
        for made in FLOWS:
            made.shutdown()
