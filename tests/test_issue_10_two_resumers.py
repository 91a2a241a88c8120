"""Issue 10 acceptance and reliability row 10: two processes resume one crashed job.

A process running ten 5,000-item jobs is killed with SIGKILL while each job has
all its workers in a delivery. Then two processes resume each job at the same
moment, ten times: one wins, the other gets JobOwnedError naming the winner;
every item is delivered, and only the deliveries the kill interrupted run twice.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from routilux import JobOwnedError
from routilux.persistence import SQLiteCheckpointStore
from routilux.persistence.sqlite.store import COMMIT_WINDOW

from . import lease_worker

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 10
ITEMS = 5_000
HOST = socket.gethostname()


def crash_jobs(store: Path, log: Path, jobs: int, items: int) -> list[str]:
    """Run ``jobs`` jobs in a child process and kill it mid-way; their ids."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.lease_worker",
            "crash",
            str(store),
            str(log),
            str(jobs),
            str(items),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert child.stdout is not None
    ids = child.stdout.readline().split()
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGKILL)
    child.wait(30)  # reaped: its pid is known to have ended
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return ids


def deliveries(log: Path) -> dict[str, collections.Counter[int]]:
    counts: dict[str, collections.Counter[int]] = collections.defaultdict(
        collections.Counter
    )
    for line in log.read_text().splitlines():
        job_id, n, _pid = line.split()
        counts[job_id][int(n)] += 1
    return counts


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_issue_10_two_processes_resume_each_crashed_job_once(tmp_path: Path) -> None:
    store, log = tmp_path / "jobs.sqlite", tmp_path / "deliveries.txt"
    job_ids = crash_jobs(store, log, REPEATS, ITEMS)
    before = deliveries(log)
    assert all(sum(before[j].values()) > 0 for j in job_ids)
    with SQLiteCheckpointStore(store) as checkpoints:
        interrupted = checkpoints.list_jobs(status="interrupted", owners=True)
    assert sorted(row["job_id"] for row in interrupted) == sorted(job_ids)
    assert all(row["live"] is False for row in interrupted)

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    tried = [context.Event() for _ in job_ids]
    results = context.Queue()
    resumers = [
        context.Process(
            target=lease_worker.resume_all,
            args=(str(store), str(log), job_ids, barrier, tried, results),
        )
        for _ in range(2)
    ]
    for process in resumers:
        process.start()
    outcomes = [results.get(timeout=150) for _ in range(2 * REPEATS)]
    for process in resumers:
        process.join(30)
        assert process.exitcode == 0

    pids = {process.pid for process in resumers}
    for index in range(REPEATS):
        mine = sorted(text for i, _, text in outcomes if i == index)
        assert len(mine) == 2, mine
        owned, won = mine
        assert won == "won completed True"
        winner = next(p for i, p, t in outcomes if i == index and t.startswith("won"))
        assert owned == f"owned: {winner} {HOST}"
        assert winner in pids

    after = deliveries(log)
    for job_id in job_ids:
        counts = after[job_id]
        assert set(counts) == set(range(ITEMS))  # every item delivered
        twice = [n for n, count in counts.items() if count > 1]
        # Only what the kill interrupted: running, or settled with its step
        # not yet written (the store's commit window).
        assert len(twice) <= lease_worker.WORKERS + COMMIT_WINDOW
        assert max(counts.values()) <= 2
    with SQLiteCheckpointStore(store) as checkpoints:
        rows = checkpoints.list_jobs(owners=True)
    assert {row["status"] for row in rows} == {"completed"}
    assert all(row["owner"] is None for row in rows)  # every lease given up


@pytest.mark.timeout(60)
def test_issue_10_resuming_a_job_running_in_another_process_raises(
    tmp_path: Path,
) -> None:
    store, log = tmp_path / "jobs.sqlite", tmp_path / "deliveries.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ["-m", "tests.lease_worker", "crash", str(store), str(log), "1", "200"]
    child = subprocess.Popen(
        [sys.executable, *command],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        (job_id,) = child.stdout.readline().split()
        assert child.stdout.readline().strip() == "ready"  # live: blocked mid-job
        flow = lease_worker.build(str(store), str(log))
        with flow:
            with pytest.raises(JobOwnedError) as caught:
                flow.resume(job_id)
            assert (caught.value.pid, caught.value.host) == (
                child.pid,
                HOST,
            )
            assert f"process {child.pid}" in str(caught.value)
            with SQLiteCheckpointStore(store) as checkpoints:
                (row,) = checkpoints.list_jobs(owners=True)
                assert row["live"] is True
                assert row["owner"] == {"pid": child.pid, "host": HOST}
                assert checkpoints.list_jobs(status="interrupted") == []
    finally:
        child.kill()
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    # Killed and reaped: the job can be resumed at once on this host.
    flow = lease_worker.build(str(store), str(log))
    with flow:
        job = flow.resume(job_id)
        assert job.wait(60) and job.status == "completed"
