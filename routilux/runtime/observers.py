"""Observers of a job's ledger: the tracker, flow statistics, logging and user hooks.

The ledger tells :class:`Observers` about every transition it makes (job start,
activation start and end, errors, job end); nothing here is called from inside a
handler call. Every observer call is guarded: a hook that raises is recorded in the
job (routine id ``"<hooks>"``) and the job goes on.

No lock of this module is held while user hooks run; the ledger calls in here only
after releasing its own lock.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..hooks import ActivationInfo
from ..record_log import new_cells
from ..tracking import ExecutionTracker

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable, Sequence

    from ..hooks import FlowHooks, Outcome
    from ..job_state import JobState
    from .activation import Activation
    from .stats import FlowStats

__all__ = ["Observers", "log"]

log = logging.getLogger("routilux.runtime")

#: Guards the making of a job's tracker cells (once per job, from whichever
#: thread needs them first: a worker recording, or a caller reading the tracker).
_MAKING = threading.Lock()


def _info(job_id: str, activation: Activation) -> ActivationInfo:
    route = activation.route
    return ActivationInfo(
        id(activation),
        job_id,
        route.routine_id,
        route.slot.name,
        activation.attempts,
        activation.payload,
    )


class Observers:
    """Everything that watches one job.

    Args:
        job: The job's state (handed to hooks).
        history_limit: The flow's ``history_limit``: the tracker keeps at most
            this many runs and this many events (None: all).
        stats: The flow's statistics over all its jobs.
        hooks: The flow's user hooks, in the order they were added.
        on_hook_error: Records a hook's exception in the job (a bound method of
            the ledger, held weakly: the ledger holds these observers, and a
            cycle would leave every finished job to the garbage collector);
            None when there are no hooks.
    """

    __slots__ = (
        "_debug",
        "_hooks",
        "_job",
        "_limit",
        "_on_hook_error",
        "_stats",
        "_tracker",
        "event_cells",
        "run_cells",
        "watching_outcomes",
        "watching_starts",
    )

    def __init__(
        self,
        job: JobState,
        history_limit: int | None,
        stats: FlowStats,
        hooks: Sequence[FlowHooks],
        on_hook_error: Callable[[str, BaseException], None] | None,
    ) -> None:
        self._job = job
        self._limit = history_limit
        self._tracker: ExecutionTracker | None = None
        self._stats = stats
        self._hooks = tuple(hooks)
        self._on_hook_error = (
            weakref.WeakMethod(on_hook_error)
            if hooks and on_hook_error is not None
            else None
        )
        self._debug = log.isEnabledFor(logging.DEBUG)
        #: The tracker's run cells (extended per activation, below) and event
        #: cells (the ledger extends them by an emit's
        #: :data:`~routilux.tracking.EventEntry`). Both are made when the job's
        #: first activation ends (see :meth:`cells`): a job waiting in a backlog
        #: holds neither, nor a tracker, which only a reader of
        #: ``flow.execution_tracker`` makes (see :meth:`tracker`).
        self.run_cells: list[Any] | deque[Any] | None = None
        self.event_cells: list[Any] | deque[Any] | None = None
        #: True when anything wants ``activation_started`` calls.
        self.watching_starts = bool(self._hooks) or self._debug
        #: True when hooks read outcomes (and so their ``emitted`` lists).
        self.watching_outcomes = bool(self._hooks)

    def cells(self) -> tuple[list[Any] | deque[Any], list[Any] | deque[Any]]:
        """The run and the event cells of the job, made on the first call.

        Thread-safe. The hot paths read :attr:`run_cells` and
        :attr:`event_cells` first and call this only while they are None.
        """
        with _MAKING:
            return self._cells_locked()

    def _cells_locked(
        self,
    ) -> tuple[list[Any] | deque[Any], list[Any] | deque[Any]]:
        runs, events = self.run_cells, self.event_cells
        if runs is None or events is None:
            runs = self.run_cells = new_cells(6, self._limit)
            events = self.event_cells = new_cells(5, self._limit)
        return runs, events

    def tracker(self) -> ExecutionTracker:
        """The job's :class:`ExecutionTracker` (the same object on every call).

        Made on the first call, over the cells the runtime writes. Thread-safe.
        """
        tracker = self._tracker
        if tracker is None:
            with _MAKING:
                tracker = self._tracker
                if tracker is None:
                    runs, events = self._cells_locked()
                    tracker = ExecutionTracker.over(self._job.flow_id, runs, events)
                    self._tracker = tracker
        return tracker

    def _call(self, name: str, *args: Any) -> None:
        for hook in self._hooks:
            self._call_one(hook, name, args)

    def _call_one(self, hook: FlowHooks, name: str, args: tuple[Any, ...]) -> None:
        try:
            getattr(hook, name)(self._job, *args)
        except BaseException as exc:  # recorded in the job: a hook never stops it
            where = f"{type(hook).__name__}.{name}"
            record = self._on_hook_error() if self._on_hook_error else None
            if record is None:  # the job's ledger is gone: say so at least
                log.error(
                    "job %s: hook %s raised", self._job.job_id, where, exc_info=exc
                )
            else:
                record(where, exc)

    def job_started(self) -> None:
        """The job starts or resumes."""
        if self._debug:
            log.debug(
                "job %s started", self._job.job_id, extra={"job_id": self._job.job_id}
            )
        if self._hooks:
            self._call("on_job_start")

    def activation_started(self, activation: Activation) -> None:
        """A handler is about to be called."""
        job_id = self._job.job_id
        if self._debug:
            rid = activation.route.routine_id
            log.debug(
                "job %s: %s.%s starts",
                job_id,
                rid,
                activation.route.slot.name,
                extra={"job_id": job_id, "routine_id": rid},
            )
        if self._hooks:
            self._call("on_activation_start", _info(job_id, activation))

    def activation_ended(
        self,
        activation: Activation,
        outcome: Outcome,
        start: float,
        end: float,
        failed: bool,
    ) -> None:
        """A handler returned or failed (``failed``: the error fails the job)."""
        route = activation.route
        rid = route.routine_id
        error = outcome.error
        cells = self.run_cells
        if cells is None:
            cells = self.cells()[0]
        cells.extend(
            (
                rid,
                start,
                end,
                activation.params,
                "completed" if error is None else "failed",
                error,
            )
        )
        self._stats.add(rid, end - start, error is not None)
        job_id = self._job.job_id
        if error is not None:
            level = logging.WARNING if failed else logging.INFO
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "job %s: %s.%s raised %s",
                    job_id,
                    rid,
                    route.slot.name,
                    type(error).__name__,
                    extra={"job_id": job_id, "routine_id": rid},
                )
        elif self._debug:
            log.debug(
                "job %s: %s.%s returned",
                job_id,
                rid,
                route.slot.name,
                extra={"job_id": job_id, "routine_id": rid},
            )
        if self._hooks:
            info = _info(job_id, activation)
            if error is None:
                self._call("on_activation_end", info, outcome)
            else:
                self._call("on_error", info, error)

    def job_failed(self, error: BaseException) -> None:
        """The job itself broke (a store, a strategy), not a handler."""
        job_id = self._job.job_id
        log.warning(
            "job %s: %s: %s",
            job_id,
            type(error).__name__,
            error,
            extra={"job_id": job_id},
        )
        if self._hooks:
            self._call("on_error", None, error)

    def job_ended(self) -> None:
        """The job stopped running (final status, or paused)."""
        job = self._job
        self._stats.job_ended(job.status)
        if self._debug:
            log.debug(
                "job %s %s", job.job_id, job.status.value, extra={"job_id": job.job_id}
            )
        if self._hooks:
            self._call("on_job_end")
