"""Shared fixtures: a strategy parameter and a check that no thread is left behind."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


def _live_non_daemon() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.daemon and t.is_alive()}


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Fail any test that leaves a non-daemon thread running."""
    before = _live_non_daemon()
    yield
    deadline = time.monotonic() + 5.0
    leaked = _live_non_daemon() - before
    while leaked and time.monotonic() < deadline:
        for thread in leaked:
            thread.join(timeout=0.05)
        leaked = _live_non_daemon() - before
    assert not leaked, f"threads left running: {sorted(t.name for t in leaked)}"


@pytest.fixture(params=["sequential", "concurrent"])
def strategy(request: pytest.FixtureRequest) -> str:
    """Every behaviour test runs on each built-in strategy."""
    return str(request.param)


# -- Ray: one local instance for the session, started only when a test needs it --


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[object]:
    """The ``ray`` module, with a local instance up for the whole session.

    Two CPUs, no dashboard, usage stats off, worker logs kept out of the test
    output; workers find the test routines (``tests.*``) through PYTHONPATH.
    Tests that use it are skipped where Ray is not installed. Ray must start in
    the main thread, so its start (5-25 s on a loaded machine) counts against
    the first test's timeout: Ray tests carry ``pytest.mark.timeout(300)``.
    """
    ray = pytest.importorskip("ray")
    import os
    from pathlib import Path

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
