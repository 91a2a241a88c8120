"""The flow of the streaming crash test: ``extract`` emits items, ``load`` logs them.

Run as a script (``kind directory items stop_at every blocked``) it starts the
job under a fixed id with partial steps every ``every`` buffered emits and no
flush timer. ``extract`` stops after ``stop_at`` emits: it writes a marker file
and waits forever. The load of item ``blocked`` writes its line and waits
forever. The store logs each committed step (ids finished and added) to
``steps.log``. The test kills the process.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from routilux import Flow, Routine
from routilux.persistence import JsonFileCheckpointStore, SQLiteCheckpointStore

JOB_ID = "stream-crash"
WORKERS = 4


class Extract(Routine):
    """Emits ``items`` numbered items; stops for good after ``stop_at`` (>= 0)."""

    def __init__(self, marker: Path, stop_at: int = -1) -> None:
        super().__init__()
        self.marker = marker
        self.stop_at = stop_at
        self.define_slot("trigger", handler=self.fire)
        self.define_event("row", ["n"])

    def fire(self, items: int) -> None:
        for n in range(items):
            if n == self.stop_at:
                self.marker.write_text(str(n))
                threading.Event().wait()  # killed here
            self.emit("row", n=n)


class Load(Routine):
    """Appends each item to a file; the load of ``blocked`` never returns."""

    def __init__(self, path: Path, blocked: int = -1) -> None:
        super().__init__()
        self.path = path
        self.blocked = blocked
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.load)

    def load(self, n: int) -> None:
        with self._guard, open(self.path, "a") as out:
            out.write(f"{n}\n")
            out.flush()
        if n == self.blocked:
            threading.Event().wait()  # running at the kill


def _logged(base: type) -> type:
    class Logged(base):  # type: ignore[misc, valid-type]
        """Logs each step once it is committed (a kill may lose the last line)."""

        log: Path

        def _log(self, step: dict[str, Any]) -> None:
            line = {
                "finished": list(step.get("finished") or ()),
                "added": [row["id"] for row in step.get("added") or ()],
                "progress": [
                    row["payload"]
                    for row in step.get("added") or ()
                    if row["id"].endswith(".emitted")
                ],
            }
            with open(self.log, "a") as out:
                out.write(json.dumps(line) + "\n")
                out.flush()

        def record_step(self, job_id: str, **step: Any) -> None:
            super().record_step(job_id, **step)
            self._log(step)

        def log_step(self, job_id: str, **step: Any) -> None:
            super().log_step(job_id, **step)
            self._log(step)

    return Logged


LoggedSQLite = _logged(SQLiteCheckpointStore)
LoggedJson = _logged(JsonFileCheckpointStore)


def open_store(kind: str, where: Path, logged: bool = False) -> Any:
    """The store of ``kind`` in ``where`` (logging its steps to ``steps.log``)."""
    if kind == "sqlite":
        store = (LoggedSQLite if logged else SQLiteCheckpointStore)(
            where / "jobs.sqlite"
        )
    else:
        store = (LoggedJson if logged else JsonFileCheckpointStore)(where / "jobs")
    if logged:
        store.log = where / "steps.log"
    return store


def build(store: Any, where: Path, stop_at: int = -1, blocked: int = -1) -> Flow:
    """The same flow in every process: same id, same routines, same store."""
    flow = Flow(
        flow_id="stream-crash",
        execution_strategy="concurrent",
        max_workers=WORKERS,
        checkpoint_store=store,
    )
    flow.add_routine(Extract(where / "stopped", stop_at), "extract")
    flow.add_routine(Load(where / "loaded.txt", blocked), "load")
    flow.connect("extract", "row", "load", "input")
    return flow


if __name__ == "__main__":
    from routilux.runtime.ledger import streaming

    kind, where = sys.argv[1], Path(sys.argv[2])
    items, stop_at, every, blocked = (int(arg) for arg in sys.argv[3:7])
    # Partial steps at exact emit counts: every ``every`` emits, no timer.
    streaming.FLUSH_EVERY = every
    streaming.FLUSH_AFTER = 1e9
    flow = build(open_store(kind, where, logged=True), where, stop_at, blocked)
    flow.execute("extract", entry_params={"items": items}, job_id=JOB_ID)
    flow.wait_for_completion()
    os._exit(0)  # the test kills us long before this
