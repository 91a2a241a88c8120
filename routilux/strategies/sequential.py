"""The sequential strategy: one task at a time, FIFO, in the calling thread."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from ..exceptions import StrategyShutdownError
from .base import StrategyState, Task

__all__ = ["SequentialStrategy"]


class _SequentialLane:
    """A job's FIFO; :meth:`start` runs it to the end in the caller's thread."""

    __slots__ = ("_queue", "_strategy", "submit")

    def __init__(self, strategy: SequentialStrategy) -> None:
        self._strategy = strategy
        self._queue: deque[Task] = deque()
        self.submit = self._queue.append

    def start(self, tasks: list[Task]) -> None:
        queue = self._queue
        queue.extend(tasks)
        strategy = self._strategy
        strategy.lane_started()
        ran = 0
        try:
            while queue:
                task = queue.popleft()
                ran += 1
                if task.limit is None:
                    task.run()
                else:
                    with strategy.gate(task):
                        task.run()
        finally:
            strategy.lane_finished(ran)


class SequentialStrategy:
    """Runs a job's activations one at a time, FIFO, in the calling thread.

    ``execute`` returns when the job is complete.

    Siblings of one emit run in the order their connections were made, so runs are
    deterministic. Several threads may execute jobs at once; a routine's
    ``max_concurrency`` then still holds across them.

    Args:
        max_workers: Ignored beyond validation: one task runs at a time per job.
        name_prefix: Unused (no threads are created).
    """

    name = "sequential"
    blocking = True

    def __init__(self, max_workers: int = 1, name_prefix: str = "routilux") -> None:
        self.max_workers = 1
        self._state = StrategyState.OPEN
        self._running = 0
        self._completed = 0
        # Guards _gates, _running (jobs looping now) and _completed (tasks run).
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._gates: dict[str, threading.Semaphore] = {}

    @property
    def state(self) -> StrategyState:
        """OPEN until shutdown, then CLOSED."""
        return self._state

    def open_lane(self) -> _SequentialLane:
        """A FIFO lane for a new job. Thread-safe."""
        if self._state is StrategyState.CLOSED:
            raise StrategyShutdownError(
                "cannot schedule new activations after shutdown"
            )
        return _SequentialLane(self)

    def lane_started(self) -> None:
        """Count a job running in some thread (for ``wait_idle``)."""
        with self._lock:
            self._running += 1

    def lane_finished(self, ran: int) -> None:
        """A job's loop ended after running ``ran`` tasks."""
        with self._lock:
            self._running -= 1
            self._completed += ran
            if not self._running:
                self._idle.notify_all()

    def gate(self, task: Task) -> threading.Semaphore:
        """The semaphore enforcing ``task``'s concurrency limit across threads."""
        with self._lock:
            gate = self._gates.get(task.limit_key)
            if gate is None:
                gate = self._gates[task.limit_key] = threading.Semaphore(
                    task.limit or 1
                )
            return gate

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job runs in any thread. Thread-safe."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, timeout)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Refuse new jobs; with ``wait``, wait for running ones. Idempotent."""
        self._state = StrategyState.CLOSED
        if wait:
            self.wait_idle(timeout)

    def stats(self) -> dict[str, Any]:
        """Pool-like statistics. Thread-safe."""
        with self._lock:
            return {
                "strategy": self.name,
                "workers": 1,
                "busy": min(self._running, 1),
                "running_jobs": self._running,
                "queued": 0,
                "completed": self._completed,
                "dropped": 0,
                "state": self._state.value,
            }
