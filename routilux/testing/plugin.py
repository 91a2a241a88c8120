"""A pytest plugin: flows that shut down after each test, and a thread-leak check.

Enable it in a ``conftest.py``::

    pytest_plugins = ["routilux.testing.plugin"]

The ``routilux_flow`` fixture is a factory: ``flow = routilux_flow(flow_id="f",
execution_strategy="concurrent")`` takes ``Flow``'s arguments. Every flow it made
is shut down when the test ends, and the test fails if a routilux thread it
started is still alive a few seconds later (a leaked worker, watchdog or loop
thread) — the event loop thread routilux keeps for the process excepted.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from ..flow import Flow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["routilux_flow"]

#: How long a test's threads get to end after its flows shut down.
GRACE_SECONDS = 5.0
_SHARED = ("routilux-asyncio",)  # one per process, by design


def _routilux_threads() -> set[threading.Thread]:
    return {
        t
        for t in threading.enumerate()
        if t.name.startswith("routilux") and t.name not in _SHARED
    }


@pytest.fixture
def routilux_flow() -> Iterator[Callable[..., Flow]]:
    """A factory of flows that are shut down, and checked for leaked threads."""
    before = _routilux_threads()
    flows: list[Flow] = []

    def make(*args: Any, **kwargs: Any) -> Flow:
        flow = Flow(*args, **kwargs)
        flows.append(flow)
        return flow

    yield make
    for flow in flows:
        flow.shutdown(wait=True, timeout=GRACE_SECONDS)
    deadline = time.monotonic() + GRACE_SECONDS
    leaked = _routilux_threads() - before
    while leaked and time.monotonic() < deadline:
        for thread in leaked:
            thread.join(max(0.0, deadline - time.monotonic()))
        leaked = {t for t in leaked if t.is_alive()}
    if leaked:
        names = sorted(t.name for t in leaked)
        pytest.fail(f"the test leaked routilux threads: {names}")
