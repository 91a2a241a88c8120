"""The seam between the runtime and the places activations run.

A strategy decides only *where* a task runs. The runtime (``routilux.runtime``)
decides what a task does and when a job is complete. Strategies see tasks through
the small :class:`Task` protocol and never import the runtime.

Add a strategy by implementing :class:`ExecutionStrategy` and registering a factory
with :func:`register_strategy`; ``Flow(execution_strategy=name)`` then finds it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..exceptions import ConfigurationError, DuplicateNameError, UnknownStrategyError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Hashable
    from concurrent.futures import Future

_log = logging.getLogger("routilux.strategies")

__all__ = [
    "DONE",
    "FAILED",
    "MISSING",
    "ExecutionStrategy",
    "JobLane",
    "RemoteCalls",
    "StrategyFactory",
    "StrategyState",
    "Task",
    "create_strategy",
    "register_strategy",
    "registered_strategies",
    "run_task",
]


class StrategyState(str, Enum):
    """Lifecycle of a strategy: open, then closed for good by ``shutdown()``."""

    OPEN = "open"
    CLOSED = "closed"

    def __str__(self) -> str:
        return self.value


class Task(Protocol):
    """One unit of work, as a strategy sees it.

    Attributes:
        limit_key: Tasks with the same key share a concurrency limit.
        limit: At most this many tasks of ``limit_key`` run at once (None: no limit).
        fair_key: The job the task belongs to. A strategy that runs several jobs at
            once takes their ready tasks in turn, one per job with work, so that
            one job's backlog does not hold up the jobs started after it.
        serial_key: Tasks with the same serial key run one at a time, in the
            order they were submitted, across jobs (None: no such rule). For an
            activation in a session lane it is ``(routine_id, lane)``.

    .. versionchanged:: 1.0
       ``fair_key`` and ``serial_key``.
    """

    limit_key: str
    limit: int | None

    @property
    def fair_key(self) -> Hashable:
        """The job the task belongs to (see above)."""

    @property
    def serial_key(self) -> Hashable | None:
        """The task's session lane, or None (see above)."""

    def run(self) -> Future[None] | None:
        """Do the work.

        Returns None when the task is finished, or a future that completes when it
        is (work handed to an event loop or another process); the strategy counts
        the task as in flight until then. Should not raise: a strategy that catches
        an exception here reports it with :meth:`fail`.
        """

    def spec(self) -> dict[str, Any]:
        """What the task does, as JSON-ready data a remote strategy can ship.

        For an activation: ``job_id``, ``routine_id``, ``slot``, ``payload`` and
        ``attempt``.
        """

    def drop(self, reason: str) -> None:
        """Account for the task without running it (shutdown, cancellation)."""

    def fail(self, error: BaseException) -> None:
        """Report an exception that escaped :meth:`run` (or the strategy's own).

        The runtime records it and fails the job, so no waiter is left hanging.
        """


class JobLane(Protocol):
    """How one job's tasks reach the strategy."""

    def submit(self, task: Task) -> None:
        """Schedule ``task``. Thread-safe."""

    def start(self, tasks: list[Task]) -> None:
        """Start (or restart) the job with ``tasks``, in order.

        A blocking strategy runs the job here until no task is left; others
        schedule the tasks and return at once.

        A blocking lane also has ``hold()`` and ``release()``: the runtime holds
        it before a thread other than the one running the job submits tasks
        while a handler of the job still runs (a timeout settled by the
        watchdog, a partial checkpoint step), and releases it once they are
        submitted; ``start`` must not return in between. A lane without them
        is not held.

        A lane may also accept tasks as *specs*, by having
        ``accept_specs(build)``: it returns a function taking the flat cells
        ``(number, payload, params, key)`` of one task, an ``int`` and three
        values, and the lane calls ``build(number, payload, params, key)`` for
        the task itself when it is about to run it (None: the runtime accounted
        for that one itself, and the lane goes on to the next). A queue of
        specs holds no object per task, so a long queue costs the garbage
        collector nothing to walk (a chain's activations wait in a FIFO as long
        as the job is wide). A lane
        without it, or that returns None, gets tasks.
        """


#: What a remote host's ``call`` answers: ``(DONE, value, emits)``,
#: ``(FAILED, packed_error, emits)``, or ``(MISSING,)`` when it does not hold
#: the routine (restarted, or rebuilt under a new key). ``emits`` lists the
#: ``(event, data)`` pairs the handler emitted, in order.
DONE, FAILED, MISSING = "done", "failed", "missing"


