"""A job survives its process being killed: resume it from the checkpoint store.

The script plays two processes:

1. The **child** (``python resume_after_crash.py --child STORE SINK``) builds a
   concurrent flow with a SQLite checkpoint store and starts a job: a source emits
   300 items, a sink appends each one to a file. The store records every activation
   as it completes.
2. The **parent** (``python resume_after_crash.py``) starts the child, waits until
   the sink file holds about 100 lines, and kills the child with SIGKILL: no
   cleanup, no ``finally``, exactly like a crash. Then, as a restarted program
   would, it builds the same flow on the same store, shows the interrupted job the
   store kept, calls ``flow.resume(job_id)`` and prints what was recovered.

What to expect (the delivery guarantee): items the sink finished before the crash
are not written again; items that were running at the crash, or had finished but
whose step was still waiting for the store's step writer, are written again
(at-least-once: at most ``max_workers + commit_window`` of them, see the durability
guide's "Group commit"); in the end every item is there and the job is
``completed``.

Run it with ``python examples/resume_after_crash.py`` (POSIX only: it uses SIGKILL).
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from routilux import Flow, Routine

ITEMS = 300
WORKERS = 4
KILL_AT = 100  # lines in the sink file
FLOW_ID = "resume-after-crash"


class ItemSource(Routine):
    """Emits ``count`` numbered items from one activation."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(count=ITEMS)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("item", ["n"])

    def fire(self, **_params: Any) -> None:
        for n in range(self.get_config("count")):
            self.emit("item", n=n)


class FileSink(Routine):
    """Appends each item to a file, one line per item, flushed at once.

    The short wait after the write stands for more work in the same handler (say,
    acknowledging the item): a handler killed there has written its line but not
    completed, so the resumed job runs it again and its line appears twice.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(path="", work_seconds=0.004)
        self._guard = threading.Lock()  # one writer at a time
        self.define_slot("input", handler=self.write)

    def write(self, n: int) -> None:
        with self._guard, open(self.get_config("path"), "a") as out:
            out.write(f"{n}\n")
            out.flush()
        time.sleep(self.get_config("work_seconds"))


def build(store: Path, sink_file: Path) -> Flow:
    """The same flow in both processes: same flow id, routine ids and store."""
    flow = Flow(
        flow_id=FLOW_ID,
        execution_strategy="concurrent",
        max_workers=WORKERS,
        checkpoint_store=store,  # a path: the default SQLiteCheckpointStore
    )
    sink = FileSink()
    sink.set_config(path=str(sink_file))
    flow.add_routine(ItemSource(), "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "item", "sink", "input")
    return flow


def read_sink(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split()]


# --------------------------------------------------------------------------
# The child: start the job and keep working until killed
# --------------------------------------------------------------------------


def child(store: Path, sink_file: Path) -> None:
    flow = build(store, sink_file)
    job = flow.execute("source")
    print(job.job_id, flush=True)  # the parent reads the job id from here
    flow.wait_for_completion(timeout=60)
    os._exit(0)  # only reached if the parent never kills us


# --------------------------------------------------------------------------
# The parent: crash the child, then recover the job
# --------------------------------------------------------------------------


def crash_child(store: Path, sink_file: Path) -> str:
    """Run the child until the sink holds KILL_AT lines, then SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(store), str(sink_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    job_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 30
    while len(read_sink(sink_file)) < KILL_AT and proc.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    if proc.returncode != -signal.SIGKILL:
        raise SystemExit(f"the child ended by itself (exit code {proc.returncode})")
    print(f"child process {proc.pid} started job {job_id[:8]}... and was killed")
    print(f"with SIGKILL when the sink file had {len(read_sink(sink_file))} lines")
    return job_id


def inspect_store(flow: Flow, job_id: str) -> set[int]:
    """Show what the flow's store kept; return the items it still has pending."""
    checkpoints = flow.checkpoint_store
    assert checkpoints is not None
    for summary in checkpoints.list_jobs(flow_id=FLOW_ID):
        print(
            f"store lists job {summary['job_id'][:8]}... of flow "
            f"{summary['flow_id']!r}: status {summary['status']}"
        )
    pending = checkpoints.pending(job_id)
    items = {item["payload"]["n"] for item in pending if item["routine_id"] == "sink"}
    print(f"pending activations in the store: {len(pending)} ({len(items)} sink items)")
    return items


def main() -> None:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="routilux-crash-"))
    store, sink_file = workdir / "jobs.sqlite", workdir / "sink.txt"
    try:
        print("=== 1. Run the job in a child process and kill it ===")
        job_id = crash_child(store, sink_file)
        # This process now plays the restarted program: the same flow on the
        # same store. (A flow never closes its store, so recover() does.)
        recover(build(store, sink_file), job_id, sink_file)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"Example finished in {time.monotonic() - started:.1f}s.")


def recover(flow: Flow, job_id: str, sink_file: Path) -> None:
    checkpoints = flow.checkpoint_store
    assert checkpoints is not None
    window = getattr(checkpoints, "commit_window", 0)
    try:
        print()
        print("=== 2. What the checkpoint store kept ===")
        written = set(read_sink(sink_file))
        pending = inspect_store(flow, job_id)
        done_before = written - pending  # completed: the store says so
        in_flight = written & pending  # wrote its line, killed before completing
        print(f"sink lines whose activation had not completed: {len(in_flight)}")

        print()
        print("=== 3. Resume the job in this process ===")
        job = flow.resume(job_id)
        finished = flow.wait_for_completion(timeout=60)
        print(f"resumed job {job.job_id[:8]}... (same id: {job.job_id == job_id})")
        print(f"finished: {finished}; job status: {job.status}")
        left = len(checkpoints.pending(job_id))
        stored = checkpoints.load(job_id)["status"]
    finally:
        flow.shutdown()
        checkpoints.close()

    after = collections.Counter(read_sink(sink_file))
    rerun = sorted(n for n, count in after.items() if count > 1)
    complete = set(after) == set(range(ITEMS))
    redone = set(rerun) & done_before
    print()
    print("=== 4. What was recovered ===")
    print(f"items done before the crash: {len(done_before)} (none run again)")
    fresh = set(after) - done_before - set(rerun)
    print(
        f"items done after the resume: {len(set(after) - done_before)} "
        f"({len(fresh)} never started before + {len(rerun)} re-run)"
    )
    print(
        f"items re-run (running at the crash, or not yet stored; at-least-once): "
        f"{len(rerun)} {rerun}, at most max_workers + commit_window="
        f"{WORKERS} + {window}"
    )
    print(f"completed items run again: {len(redone)}")
    print(f"total: {len(after)} of {ITEMS} items; all there: {complete}")
    print(f"job status: {job.status}; store: job {stored}, {left} pending")
    if not complete or len(rerun) > WORKERS + window or redone:
        raise SystemExit("the delivery guarantee was broken (see above)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
