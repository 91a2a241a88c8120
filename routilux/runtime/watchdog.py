"""The watchdog: deadlines for activations and for whole jobs.

Python cannot stop a thread, so a timed-out handler runs on; at its deadline the
watchdog reports it (the job then goes on, or stops, by the routine's error
strategy) and the activation is marked so that its late emits are discarded. A job
deadline cancels the job. One daemon thread per flow, started on first use.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Watchdog", "Watched"]


class Watched(Protocol):
    """Something with a deadline: an activation or a job."""

    @property
    def settled(self) -> bool:
        """True once it finished in time (the watchdog then forgets it)."""


#: (deadline, order, target, timeout, on_timeout)
_Entry = tuple[float, int, Watched, float, "Callable[[Any, float], None]"]


class Watchdog:
    """Calls ``on_timeout(target, timeout)`` for targets unsettled at their deadline.

    The callback runs on the watchdog's thread, outside its lock.

    Args:
        name: The watchdog thread's name.
        clock: Monotonic time source (injectable for tests).

    Thread-safe.
    """

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._clock = clock
        # Guards _heap, _thread and _closed.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[_Entry] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(
        self, target: Watched, timeout: float, on_timeout: Callable[[Any, float], None]
    ) -> None:
        """Report ``target`` unless it settles within ``timeout`` seconds."""
        entry = (
            self._clock() + timeout,
            next(self._order),
            target,
            timeout,
            on_timeout,
        )
        with self._lock:
            if self._closed:
                return
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=self._name, daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _next_due(self) -> _Entry | None:
        """Wait (lock held) for the next due entry; None once closed."""
        heap = self._heap
        while not self._closed:
            while heap and heap[0][2].settled:
                heapq.heappop(heap)  # finished in time
            if heap and heap[0][0] <= self._clock():
                return heapq.heappop(heap)
            self._wake.wait(heap[0][0] - self._clock() if heap else None)
        return None

    def _loop(self) -> None:
        while True:
            with self._lock:
                due = self._next_due()
            if due is None:
                return
            _, _, target, timeout, on_timeout = due
            on_timeout(target, timeout)

    def close(self) -> None:
        """Stop the thread (idempotent); pending deadlines are forgotten."""
        with self._lock:
            self._closed = True
            self._heap.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
