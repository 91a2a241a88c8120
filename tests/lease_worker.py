"""Processes of the ownership tests (issue 10): a job's crash, and racing resumers.

``python -m tests.lease_worker crash STORE LOG JOBS ITEMS`` starts ``JOBS`` jobs of
``ITEMS`` items, one flow each, lets each deliver some items, blocks every worker
of every flow in a delivery, prints the job ids and ``ready``, and waits to be
killed. :func:`resume_all` is the body of a resumer process.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from routilux import Flow, JobOwnedError, Routine

WORKERS = 4
FLOW_ID = "owned"
#: Deliveries of each job before its workers block (the crash catches them).
BLOCK_AFTER = 20

_gates: dict[str, Any] = {}  # job id -> event the first delivery waits for


class Items(Routine):
    """Emits ``count`` numbered items."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])

    def fire(self, count: int) -> None:
        for n in range(count):
            self.emit("item", n=n)


class Deliver(Routine):
    """Logs ``<job_id> <n> <pid>`` per delivery (one O_APPEND write each)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(log="", block_after=-1)
        self.define_slot("input", handler=self.take)
        self.blocked = threading.Semaphore(0)
        self._count = 0
        self._lock = threading.Lock()
        self._never = threading.Event()

    def take(self, n: int) -> None:
        job_id = self.get_execution_context().job_state.job_id
        gate = _gates.pop(job_id, None)
        if gate is not None:  # the other resumer has tried: go on
            gate.wait(60)
        fd = os.open(self.get_config("log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{job_id} {n} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        limit = self.get_config("block_after")
        if limit >= 0:
            with self._lock:
                self._count += 1
                block = self._count > limit
            if block:
                self.blocked.release()
                self._never.wait()  # the crash ends it


def build(store: str, log: str, block_after: int = -1) -> Flow:
    """The same flow in every process."""
    flow = Flow(
        FLOW_ID,
        execution_strategy="concurrent",
        max_workers=WORKERS,
        checkpoint_store=store,
    )
    sink = Deliver()
    sink.set_config(log=log, block_after=block_after)
    flow.add_routine(Items(), "items")
    flow.add_routine(sink, "deliver")
    flow.connect("items", "item", "deliver", "input")
    return flow


def crash(store: str, log: str, jobs: int, items: int) -> None:
    """Start the jobs, let each block all its workers, then wait for the kill."""
    flows = [build(store, log, BLOCK_AFTER) for _ in range(jobs)]
    ids = []
    for flow in flows:
        job = flow.execute("items", entry_params={"count": items})
        ids.append(job.job_id)
    for flow in flows:
        sink = flow.routines["deliver"]
        assert isinstance(sink, Deliver)
        for _ in range(WORKERS):
            sink.blocked.acquire()
    print(" ".join(ids), flush=True)
    print("ready", flush=True)
    threading.Event().wait()


def resume_all(
    store: str,
    log: str,
    job_ids: list[str],
    barrier: Any,
    tried: list[Any],
    results: Any,
) -> None:
    """Resume each job at the same moment as the other resumer.

    For job ``i``, a winner's first delivery waits until the loser has tried
    (``tried[i]``), so the loser always meets a live lease. Each outcome is put
    on ``results`` as ``(i, pid, "won" | "owned: <message>" | other error)``.
    """
    flow = build(store, log)
    with flow:
        for index, job_id in enumerate(job_ids):
            _gates[job_id] = tried[index]
            barrier.wait(60)
            try:
                job = flow.resume(job_id)
            except JobOwnedError as exc:
                _gates.pop(job_id, None)
                tried[index].set()
                results.put((index, os.getpid(), f"owned: {exc.pid} {exc.host}"))
                continue
            except Exception as exc:
                tried[index].set()
                results.put((index, os.getpid(), f"{type(exc).__name__}: {exc}"))
                continue
            finished = job.wait(120)
            results.put((index, os.getpid(), f"won {job.status} {finished}"))


if __name__ == "__main__":
    if sys.argv[1] == "crash":
        crash(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
