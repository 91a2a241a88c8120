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