class RemoteCalls(Protocol):
    """How a strategy that runs handlers in other processes calls them.

    A strategy offers it by having a ``bind_flow(flow, host)`` method, which the
    runner calls before each job of ``flow`` starts or resumes (it may refuse
    the flow by raising) and whose result the job then uses for every handler
    call. ``host`` is the runtime's class for the remote side
    (:class:`routilux.runtime.remote.HostWorker`): the strategy runs it in its
    worker processes, and never imports the runtime itself.
    """

    def call(self, activation: Any) -> Awaitable[Any]:
        """Start the handler call of ``activation``; awaiting it gives its value.

        Called on the runtime's event loop with the activation as the current
        frame; what the handler emitted is emitted again here before the
        awaitable returns (or raises the handler's error).
        """

    def job_ended(self, job_state: Any) -> None:
        """The job stopped; called before any waiter of the job wakes.

        A strategy brings back here what its workers kept (routines' stats).
        """


@runtime_checkable
class ExecutionStrategy(Protocol):
    """Where activations run.

    Attributes:
        name: The registry name.
        max_workers: How many tasks may run at once.
        blocking: True when :meth:`JobLane.start` returns only once the job is done.
    """

    name: str
    max_workers: int
    blocking: bool

    @property
    def state(self) -> StrategyState:
        """OPEN until :meth:`shutdown` is called, then CLOSED."""

    def open_lane(self) -> JobLane:
        """A lane for a new job.

        Raises:
            StrategyShutdownError: After :meth:`shutdown`.
        """

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no task is queued or running; False when ``timeout`` passed."""

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop; idempotent.

        ``wait=True`` drains running and queued work first; ``wait=False`` drops what
        has not started.
        """

    def stats(self) -> dict[str, Any]:
        """Pool statistics: workers, busy, queued, completed, dropped."""


def run_task(
    task: Task, dropping: bool = False, *, reraise_interrupts: bool = False
) -> Future[None] | None:
    """Run (or drop) ``task``; an exception that escapes is reported to the task.

    Every strategy runs tasks through this, so that no error raised around a task
    is lost and no job waits for a task that will never finish. With
    ``reraise_interrupts`` (a strategy running in the caller's thread), a
    ``BaseException`` that is not an ``Exception`` (Ctrl-C) is raised again once
    reported.
    """
    try:
        if dropping:
            task.drop("shutdown")
            return None
        return task.run()
    except BaseException as exc:
        try:
            task.fail(exc)
        except BaseException:  # noqa: BLE001 - the runtime's last resort failed too
            _log.exception("a task's failure could not be reported: %r", task)
        if reraise_interrupts and not isinstance(exc, Exception):
            raise
        return None


#: Builds a strategy: ``factory(max_workers=..., name_prefix=...)``.
StrategyFactory = Callable[..., ExecutionStrategy]

_factories: dict[str, StrategyFactory] = {}
_lock = threading.Lock()  # guards _factories


def register_strategy(
    name: str, factory: StrategyFactory, *, replace: bool = False
) -> None:
    """Register an execution strategy factory under ``name``.

    Thread-safe.

    Args:
        name: The name flows use.
        factory: Called as ``factory(max_workers=n, name_prefix=prefix)``.
        replace: Allow replacing an existing registration.

    Raises:
        DuplicateNameError: When ``name`` is taken and ``replace`` is False.
    """
    with _lock:
        if name in _factories and not replace:
            raise DuplicateNameError(
                f"execution strategy {name!r} is already registered"
            )
        _factories[name] = factory


def registered_strategies() -> list[str]:
    """The registered strategy names, sorted."""
    with _lock:
        return sorted(_factories)


def create_strategy(name: str, max_workers: int, name_prefix: str) -> ExecutionStrategy:
    """Build the strategy registered as ``name``.

    Raises:
        UnknownStrategyError: When no strategy has that name.
        ConfigurationError: When ``max_workers`` is not an int >= 1.
    """
    check_max_workers(max_workers)
    with _lock:
        factory = _factories.get(name)
    if factory is None:
        raise UnknownStrategyError(
            f"unknown execution strategy {name!r}; registered: "
            f"{registered_strategies()}"
        )
    return factory(max_workers=max_workers, name_prefix=name_prefix)


def check_max_workers(max_workers: object) -> int:
    """Return ``max_workers`` when it is an int >= 1.

    Raises:
        ConfigurationError: Otherwise.
    """
    if (
        isinstance(max_workers, bool)
        or not isinstance(max_workers, int)
        or max_workers < 1
    ):
        raise ConfigurationError(
            f"max_workers must be an int >= 1, got {max_workers!r}"
        )
    return max_workers
