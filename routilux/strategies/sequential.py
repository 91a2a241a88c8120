"""The sequential strategy: one task at a time, FIFO, in the calling thread."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

from ..checks import wait_limit
from ..exceptions import ReentrantCallError, StrategyShutdownError
from .base import StrategyState, Task, run_task

__all__ = ["SequentialStrategy"]


class _Gate:
    """A routine's concurrency limit across the threads running sequential jobs."""

    __slots__ = ("_holders", "_semaphore")

    def __init__(self, limit: int) -> None:
        self._semaphore = threading.Semaphore(limit)
        self._holders: dict[int, int] = {}  # thread id -> places it holds

    def acquire(self, task: Task) -> None:
        me = threading.get_ident()
        if self._semaphore.acquire(blocking=False):
            self._holders[me] = self._holders.get(me, 0) + 1
            return
        if self._holders.get(me):
            # A handler of this routine started a nested job in its own thread:
            # waiting here would wait for ourselves forever.
            raise ReentrantCallError(
                f"routine {task.limit_key!r} (max_concurrency={task.limit}) is "
                "already running in this thread: a nested sequential job through "
                "it would wait for itself; use the concurrent strategy or raise "
                "the limit"
            )
        self._semaphore.acquire()
        self._holders[me] = self._holders.get(me, 0) + 1

    def leave(self) -> None:
        """This thread no longer holds its place (which stays taken until freed)."""
        me = threading.get_ident()
        left = self._holders.get(me, 1) - 1
        if left:
            self._holders[me] = left
        else:
            self._holders.pop(me, None)

    def free(self, _: object = None) -> None:
        """Give a place back (also a future's done callback, from any thread)."""
        self._semaphore.release()


class _SequentialLane:
    """A job's FIFO; :meth:`start` runs it to the end in the caller's thread.

    A task handed to an event loop (an ``async def`` handler) is *outstanding*:
    the lane waits for it, and for whatever it submits meanwhile, before
    :meth:`start` returns.
    """

    __slots__ = ("_outstanding", "_queue", "_strategy", "_wake")

    def __init__(self, strategy: SequentialStrategy) -> None:
        self._strategy = strategy
        self._queue: deque[Task] = deque()
        # Guards _outstanding; submit() from another thread wakes the lane. Made
        # when the first task goes to an event loop (most jobs have none).
        self._wake: threading.Condition | None = None
        self._outstanding = 0

    def submit(self, task: Task) -> None:
        """Queue ``task`` (from the lane's own thread, or the event loop's)."""
        self._queue.append(task)
        if self._outstanding:
            wake = self._wake
            assert wake is not None
            with wake:
                wake.notify()

    def _next(self) -> Task | None:
        queue = self._queue
        if queue:
            return queue.popleft()
        wake = self._wake
        if wake is None:
            return None
        with wake:
            while not queue and self._outstanding:
                wake.wait()
            return queue.popleft() if queue else None

    def _done(self, _: object) -> None:
        wake = self._wake
        assert wake is not None
        with wake:
            self._outstanding -= 1
            wake.notify()

    def start(self, tasks: list[Task]) -> None:
        self._queue.extend(tasks)
        strategy = self._strategy
        strategy.lane_started()
        ran = 0
        interrupt: BaseException | None = None
        try:
            while (task := self._next()) is not None:
                ran += 1
                try:
                    pending = self._run(task)
                except BaseException as exc:  # noqa: BLE001 - run_task reported it
                    interrupt = interrupt or exc
                    continue
                if pending is not None:
                    if self._wake is None:
                        self._wake = threading.Condition(threading.Lock())
                    with self._wake:
                        self._outstanding += 1
                    pending.add_done_callback(self._done)
        finally:
            strategy.lane_finished(ran)
        if interrupt is not None:
            raise interrupt  # Ctrl-C in this thread, once the job is settled

    def _run(self, task: Task) -> Future[None] | None:
        if task.limit is None:
            return run_task(task, reraise_interrupts=True)
        gate = self._strategy.gate(task)
        try:
            gate.acquire(task)
        except ReentrantCallError as exc:
            task.fail(exc)
            return None
        pending = None
        try:
            pending = run_task(task, reraise_interrupts=True)
        finally:
            gate.leave()
            if pending is None:
                gate.free()
            else:
                # The handler goes on awaiting on the event loop: it keeps its
                # place until then, though this thread moves on to other tasks.
                pending.add_done_callback(gate.free)
        return pending


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
        self._gates: dict[str, _Gate] = {}

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

    def gate(self, task: Task) -> _Gate:
        """The gate enforcing ``task``'s concurrency limit across threads."""
        with self._lock:
            gate = self._gates.get(task.limit_key)
            if gate is None:
                gate = self._gates[task.limit_key] = _Gate(task.limit or 1)
            return gate

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job runs in any thread. Thread-safe."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._running, wait_limit(timeout))

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
