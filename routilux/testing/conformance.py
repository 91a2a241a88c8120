"""A conformance suite for execution strategies.

Every registered strategy must pass it; a new strategy (the Ray one included) is
checked by calling :func:`check_strategy` with its factory::

    from routilux.testing import check_strategy

    check_strategy(lambda: MyStrategy(max_workers=4))

Each check builds fresh strategies with the factory, asserts exact counts (nothing
lost, nothing run twice) and that every wait returns, and shuts the strategy down.
The checks speak to the strategy in two ways: through a :class:`~routilux.Flow`
(what users do) and directly with small :class:`~routilux.strategies.Task` objects
(what the runtime relies on: failures reported with ``fail``, futures honoured,
concurrency limits kept, shutdown semantics).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..exceptions import StrategyShutdownError
from ..flow import Flow
from ..job_state import JobStatus
from ..routine import Routine
from ..strategies.base import StrategyState

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from ..strategies.base import ExecutionStrategy, Task

__all__ = ["CHECKS", "ProbeTask", "check_strategy"]

#: Seconds any wait of the suite may take before the check fails.
WAIT = 10.0


class ProbeTask:
    """A task that records what the strategy did with it.

    Args:
        key: Its concurrency key.
        limit: Its concurrency limit (None: none).
        action: Called by :meth:`run`; may raise or return a future.
        fair_key: The job it stands for.
        serial_key: Its session lane (None: none).
    """

    def __init__(
        self,
        key: str = "probe",
        limit: int | None = None,
        action: Callable[[], Future[None] | None] | None = None,
        *,
        fair_key: Hashable = "probe-job",
        serial_key: Hashable | None = None,
    ) -> None:
        self.limit_key = key
        self.limit = limit
        self.fair_key = fair_key
        self.serial_key = serial_key
        self._action = action
        self.runs = 0
        self.drops: list[str] = []
        self.failures: list[BaseException] = []
        self._lock = threading.Lock()  # guards the counters above

    def run(self) -> Future[None] | None:
        """Count the run, then do the action."""
        with self._lock:
            self.runs += 1
        return self._action() if self._action is not None else None

    def spec(self) -> dict[str, Any]:
        """A JSON-ready description of the probe."""
        return {"routine_id": self.limit_key, "runs": self.runs}

    def drop(self, reason: str) -> None:
        """Count a drop."""
        with self._lock:
            self.drops.append(reason)

    def fail(self, error: BaseException) -> None:
        """Count a reported failure."""
        with self._lock:
            self.failures.append(error)


class _Counter(Routine):
    """Counts its calls; the source variant emits ``fan`` values.

    It follows the rules of remote strategies: its setting is in its config, and
    what it saw is in its statistics (``calls``, ``seen``), which a remote
    strategy brings back when a job ends.
    """

    def __init__(self, fan: int = 0) -> None:
        super().__init__()
        self.set_config(fan=fan)
        self.define_slot("trigger", handler=self.fire)
        self.define_slot("input", handler=self.take)
        self.define_event("output", ["value"])

    def fire(self, **_: Any) -> None:
        for value in range(self.get_config("fan", 0)):
            self.emit("output", value=value)

    def take(self, value: Any = None) -> None:
        self._track_operation("calls", value=value)
        self.emit("output", value=value)

    @property
    def calls(self) -> int:
        """How many values arrived."""
        return int(self.get_stat("total_calls", 0))

    @property
    def seen(self) -> list[Any]:
        """The values that arrived, in arrival order."""
        return [item["value"] for item in self.get_stat("calls_history", [])]


def _fan_flow(strategy: ExecutionStrategy, fan: int, width: int) -> Flow:
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(_Counter(fan), "src")
    flow.add_routine(_Counter(), "sink")
    for index in range(width):
        flow.add_routine(_Counter(), f"mid{index}")
        flow.connect("src", "output", f"mid{index}", "input")
        flow.connect(f"mid{index}", "output", "sink", "input")
    return flow


def check_fan_out_fan_in(factory: Callable[[], ExecutionStrategy]) -> None:
    """Every emit of a fan-out/fan-in flow arrives once."""
    fan, width = 50, 4
    with _fan_flow(factory(), fan, width) as flow:
        job = flow.execute("src")
        assert job.wait(WAIT), "job did not finish"
        assert job.status is JobStatus.COMPLETED, job.errors
        sink = flow.routines["sink"]
        assert isinstance(sink, _Counter)
        assert sink.calls == fan * width
        assert sorted(sink.seen) == sorted(list(range(fan)) * width)


def check_concurrent_jobs(factory: Callable[[], ExecutionStrategy]) -> None:
    """Many jobs on one flow, started from several threads, each complete."""
    jobs_per_thread, threads = 5, 4
    with _fan_flow(factory(), 10, 2) as flow:
        started: list[Any] = []
        guard = threading.Lock()

        def start() -> None:
            for _ in range(jobs_per_thread):
                job = flow.execute("src")
                with guard:
                    started.append(job)

        workers = [threading.Thread(target=start) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT)
        assert flow.wait_for_completion(WAIT)
        assert len(started) == jobs_per_thread * threads
        assert all(job.status is JobStatus.COMPLETED for job in started)
        sink = flow.routines["sink"]
        assert isinstance(sink, _Counter)
        assert sink.calls == len(started) * 10 * 2


def check_failure_reported(factory: Callable[[], ExecutionStrategy]) -> None:
    """An exception escaping ``run`` is reported with ``fail``; waits return."""

    def broken() -> None:
        raise RuntimeError("escaped the task")

    strategy = factory()
    try:
        task = ProbeTask(action=broken)
        strategy.open_lane().start([task])
        assert strategy.wait_idle(WAIT), "wait_idle hung after a failing task"
        assert [str(e) for e in task.failures] == ["escaped the task"]
        after = ProbeTask()
        strategy.open_lane().start([after])
        assert strategy.wait_idle(WAIT)
        assert after.runs == 1, "the strategy stopped working after a failure"
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)


def check_future_in_flight(factory: Callable[[], ExecutionStrategy]) -> None:
    """A task whose ``run`` returns a future stays in flight until it completes."""
    future: Future[None] = Future()
    strategy = factory()
    try:
        task = ProbeTask(action=lambda: future)
        lane = strategy.open_lane()
        if strategy.blocking:
            runner = threading.Thread(target=lane.start, args=([task],))
            runner.start()
        else:
            lane.start([task])
            runner = None
        assert not strategy.wait_idle(0.05), "idle while a task's future is pending"
        future.set_result(None)
        assert strategy.wait_idle(WAIT)
        if runner is not None:
            runner.join(WAIT)
            assert not runner.is_alive(), "the lane did not return"
        assert task.runs == 1
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)


def check_concurrency_limit(factory: Callable[[], ExecutionStrategy]) -> None:
    """Tasks sharing a key with limit 1 never overlap; all of them run."""
    running = 0
    most = 0
    guard = threading.Lock()

    def step() -> None:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        with guard:
            running -= 1

    strategy = factory()
    try:
        tasks: list[Task] = [ProbeTask("serial", 1, step) for _ in range(200)]
        lane = strategy.open_lane()
        lane.start(tasks[:1])
        for task in tasks[1:]:
            lane.submit(task)
        if strategy.blocking:
            lane.start([])
        assert strategy.wait_idle(WAIT)
        assert sum(task.runs for task in tasks if isinstance(task, ProbeTask)) == 200
        assert most == 1
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)


def check_serial_keys(factory: Callable[[], ExecutionStrategy]) -> None:
    """Tasks sharing a serial key run one at a time, in the order submitted.

    Four keys, 50 tasks each, submitted interleaved and spread over two jobs
    (fair keys); each key's tasks must run in submission order and never
    overlap. Every task runs.
    """
    keys, per_key = 4, 50
    guard = threading.Lock()
    running: dict[int, int] = dict.fromkeys(range(keys), 0)
    seen: dict[int, list[int]] = {key: [] for key in range(keys)}
    overlaps: list[int] = []

    def step(key: int, index: int) -> None:
        with guard:
            running[key] += 1
            if running[key] > 1:
                overlaps.append(key)
            seen[key].append(index)
        with guard:
            running[key] -= 1

    def task(job: str, key: int, index: int) -> Task:
        return ProbeTask(
            action=lambda: step(key, index), fair_key=job, serial_key=("lane", key)
        )

    strategy = factory()
    try:
        # Submitted from this thread in order; the strategy must keep that order
        # per key, whatever the jobs (fair keys) the tasks belong to.
        tasks = [
            task(f"job{index % 2}", key, index)
            for index in range(per_key)
            for key in range(keys)
        ]
        lane = strategy.open_lane()
        for item in tasks:
            lane.submit(item)
        if strategy.blocking:
            lane.start([])
        assert strategy.wait_idle(WAIT)
        assert not overlaps, f"tasks of one serial key overlapped: {overlaps[:5]}"
        for key in range(keys):
            assert seen[key] == list(range(per_key)), f"key {key} ran {seen[key]}"
    finally:
        strategy.shutdown(wait=True, timeout=WAIT)


def check_shutdown(factory: Callable[[], ExecutionStrategy]) -> None:
    """Shutdown is idempotent, closes the strategy, and refuses new lanes."""
    strategy = factory()
    strategy.open_lane().start([ProbeTask()])
    strategy.shutdown(wait=True, timeout=WAIT)
    strategy.shutdown(wait=True, timeout=WAIT)
    strategy.shutdown(wait=False)
    assert strategy.state is StrategyState.CLOSED
    try:
        strategy.open_lane()
    except StrategyShutdownError:
        pass
    else:
        raise AssertionError("open_lane() after shutdown did not raise")
    stats = strategy.stats()
    for key in ("workers", "busy", "queued", "completed", "dropped"):
        assert key in stats, f"stats() lacks {key!r}"


#: Every check of the suite, by name.
CHECKS: dict[str, Callable[[Callable[[], ExecutionStrategy]], None]] = {
    "fan_out_fan_in": check_fan_out_fan_in,
    "concurrent_jobs": check_concurrent_jobs,
    "failure_reported": check_failure_reported,
    "future_in_flight": check_future_in_flight,
    "concurrency_limit": check_concurrency_limit,
    "serial_keys": check_serial_keys,
    "shutdown": check_shutdown,
}


def check_strategy(factory: Callable[[], ExecutionStrategy]) -> None:
    """Run every check against strategies made by ``factory``.

    Raises:
        AssertionError: Naming the check that failed.
    """
    for name, check in CHECKS.items():
        _run_check(name, check, factory)


def _run_check(
    name: str,
    check: Callable[[Callable[[], ExecutionStrategy]], None],
    factory: Callable[[], ExecutionStrategy],
) -> None:
    try:
        check(factory)
    except AssertionError as exc:
        raise AssertionError(f"strategy conformance check {name!r}: {exc}") from exc
