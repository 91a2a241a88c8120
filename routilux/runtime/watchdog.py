"""The watchdog: deadlines for activations and for whole jobs.

Python cannot stop a thread, so a timed-out sync handler runs on; at its deadline
the watchdog reports it (the job then goes on, or stops, by the routine's error
strategy) and its late emits are discarded. An async handler's task is cancelled.
A job deadline cancels the job.

One daemon thread per flow runs while deadlines are pending and ends when none is
left, so a flow that is dropped leaves no thread behind. A deadline that is met is
cancelled through its :class:`Deadline` handle: the handle lets go of its target at
once, and cancelled entries are swept from the heap once they are half of it, so
finished jobs are never kept alive by an earlier, longer deadline.

``Watchdog._lock`` guards the heap and the thread; it is never held while a
callback runs and never taken while a ledger's lock is held... except by
:meth:`Deadline.cancel`, which takes it after the ledger's lock is released.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Deadline", "Watchdog"]

_log = logging.getLogger("routilux.runtime")

#: Waits are cut into pieces no longer than this (threading refuses huge waits).
_MAX_WAIT = 3600.0


class Deadline:
    """A pending deadline; :meth:`cancel` it when its target finished in time."""

    __slots__ = ("_watchdog", "callback", "due", "order", "target", "timeout")

    def __init__(
        self,
        watchdog: Watchdog,
        due: float,
        order: int,
        target: Any,
        timeout: float,
        callback: Callable[[Any, float], None],
    ) -> None:
        self._watchdog = watchdog
        self.due = due
        self.order = order
        self.target: Any = target
        self.timeout = timeout
        self.callback: Callable[[Any, float], None] | None = callback

    def __lt__(self, other: Deadline) -> bool:
        return (self.due, self.order) < (other.due, other.order)

    def cancel(self) -> None:
        """Forget the deadline and let go of its target. Thread-safe; idempotent."""
        self._watchdog.forget(self)


class Watchdog:
    """Calls ``callback(target, timeout)`` for targets still pending at their deadline.

    The callback runs on the watchdog's thread, outside its lock.

    Args:
        name: The watchdog thread's name.
        clock: Monotonic time source (injectable for tests).

    Thread-safe.
    """

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._clock = clock
        # Guards _heap, _cancelled, _thread and _closed.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[Deadline] = []
        self._cancelled = 0  # cancelled entries still in the heap
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(
        self, target: Any, timeout: float, callback: Callable[[Any, float], None]
    ) -> Deadline:
        """Report ``target`` unless its deadline is cancelled within ``timeout`` s."""
        deadline = Deadline(
            self, self._clock() + timeout, next(self._order), target, timeout, callback
        )
        with self._lock:
            if self._closed:
                deadline.callback = deadline.target = None
                return deadline
            heapq.heappush(self._heap, deadline)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=self._name, daemon=True
                )
                self._thread.start()
            elif self._heap[0] is deadline:
                self._wake.notify()
        return deadline

    def forget(self, deadline: Deadline) -> None:
        """Cancel ``deadline`` (see :meth:`Deadline.cancel`)."""
        with self._lock:
            if deadline.callback is None:
                return
            deadline.callback = deadline.target = None
            self._cancelled += 1
            if self._cancelled * 2 > len(self._heap):
                # In place: the watchdog thread holds on to this very list.
                self._heap[:] = [d for d in self._heap if d.callback is not None]
                heapq.heapify(self._heap)
                self._cancelled = 0
                self._wake.notify()

    def _next_due(self) -> Deadline | None:
        """Wait (lock held) for the next due deadline; None once idle or closed."""
        heap = self._heap
        while not self._closed:
            while heap and heap[0].callback is None:
                heapq.heappop(heap)
                self._cancelled -= 1
            if not heap:
                return None  # idle: the thread ends; watch() starts a new one
            wait = heap[0].due - self._clock()
            if wait <= 0:
                return heapq.heappop(heap)
            self._wake.wait(min(wait, _MAX_WAIT))
        return None

    def _loop(self) -> None:
        while True:
            with self._lock:
                due = self._next_due()
                if due is None:
                    self._thread = None
                    return
                callback, target = due.callback, due.target
                due.callback = due.target = None
            if callback is not None:
                try:
                    callback(target, due.timeout)
                except BaseException:  # noqa: BLE001 - one failure must not end every timeout
                    _log.exception("a timeout callback failed for %r", target)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the thread (idempotent); pending deadlines are forgotten."""
        with self._lock:
            self._closed = True
            for deadline in self._heap:
                deadline.callback = deadline.target = None
            self._heap.clear()
            self._cancelled = 0
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout)
