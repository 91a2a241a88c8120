"""ManualStrategy: a seeded scheduler that makes concurrency bugs reproducible.

A race shows up on a thread pool once in a thousand runs, and never under a
debugger. ``Flow(execution_strategy=ManualStrategy(seed=7))`` runs a job's
activations one at a time, but interleaves them as a pool could: every
activation runs on a thread of its own, and only the one holding the *baton*
runs. The scheduler (the thread that called ``execute``) hands the baton to an
activation chosen by a ``random.Random(seed)``, and takes it back when the
activation finishes or reaches a :func:`yield_point` (a place where a thread
switch would hurt: between a read and a write). The same seed gives the same
order every run, so a bug found once is reproduced every time from its seed;
:func:`explore` runs a scenario over many seeds and reports the first that
fails.

A routine's ``max_concurrency`` holds: an activation whose routine has no place
left (its other activations hold them, perhaps paused at a yield point) is not
chosen until one finishes. So do session lanes: of a job's activations with the
same ``serial_key`` only the earliest unfinished one may be chosen.
``execute`` returns when the job is done, as with the sequential strategy.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, StrategyShutdownError
from ..strategies.base import StrategyState, run_task

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from concurrent.futures import Future

    from ..strategies.base import Task

__all__ = ["ManualStrategy", "SeedFailure", "explore", "yield_point"]

_local = threading.local()  # .turn: the _Turn of the activation this thread runs


def yield_point() -> None:
    """Let the seeded scheduler run another activation here (a no-op elsewhere).

    Put it where a thread switch would expose a race, such as between reading
    shared state and writing it back.
    """
    turn: _Turn | None = getattr(_local, "turn", None)
    if turn is not None:
        turn.pause()


class _Turn:
    """One activation on its own thread, running only while it holds the baton."""

    def __init__(self, task: Task, order: int) -> None:
        self.task = task
        self.order = order
        self.started = False
        self.finished = False
        self.pending: Future[None] | None = None  # an async handler still awaiting
        self._go = threading.Semaphore(0)
        self._back = threading.Semaphore(0)
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        """Give this activation the baton until it yields or finishes."""
        if self._thread is None:
            self.started = True
            self._thread = threading.Thread(
                target=self._run, name=f"routilux-manual-{self.order}", daemon=True
            )
            self._thread.start()
        else:
            self._go.release()
        self._back.acquire()

    def pause(self) -> None:
        """Hand the baton back (from the activation's own thread) and wait."""
        self._back.release()
        self._go.acquire()

    def _run(self) -> None:
        _local.turn = self
        try:
            self.pending = run_task(self.task)
        finally:
            _local.turn = None
            self.finished = True
            self._back.release()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


class _ManualLane:
    def __init__(self, strategy: ManualStrategy) -> None:
        self._strategy = strategy
        self._queued: list[_Turn] = []
        self._lock = threading.Lock()  # guards _queued (submit may come from a loop)
        self._arrived = threading.Condition(self._lock)

    def submit(self, task: Task) -> None:
        with self._lock:
            self._queued.append(_Turn(task, self._strategy.next_order()))
            self._arrived.notify()

    def start(self, tasks: list[Task]) -> None:
        for task in tasks:
            self.submit(task)
        self._strategy.run_lane(self)

    def take_turns(self) -> list[_Turn]:
        with self._lock:
            return list(self._queued)

    def forget(self, turn: _Turn) -> None:
        with self._lock:
            self._queued.remove(turn)

    def wait_for_more(self, known: int, timeout: float) -> None:
        with self._arrived:
            if len(self._queued) == known:
                self._arrived.wait(timeout)


class ManualStrategy:
    """Runs activations one at a time in an order chosen by ``seed``.

    Args:
        seed: The seed of the order (any int); the same seed, the same order.
        max_workers: Accepted for the strategy protocol; one runs at a time.

    Raises:
        ConfigurationError: When ``seed`` is not an int.
    """

    name = "manual"
    blocking = True

    def __init__(self, seed: int = 0, max_workers: int = 1) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigurationError(
                f"ManualStrategy seed must be an int, got {seed!r}"
            )
        self.seed = seed
        self.max_workers = 1
        self._random = random.Random(seed)
        self._state = StrategyState.OPEN
        self._orders = iter(range(1 << 62))
        self._completed = 0
        self._busy = 0
        self._lock = threading.Lock()  # guards _busy and _completed
        self._idle = threading.Condition(self._lock)
        #: The activations' routine ids in the order they were given the baton
        #: for the first time (what a failing seed replays).
        self.order: list[str] = []

    @property
    def state(self) -> StrategyState:
        """OPEN until shutdown, then CLOSED."""
        return self._state

    def next_order(self) -> int:
        """A number per activation, in submission order (for thread names)."""
        return next(self._orders)

    def open_lane(self) -> _ManualLane:
        """A lane for a new job."""
        if self._state is StrategyState.CLOSED:
            raise StrategyShutdownError(
                "cannot schedule new activations after shutdown"
            )
        return _ManualLane(self)

    def run_lane(self, lane: _ManualLane) -> None:
        """Run a job's activations to the end, in this thread (the scheduler)."""
        with self._lock:
            self._busy += 1
        try:
            self._schedule(lane)
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()

    def _schedule(self, lane: _ManualLane) -> None:
        running: dict[str, int] = {}  # routine -> activations started, not finished
        while True:
            turns = lane.take_turns()
            for turn in turns:
                if turn.finished and (turn.pending is None or turn.pending.done()):
                    lane.forget(turn)
                    turn.join()
                    key = turn.task.limit_key
                    running[key] -= 1
                    with self._lock:
                        self._completed += 1
            turns = lane.take_turns()
            if not turns:
                return
            choices = [
                t for t in turns if not t.finished and self._may_run(t, running, turns)
            ]
            if not choices:  # only async handlers still awaiting on the loop
                lane.wait_for_more(len(turns), 0.01)
                continue
            turn = self._random.choice(choices)
            if not turn.started:
                key = turn.task.limit_key
                running[key] = running.get(key, 0) + 1
                self.order.append(key)
            turn.step()

    @staticmethod
    def _may_run(turn: _Turn, running: dict[str, int], turns: list[_Turn]) -> bool:
        if turn.started:
            return True
        serial = turn.task.serial_key
        if serial is not None:
            # Its lane's turn: the earliest of the lane not yet done (``turns``
            # is in submission order; done ones were forgotten above).
            first = next(t for t in turns if t.task.serial_key == serial)
            if first is not turn:
                return False
        limit = turn.task.limit
        return limit is None or running.get(turn.task.limit_key, 0) < limit

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job runs. Thread-safe."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Refuse new jobs; with ``wait``, wait for running ones. Idempotent."""
        self._state = StrategyState.CLOSED
        if wait:
            self.wait_idle(timeout)

    def stats(self) -> dict[str, Any]:
        """Pool-like statistics."""
        with self._lock:
            return {
                "strategy": self.name,
                "workers": 1,
                "busy": min(self._busy, 1),
                "queued": 0,
                "completed": self._completed,
                "dropped": 0,
                "state": self._state.value,
                "seed": self.seed,
            }


@dataclass(frozen=True)
class SeedFailure:
    """The first seed whose run of a scenario failed.

    Attributes:
        seed: The seed; run the scenario with it again to see the failure again.
        error: What the scenario raised.
        tried: How many seeds ran (the failing one included).
    """

    seed: int
    error: BaseException
    tried: int


def explore(
    scenario: Callable[[int], Any], seeds: Iterable[int] = range(100)
) -> SeedFailure | None:
    """Run ``scenario(seed)`` for each seed; the first that raises, or None.

    The scenario builds its flow with ``ManualStrategy(seed)``, runs it and
    asserts what must hold; an ``AssertionError`` (or any exception) marks the
    seed as failing.
    """
    for tried, seed in enumerate(seeds, start=1):
        failure = _try(scenario, seed, tried)
        if failure is not None:
            return failure
    return None


def _try(scenario: Callable[[int], Any], seed: int, tried: int) -> SeedFailure | None:
    try:
        scenario(seed)
    except Exception as exc:  # noqa: BLE001 - a failing seed is the answer
        return SeedFailure(seed, exc, tried)
    return None
