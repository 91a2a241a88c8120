"""Issue 12: an actor killed mid-call; RETRY finishes the job, STOP fails it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, JobStatus, WorkerLostError
from routilux.strategies import RayStrategy
from tests.ray_routines import Stall

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

WAIT = 120.0


@pytest.fixture(scope="module")
def ray_strategy(ray_instance: Any) -> Iterator[RayStrategy]:
    strategy = RayStrategy(max_workers=2, num_cpus=2, max_restarts=5)
    try:
        yield strategy
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)


def _wait_for(path: Path) -> None:
    """Until the handler has started on its actor (it writes ``path``)."""
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, "the handler never started"
        time.sleep(0.02)


def _kill_mid_call(
    ray: Any, strategy: RayStrategy, flow_id: str, handler: ErrorHandler, tmp: Path
) -> Any:
    marker = tmp / f"{flow_id}.started"
    flow = Flow(flow_id=flow_id, execution_strategy=strategy)
    stall = Stall(marker=str(marker), hold=WAIT)
    stall.set_error_handler(handler)
    flow.add_routine(stall, "stall")
    job = flow.execute("stall")
    _wait_for(marker)
    ray.kill(strategy.actor_of(flow_id, "stall"), no_restart=False)
    assert job.wait(WAIT), "the job did not end after its actor was killed"
    return job


def test_issue_12_a_killed_actor_is_retried_under_retry(
    ray_instance: Any, ray_strategy: RayStrategy, tmp_path: Path
) -> None:
    handler = ErrorHandler(
        strategy=ErrorStrategy.RETRY,
        max_retries=3,
        retry_delay=0.1,
        retryable_exceptions=[WorkerLostError],
    )
    job = _kill_mid_call(ray_instance, ray_strategy, "kill-retry", handler, tmp_path)
    assert job.status is JobStatus.COMPLETED, job.errors
    assert job.result()["stall"] == "done"  # the restarted actor rebuilt it
    messages = [e.message for e in job.errors]
    assert [e.error_type for e in job.errors] == ["WorkerLostError"], messages
    assert job.errors[0].routine_id == "stall" and job.errors[0].attempt == 1


def test_issue_12_a_killed_actor_fails_the_job_under_stop(
    ray_instance: Any, ray_strategy: RayStrategy, tmp_path: Path
) -> None:
    handler = ErrorHandler(strategy=ErrorStrategy.STOP)
    job = _kill_mid_call(ray_instance, ray_strategy, "kill-stop", handler, tmp_path)
    assert job.status is JobStatus.FAILED
    (error,) = job.errors
    assert error.error_type == "WorkerLostError" and error.routine_id == "stall"
    assert "died during the call" in error.message
