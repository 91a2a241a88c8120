"""Issue 12: a checkpointed Ray job resumes after its driver is killed."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from routilux.persistence import SQLiteCheckpointStore
from routilux.strategies import RayStrategy
from tests.crash_flow import build
from tests.ray_crash_flow import SINK_PAUSE

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
ITEMS = 300
WAIT = 120.0


def _lines(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_issue_12_a_killed_ray_driver_resumes_with_nothing_lost(
    ray_instance: Any, tmp_path: Path
) -> None:
    store_path, sink_path = tmp_path / "jobs.sqlite", tmp_path / "sink.txt"
    address = ray_instance.get_runtime_context().gcs_address
    child = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "ray_crash_flow.py"),
            str(store_path),
            str(sink_path),
            address,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert child.stdout is not None
    job_id = child.stdout.readline().strip()
    assert job_id, "the driver did not start its job"
    waiter = threading.Event()
    while len(_lines(sink_path)) < 60 and child.poll() is None:
        waiter.wait(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL, "the driver finished before the kill"
    assert len(_lines(sink_path)) < ITEMS

    flow = build(store_path, sink_path)
    flow.routines["sink"].set_config(pause=SINK_PAUSE)
    strategy = RayStrategy(max_workers=4)
    flow.set_execution_strategy(strategy)
    with flow:
        job = flow.resume(job_id)
        assert flow.wait_for_completion(timeout=WAIT)
    assert job.status == "completed" and job.job_id == job_id, job.errors
    after = collections.Counter(_lines(sink_path))
    assert set(after) == set(range(ITEMS))  # every item arrived
    with SQLiteCheckpointStore(store_path) as store:
        assert store.pending(job_id) == []
        assert store.load(job_id)["status"] == "completed"
