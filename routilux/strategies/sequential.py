"""The sequential strategy: one task at a time, FIFO, in the calling thread.

Several threads may run sequential jobs at once. What must hold across them is
kept here: a routine's ``max_concurrency`` (a :class:`_Gate` per routine) and the
session lanes (:class:`_Turns`: tasks with the same ``serial_key`` run one at a
time, in the order they asked, handed over first come, first served).
``SequentialStrategy._lock`` guards the gates and turns by key and the counters;
it is never held while a task runs.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from concurrent.futures import Future

from ..checks import wait_limit
from ..exceptions import ReentrantCallError, StrategyShutdownError
from .base import StrategyState, Task, run_task

__all__ = ["SequentialStrategy"]

# Guards the first making of a lane's wake condition (rare: most lanes need none).
_MAKING = threading.Lock()


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


class _Turns:
    """Session lanes across the threads running sequential jobs.

    A serial key is held by one task at a time; tasks that ask for a held key
    wait in line and the key is handed straight to the first of them when it is
    freed, so they run in the order they asked. Keys no task holds are forgotten.
    """

    __slots__ = ("_held", "_lock")

    def __init__(self) -> None:
        # Guards _held: serial key -> [holder thread id (None while the holder
        # awaits on an event loop), waiters in line as (lock, thread id)].
        self._lock = threading.Lock()
        self._held: dict[Hashable, list[Any]] = {}

    def acquire(self, task: Task) -> None:
        """Wait for the turn of ``task.serial_key``; then this thread holds it."""
        key = task.serial_key
        me = threading.get_ident()
        with self._lock:
            entry = self._held.get(key)
            if entry is None:
                self._held[key] = [me, deque()]
                return
            if entry[0] == me:
                # A handler in this lane started a nested job through the same
                # lane in its own thread: waiting would wait for ourselves.
                raise ReentrantCallError(
                    f"session lane {key!r} is already running in this thread: a "
                    "nested sequential job through it would wait for itself; use "
                    "the concurrent strategy or another session"
                )
            waiter = threading.Lock()
            waiter.acquire()
            entry[1].append((waiter, me))
        try:
            waiter.acquire()  # released by free() once the key is handed to us
        except BaseException:
            self._give_up(key, waiter)
            raise

    def _give_up(self, key: Hashable, waiter: threading.Lock) -> None:
        """A wait was interrupted (Ctrl-C): leave the line, or pass the turn on."""
        with self._lock:
            line = self._held[key][1]
            for index, (lock, _) in enumerate(line):
                if lock is waiter:
                    del line[index]
                    return
        self.free(key)  # it was handed to us meanwhile

    def leave(self, key: Hashable) -> None:
        """This thread goes on; the key stays held (its task awaits elsewhere)."""
        with self._lock:
            self._held[key][0] = None

    def free(self, key: Hashable) -> None:
        """Hand the key to the next in line, or forget it."""
        with self._lock:
            entry = self._held[key]
            if not entry[1]:
                del self._held[key]
                return
            waiter, thread = entry[1].popleft()
            entry[0] = thread
        waiter.release()

    def counts(self) -> tuple[int, int]:
        """``(keys held, tasks in line)``."""
        with self._lock:
            return len(self._held), sum(len(e[1]) for e in self._held.values())


class _SequentialLane:
    """A job's FIFO; :meth:`start` runs it to the end in the caller's thread.

    A task handed to an event loop (an ``async def`` handler) is *outstanding*:
    the lane waits for it, and for whatever it submits meanwhile, before
    :meth:`start` returns. So is a :meth:`hold` another thread took.
    """

    __slots__ = ("_build", "_outstanding", "_queue", "_strategy", "_wake")

    def __init__(self, strategy: SequentialStrategy) -> None:
        self._strategy = strategy
        # Tasks, and specs as four cells each: an int, then three values (see
        # accept_specs). No task is an int, so the first cell tells them apart.
        self._queue: deque[Any] = deque()
        self._build: Callable[[int, Any, Any, Any], Task | None] | None = None
        # Guards _outstanding; submit() from another thread wakes the lane. Made
        # when the first task goes to an event loop (most jobs have none).
        self._wake: threading.Condition | None = None
        self._outstanding = 0

    def hold(self) -> None:
        """Another thread is about to submit tasks of this job: do not end yet.

        The runtime calls it while the lane's own thread still runs a handler
        (the watchdog settling it past its timeout, a partial checkpoint step
        written from the flush thread), and :meth:`release` once those tasks
        are submitted; :meth:`start` waits for them instead of returning with
        them queued and nobody to run them. Thread-safe.
        """
        wake = self._condition()
        with wake:
            self._outstanding += 1

    def release(self) -> None:
        """End a :meth:`hold`: its tasks, if any, are submitted. Thread-safe."""
        self._done(None)

    def _condition(self) -> threading.Condition:
        wake = self._wake
        if wake is None:
            with _MAKING:  # two threads must not each make one
                wake = self._wake
                if wake is None:
                    wake = self._wake = threading.Condition(threading.Lock())
        return wake

    def submit(self, task: Task) -> None:
        """Queue ``task`` (from the lane's own thread, or the event loop's)."""
        self._queue.append(task)
        if self._outstanding:
            self._notify()

    def accept_specs(
        self, build: Callable[[int, Any, Any, Any], Task | None]
    ) -> Callable[[tuple[int, Any, Any, Any]], None]:
        """Take tasks as ``(number, payload, params, key)`` cells.

        ``build`` makes the task of each as it is about to run, or answers
        None for one it accounted for itself (see
        :class:`~routilux.strategies.base.JobLane`). The returned function is
        thread-safe as :meth:`submit` is: the four cells go in with one
        ``extend``, and only this lane's thread takes them out.
        """
        self._build = build
        return self._submit_spec

    def _submit_spec(self, cells: tuple[int, Any, Any, Any]) -> None:
        self._queue.extend(cells)
        if self._outstanding:
            self._notify()

    def _notify(self) -> None:
        wake = self._wake
        assert wake is not None
        with wake:
            wake.notify()

    def _next(self) -> Task | None:
        queue = self._queue
        while True:
            if not queue:
                wake = self._wake
                if wake is None:
                    return None
                with wake:
                    while not queue and self._outstanding:
                        wake.wait()
                    if not queue:
                        return None
            item = queue.popleft()
            if type(item) is not int:
                return item  # type: ignore[no-any-return]
            # A spec: its other three cells follow. Its builder answers None
            # for one it settled itself (interrupted while making its task).
            build = self._build
            assert build is not None
            task = build(item, queue.popleft(), queue.popleft(), queue.popleft())
            if task is not None:
                return task

    def _done(self, _: object) -> None:
        wake = self._wake
        assert wake is not None
        with wake:
            self._outstanding -= 1
            wake.notify()

    def start(self, tasks: list[Task]) -> None:
        self._queue.extend(tasks)  # tasks, never ints: see __init__
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
                    with self._condition():
                        self._outstanding += 1
                    pending.add_done_callback(self._done)
        finally:
            strategy.lane_finished(ran)
            # The builder is the job's: kept past the run it would tie the job
            # and this lane into a cycle (a resume hands a new one).
            self._build = None
        if interrupt is not None:
            raise interrupt  # Ctrl-C in this thread, once the job is settled

    def _run(self, task: Task) -> Future[None] | None:
        if task.limit is None and task.serial_key is None:
            return run_task(task, reraise_interrupts=True)
        return self._run_held(task)

    def _run_held(self, task: Task) -> Future[None] | None:
        """Run a task that takes its lane's turn and its routine's place first."""
        turns = self._strategy.turns if task.serial_key is not None else None
        gate = self._strategy.gate(task) if task.limit is not None else None
        try:
            if turns is not None:
                turns.acquire(task)
        except ReentrantCallError as exc:
            task.fail(exc)
            return None
        try:
            if gate is not None:
                gate.acquire(task)
        except ReentrantCallError as exc:
            task.fail(exc)
            self._free(task, turns, None)
            return None
        pending = None
        try:
            pending = run_task(task, reraise_interrupts=True)
        finally:
            if gate is not None:
                gate.leave()
            if turns is not None:
                turns.leave(task.serial_key)
            if pending is None:
                self._free(task, turns, gate)
            else:
                # The handler goes on awaiting on the event loop: it keeps its
                # places until then, though this thread moves on to other tasks.
                pending.add_done_callback(lambda _: self._free(task, turns, gate))
        return pending

    @staticmethod
    def _free(task: Task, turns: _Turns | None, gate: _Gate | None) -> None:
        if gate is not None:
            gate.free()
        if turns is not None:
            turns.free(task.serial_key)


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
        # Guards _gates, _running (jobs looping now), _completed (tasks run) and
        # _waiting (threads in wait_idle: a job's end wakes no one without them).
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting = 0
        self._gates: dict[str, _Gate] = {}
        #: The session lanes of every thread running jobs here.
        self.turns = _Turns()

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
            if not self._running and self._waiting:
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
            self._waiting += 1
            try:
                return self._idle.wait_for(
                    lambda: not self._running, wait_limit(timeout)
                )
            finally:
                self._waiting -= 1

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Refuse new jobs; with ``wait``, wait for running ones. Idempotent."""
        self._state = StrategyState.CLOSED
        if wait:
            self.wait_idle(timeout)

    def stats(self) -> dict[str, Any]:
        """Pool-like statistics. Thread-safe.

        ``lanes`` counts session lanes a task holds, ``lane_queued`` the tasks
        waiting for their lane's turn.
        """
        lanes, lane_queued = self.turns.counts()
        with self._lock:
            return {
                "strategy": self.name,
                "workers": 1,
                "busy": min(self._running, 1),
                "running_jobs": self._running,
                "queued": 0,
                "completed": self._completed,
                "dropped": 0,
                "lanes": lanes,
                "lane_queued": lane_queued,
                "state": self._state.value,
            }
