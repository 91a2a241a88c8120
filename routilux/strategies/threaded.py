"""The concurrent strategy: activations run on a ThreadPoolExecutor.

Ready tasks wait in one FIFO per job (a task's ``fair_key``), and workers take them
round-robin over the jobs that have some: one task of the first job, one of the
next, and so on. A job that queues 10,000 activations at once, or a long chain,
therefore does not hold up the jobs started after it. A job's only ready task
waits without a FIFO (a backlog of small jobs then holds one object fewer per
job); its second one makes it one.

Before a task is ready it passes two gates, in this order:

1. its *serial key* (a session lane): tasks with the same ``serial_key`` run one
   at a time, in the order they were submitted; the others wait in that key's
   queue and the next one goes on when the running one ends;
2. its routine's ``max_concurrency`` (``limit_key``, ``limit``): a task over the
   limit waits in the routine's queue and becomes ready when one of that
   routine's tasks ends.

``ThreadedStrategy._lock`` guards all of it (the FIFOs, the rotation, the gates
and the counters). It is never held while a task runs, and never together with a
job's ledger lock. Its hot paths take it as :mod:`routilux._locks` describes, so
that workers do not convoy on it.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from concurrent.futures import Future

from .._locks import take_contended
from ..checks import wait_limit
from ..exceptions import StrategyShutdownError
from .base import StrategyState, Task, run_task

__all__ = ["ThreadedStrategy"]


class ThreadedStrategy:
    """Runs activations on up to ``max_workers`` named threads.

    ``execute`` returns at once; many jobs may run at the same time.

    Ready tasks wait in one FIFO per job, taken round-robin across the jobs with
    work (see the module docstring). A pool thread that takes work keeps taking it
    until no task is ready (a *drainer*), and a new pool task is started only while
    fewer than ``max_workers`` drainers run. A busy pool therefore hands work over
    through the FIFOs alone, with no future or thread wake-up per activation, while
    an idle worker is always put to use as soon as work arrives.

    A routine's ``max_concurrency`` and a session lane's one-at-a-time rule are
    enforced without blocking workers: a task that must wait is kept in a queue of
    its routine (or lane) and becomes ready when the task ahead of it ends.

    The worker threads start with the strategy and end at :meth:`shutdown`.

    Args:
        max_workers: The number of worker threads.
        name_prefix: Prefix of the worker threads' names.
    """

    name = "concurrent"
    blocking = False

    def __init__(self, max_workers: int = 5, name_prefix: str = "routilux") -> None:
        self.max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=name_prefix)
        self._state = StrategyState.OPEN
        # Guards everything below: the FIFOs, the rotation, the gates, the counters.
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        # fair key (job) -> its ready tasks: the task itself while it is the
        # job's only one (most jobs in a backlog: no FIFO made per job), else
        # the job's FIFO. _turns lists the keys that have some, in the order
        # they take their next turn. The FIFO of the job that ran dry last stays
        # in _ready, empty (_spare), for that job's next task: a chain of
        # activations then costs no FIFO made and dropped per hop.
        self._ready: dict[Hashable, Task | deque[Task]] = {}
        self._turns: deque[Hashable] = deque()
        self._spare: Hashable | None = None
        self._dropping = False
        self._drainers = 0
        self._in_flight = 0  # accepted and not yet finished (queued + parked + busy)
        self._busy = 0
        self._awaiting = 0  # handed to an event loop, not yet finished
        self._completed = 0
        self._dropped = 0
        self._gate_running: dict[str, int] = {}
        self._gate_waiting: dict[str, deque[Task]] = {}
        # serial key -> the tasks behind the one that holds it (an entry exists
        # while some task of the key is queued, running or awaiting).
        self._serials: dict[Hashable, deque[Task]] = {}
        self._serial_waiting = 0
        self._start_workers()

    def _start_workers(self) -> None:
        # ThreadPoolExecutor starts a thread per submit only while none is idle, so
        # hold the first tasks until every worker exists. Starting the pool with the
        # strategy (as a worker pool would) keeps thread start-up out of the first
        # job's latency: a 20-worker fan-out otherwise loses ~8 ms to it.
        all_started = threading.Event()
        for _ in range(self.max_workers):
            self._executor.submit(all_started.wait)
        all_started.set()

    @property
    def state(self) -> StrategyState:
        """OPEN until shutdown, then CLOSED."""
        return self._state

    def open_lane(self) -> ThreadedStrategy:
        """The strategy itself serves as every job's lane. Thread-safe."""
        if self._state is StrategyState.CLOSED:
            raise StrategyShutdownError(
                "cannot schedule new activations after shutdown"
            )
        return self

    def start(self, tasks: list[Task]) -> None:
        """Schedule a job's first tasks and return at once."""
        for task in tasks:
            self.submit(task)

    def submit(self, task: Task) -> None:
        """Queue ``task``, or keep it behind its lane or its routine's limit.

        Thread-safe.
        """
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            self._in_flight += 1
            if task.serial_key is not None or task.limit is not None:
                if not self._admit_held_locked(task):
                    return
            else:  # the common case: _push_locked, inlined
                key = task.fair_key
                queue = self._ready.get(key)
                if queue is None:
                    self._ready[key] = task  # the job's only ready task
                    self._turns.append(key)
                elif not isinstance(queue, deque):
                    self._ready[key] = deque((queue, task))  # a FIFO from now on
                else:
                    if not queue:  # the spare: its job is back in the rotation
                        self._spare = None
                        self._turns.append(key)
                    queue.append(task)
            if self._drainers >= self.max_workers:
                return
            self._drainers += 1
        finally:
            lock.release()
        self._spawn_drainer()

    def _admit_held_locked(self, task: Task) -> bool:
        """Pass ``task`` through its lane, then its gate (lock held); True: ready."""
        serial = task.serial_key
        if serial is not None:
            waiting = self._serials.get(serial)
            if waiting is not None:
                waiting.append(task)
                self._serial_waiting += 1
                return False
            self._serials[serial] = deque()
        return self._admit_locked(task)

    def _admit_locked(self, task: Task) -> bool:
        """Pass ``task`` through its routine's gate (lock held); True: it is ready."""
        limit = task.limit
        if limit is not None:
            key = task.limit_key
            running = self._gate_running.get(key, 0)
            if running >= limit:
                self._gate_waiting.setdefault(key, deque()).append(task)
                return False
            self._gate_running[key] = running + 1
        self._push_locked(task)
        return True

    def _push_locked(self, task: Task) -> None:
        """Append ``task`` to its job's ready FIFO (lock held).

        A job that had none joins the rotation at the back.
        """
        key = task.fair_key
        queue = self._ready.get(key)
        if queue is None:
            self._ready[key] = task  # the job's only ready task
            self._turns.append(key)
        elif not isinstance(queue, deque):
            self._ready[key] = deque((queue, task))
        else:
            if not queue:  # the spare
                self._spare = None
                self._turns.append(key)
            queue.append(task)

    def _take_locked(self) -> Task:
        """The next ready task, round-robin over jobs (lock held, one is ready).

        The job at the head of the rotation gives one task and goes to the back
        if it has more; a job left with none leaves the rotation, and its FIFO
        becomes the spare (a job that had one task only had no FIFO).
        """
        turns = self._turns
        key = turns[0]
        queue = self._ready[key]
        if not isinstance(queue, deque):
            del self._ready[key]
            turns.popleft()
            return queue
        task = queue.popleft()
        if not queue:
            turns.popleft()
            self._keep_spare_locked(key)
        elif len(turns) > 1:
            turns.rotate(-1)
        return task

    def _keep_spare_locked(self, key: Hashable) -> None:
        """Keep the empty FIFO of ``key`` for its job's next task; drop the last."""
        spare = self._spare
        if spare is not None:
            del self._ready[spare]
        self._spare = key

    def _spawn_drainer(self) -> None:
        try:
            self._executor.submit(self._drain)
        except RuntimeError:
            # The pool is gone (shutdown without waiting): nothing will run what
            # is queued, so account for it here.
            with self._lock:
                self._drainers -= 1
            self._drop_ready()

    def _drop_ready(self) -> None:
        while True:
            with self._lock:
                if not self._turns or self._drainers:
                    return
                task = self._take_locked()
            run_task(task, dropping=True)
            with self._lock:
                # What the drop frees (a gate's or a lane's next task) is dropped
                # by this loop, not by drainers the pool can no longer start.
                self._drainers -= self._settle_locked(task, ran=False)

    def _first_task(self) -> tuple[Task | None, bool]:
        """A new drainer's first task and whether to drop it.

        The task is None (and the drainer leaves) when none is ready.
        """
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            if not self._turns:
                self._drainers -= 1
                return None, False
            self._busy += 1
            return self._take_locked(), self._dropping
        finally:
            lock.release()

    def _drain(self) -> None:
        lock = self._lock
        turns = self._turns
        ready = self._ready
        task, dropping = self._first_task()
        while task is not None:
            done, pending = task, None
            try:
                pending = run_task(done, dropping)
            finally:
                # Whatever happened above, the task is accounted for and the worker
                # takes the next one (or leaves) in the same critical section: a
                # lost drainer would stall the pool for good.
                if not lock.acquire(False):
                    take_contended(lock)
                try:
                    self._busy -= 1
                    if pending is None:
                        spawn = self._settle_locked(done, ran=not dropping)
                    else:
                        self._awaiting += 1
                        spawn = 0
                    if turns:  # _take_locked, inlined for a job's only task
                        key = turns[0]
                        queue = ready[key]
                        if not isinstance(queue, deque):
                            task = queue
                            del ready[key]
                            turns.popleft()
                        else:
                            task = self._take_locked()
                        self._busy += 1
                        dropping = self._dropping
                    else:
                        self._drainers -= 1
                        task = None
                finally:
                    lock.release()
                if pending is not None:
                    pending.add_done_callback(self._settler(done))
                if spawn:
                    self._spawn_drainers(spawn)

    def _settler(self, task: Task) -> Callable[[Future[None]], None]:
        def settle(_: Future[None]) -> None:
            self._settle(task, ran=True, waited=True)

        return settle

    def _settle(self, task: Task, ran: bool, waited: bool = False) -> None:
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            if waited:
                self._awaiting -= 1
            spawn = self._settle_locked(task, ran)
        finally:
            lock.release()
        if spawn:
            self._spawn_drainers(spawn)

    def _spawn_drainers(self, count: int) -> None:
        for _ in range(count):
            self._spawn_drainer()

    def _settle_locked(self, task: Task, ran: bool) -> int:
        """Account for a finished task (lock held); returns drainers to start."""
        if ran:
            self._completed += 1
        else:
            self._dropped += 1
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.notify_all()
        if task.limit is None and task.serial_key is None:
            return 0
        return self._free_places_locked(task)

    def _free_places_locked(self, task: Task) -> int:
        """Hand the places a finished task held on (lock held); drainers to start.

        Its routine's gate goes to the next task of that routine, its lane to the
        lane's next task. Even while dropping: a drainer drops them, or, when the
        pool is gone, _drop_ready does. Left waiting they would strand.
        """
        ready = 0
        if task.limit is not None:
            key = task.limit_key
            waiting = self._gate_waiting.get(key)
            if waiting:
                self._push_locked(waiting.popleft())  # the freed place goes on
                ready += 1
            else:
                self._gate_running[key] -= 1
        serial = task.serial_key
        if serial is not None:
            behind = self._serials[serial]
            if behind:
                self._serial_waiting -= 1
                ready += self._admit_locked(behind.popleft())
            else:
                del self._serials[serial]
        spawn = min(ready, self.max_workers - self._drainers)
        if spawn > 0:
            self._drainers += spawn
            return spawn
        return 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running. Thread-safe."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._in_flight, wait_limit(timeout))

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop the pool. Idempotent. Thread-safe.

        Args:
            wait: True drains every queued and running task (tasks they emit
                included) before the threads are released. False drops what has
                not started and returns without joining the threads.
            timeout: With ``wait``, the longest time to wait for the drain. Work
                still queued after it is dropped, and the call returns without
                joining threads whose handler still runs (Python cannot stop them);
                they end when their handler returns.
        """
        self._state = StrategyState.CLOSED
        if wait and self.wait_idle(timeout):
            self._executor.shutdown(wait=True)
            return
        with self._lock:
            self._dropping = True
        self._executor.shutdown(wait=False)

    def stats(self) -> dict[str, Any]:
        """Pool statistics. Thread-safe.

        ``workers``, ``busy``, ``awaiting`` (handed to the event loop),
        ``queued`` (accepted, not started), ``completed``, ``dropped``,
        ``jobs_ready`` (jobs with a task ready to run), ``lanes`` (session lanes
        with a task queued or running) and ``lane_queued`` (tasks waiting behind
        their lane's running one).
        """
        with self._lock:
            return {
                "strategy": self.name,
                "workers": self.max_workers,
                "busy": self._busy,
                "awaiting": self._awaiting,
                "queued": self._in_flight - self._busy - self._awaiting,
                "completed": self._completed,
                "dropped": self._dropped,
                "jobs_ready": len(self._turns),
                "lanes": len(self._serials),
                "lane_queued": self._serial_waiting,
                "state": self._state.value,
            }
