"""The watchdog: settles activations that run past their routine's timeout.

Python cannot stop a thread, so a timed-out handler runs on; the watchdog records
the timeout for it at the deadline (so the job can go on, or stop, by the routine's
error strategy) and marks the activation so that its late emits are discarded.
One daemon thread per flow, started on the first timed activation.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from .activation import Activation

__all__ = ["Watchdog"]

#: (deadline, order, activation, timeout, on_timeout)
_Entry = tuple[float, int, "Activation", float, "Callable[[Activation, float], None]"]


class Watchdog:
    """Reports activations still running at their deadline.

    ``on_timeout(activation, timeout)`` is called from the watchdog's thread.

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
        self._heap: list[
            tuple[float, int, Activation, float, Callable[[Activation, float], None]]
        ] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(
        self,
        activation: Activation,
        timeout: float,
        on_timeout: Callable[[Activation, float], None],
    ) -> None:
        """Start watching ``activation``: it must settle within ``timeout`` seconds."""
        activation.watched = True
        deadline = self._clock() + timeout
        with self._lock:
            if self._closed:
                return
            heapq.heappush(
                self._heap,
                (deadline, next(self._order), activation, timeout, on_timeout),
            )
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=self._name, daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._closed:
                    # Drop entries whose activation settled in time.
                    while self._heap and self._heap[0][2].settled:
                        heapq.heappop(self._heap)
                    if self._heap and self._heap[0][0] <= self._clock():
                        break
                    wait = self._heap[0][0] - self._clock() if self._heap else None
                    self._wake.wait(wait)
                if self._closed:
                    return
                _, _, activation, timeout, on_timeout = heapq.heappop(self._heap)
            on_timeout(activation, timeout)

    def close(self) -> None:
        """Stop the thread (idempotent); pending deadlines are forgotten."""
        with self._lock:
            self._closed = True
            self._heap.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
