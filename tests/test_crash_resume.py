"""A job killed with SIGKILL part-way resumes in another process, losing nothing."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from routilux.persistence import SQLiteCheckpointStore
from routilux.persistence.sqlite.store import COMMIT_WINDOW

from .crash_flow import build

if TYPE_CHECKING:
    from routilux import JobState

ROOT = Path(__file__).resolve().parents[1]
ITEMS = 300
WORKERS = 4


def lines(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split()]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kill_after", [20, 80, 150, 220, 280])
def test_killed_job_resumes_with_nothing_lost(tmp_path: Path, kill_after: int) -> None:
    kill_and_resume(tmp_path, kill_after)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_errors_recorded_before_the_crash_survive_it(tmp_path: Path) -> None:
    job = kill_and_resume(tmp_path, 100, fail_on=5)
    assert [(e["routine_id"], e["message"]) for e in job.errors] == [
        ("sink", "item 5 is bad")
    ]
    assert job.routine_states["sink"]["status"] == "error_continued"


def kill_and_resume(tmp_path: Path, kill_after: int, fail_on: int = -1) -> JobState:
    store_path, sink_path = tmp_path / "jobs.sqlite", tmp_path / "sink.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "crash_flow.py"),
            str(store_path),
            str(sink_path),
            str(fail_on),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    job_id = child.stdout.readline().strip()
    waiter = threading.Event()
    while len(lines(sink_path)) < kill_after and child.poll() is None:
        waiter.wait(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL, "the child finished before the kill"

    before = collections.Counter(lines(sink_path))
    with SQLiteCheckpointStore(store_path) as store:
        pending = {
            item["payload"]["n"]
            for item in store.pending(job_id)
            if "n" in item["payload"]
        }
        summary = store.list_jobs(flow_id="crash-test")
    assert [s["job_id"] for s in summary] == [job_id]
    done_before_kill = set(before) - pending

    flow = build(store_path, sink_path, fail_on=fail_on)
    with flow:
        job = flow.resume(job_id)
        assert flow.wait_for_completion(timeout=60)
    assert job.status == "completed" and job.job_id == job_id

    after = collections.Counter(lines(sink_path))
    assert set(after) == set(range(ITEMS))  # every item arrived
    twice = {n for n, count in after.items() if count > 1}
    assert not twice & done_before_kill  # completed work was not redone
    # Only what was running at the kill, or settled with its step not yet
    # written (the store's commit window), ran again.
    assert len(twice) <= WORKERS + COMMIT_WINDOW
    assert all(count <= 2 for count in after.values())
    with SQLiteCheckpointStore(store_path) as store:
        assert store.pending(job_id) == []
        assert store.load(job_id)["status"] == "completed"
    return job
