"""Both sides of the cross-host recipe, run as separate processes by the test.

``pause FLOW JOB``: run a concurrent job, pause it part-way, write the flow and the
job documents. ``resume FLOW JOB SINK``: read both, resume, record what arrived.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from routilux import Flow, JobState, Routine

RELEASE = threading.Event()
BOTH_RECORDING = threading.Barrier(3)  # two recorders and the pausing thread


class Numbers(Routine):
    """Emits ``count`` numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(count=50)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("number", ["n"])

    def fire(self) -> None:
        for n in range(self.get_config("count")):
            self.emit("number", n=n)


class Recorder(Routine):
    """Appends every number to the file in its config; waits for RELEASE first."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(path="")
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.record)

    def record(self, n: int) -> None:
        if not RELEASE.is_set():
            BOTH_RECORDING.wait(10)
        RELEASE.wait(10)
        if self.get_config("path"):
            with self._guard, open(self.get_config("path"), "a") as out:
                out.write(f"{n}\n")


def pause_side(flow_file: Path, job_file: Path) -> None:
    flow = Flow(flow_id="cross-host", execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Recorder(), "recorder")
    flow.connect("numbers", "number", "recorder", "input")
    job = flow.execute("numbers")
    # Both workers run a recorder (so the source has finished) and 48 numbers wait.
    BOTH_RECORDING.wait(10)
    flow.pause(job, reason="moving host", checkpoint={"host": "a"})
    RELEASE.set()  # the two running handlers finish; everything else is held
    assert job.wait(10) and job.status == "paused"
    flow.save(flow_file)
    job.save(job_file)
    flow.shutdown()
    print(len(job.pending_tasks))


def resume_side(flow_file: Path, job_file: Path, sink: Path) -> None:
    RELEASE.set()
    flow = Flow.load(flow_file)
    recorder = flow.routines["recorder"]
    recorder.set_config(path=str(sink))
    job = JobState.load(job_file)
    with flow:
        flow.resume(job)
        assert flow.wait_for_completion(timeout=30)
    print(job.status.value, job.job_id, job.pause_points[0]["reason"])


if __name__ == "__main__":
    command, *paths = sys.argv[1:]
    if command == "pause":
        pause_side(Path(paths[0]), Path(paths[1]))
    else:
        resume_side(Path(paths[0]), Path(paths[1]), Path(paths[2]))
