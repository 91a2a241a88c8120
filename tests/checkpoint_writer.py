"""Second-process helper for tests/test_persistence.py (run as a script).

Usage: ``python checkpoint_writer.py DATABASE WRITER JOBS``

Prints ``ready`` once imported, waits for a line on stdin (so several writers start
at the same moment), then opens the SQLite store (possibly creating the file while
another writer does the same) and writes ``JOBS`` jobs named ``WRITER-<n>``, each
through a save and three steps, from two threads. Prints ``done`` at the end.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from routilux.persistence import SQLiteCheckpointStore


def activation(job_id: str, n: int) -> dict[str, Any]:
    return {
        "id": f"{job_id}/a{n}",
        "routine_id": "r",
        "slot": "in",
        "payload": {"n": n, "job": job_id},
    }


def job(job_id: str, status: str, second: int) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "flow_id": "two-processes",
        "status": status,
        "updated_at": f"2024-01-01T00:00:{second % 60:02d}.{second:06d}Z",
        "shared_data": {"writer": job_id.split("-")[0]},
    }


def write_jobs(store: SQLiteCheckpointStore, writer: str, numbers: range) -> None:
    for n in numbers:
        job_id = f"{writer}-{n}"
        store.save_job(job(job_id, "running", n))
        store.record_step(job_id, added=[activation(job_id, 0), activation(job_id, 1)])
        store.record_step(
            job_id, finished=[f"{job_id}/a0"], added=[activation(job_id, 2)]
        )
        store.record_step(
            job_id, finished=[f"{job_id}/a1"], job=job(job_id, "completed", n)
        )


def main(path: str, writer: str, jobs: int) -> int:
    print("ready", flush=True)
    sys.stdin.readline()
    errors: list[BaseException] = []

    def run(numbers: range) -> None:
        try:
            write_jobs(store, writer, numbers)
        except BaseException as exc:
            errors.append(exc)

    with SQLiteCheckpointStore(path, busy_timeout=20.0) as store:
        threads = [
            threading.Thread(target=run, args=(range(start, jobs, 2),))
            for start in (0, 1)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        print(f"failed: {errors!r}", file=sys.stderr, flush=True)
        return 1
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
