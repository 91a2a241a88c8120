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
import weakref
from typing import TYPE_CHECKING, Any

from ..hooks import ActivationInfo

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..hooks import FlowHooks, Outcome
    from ..job_state import JobState
    from ..tracking import ExecutionTracker
    from .activation import Activation
    from .stats import FlowStats

__all__ = ["Observers", "log"]

log = logging.getLogger("routilux.runtime")


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
        tracker: The job's :class:`ExecutionTracker`.
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
        "_on_hook_error",
        "_stats",
        "event_cells",
        "run_cells",
        "tracker",
        "watching_outcomes",
        "watching_starts",
    )

    def __init__(
        self,
        job: JobState,
        tracker: ExecutionTracker,
        stats: FlowStats,
        hooks: Sequence[FlowHooks],
        on_hook_error: Callable[[str, BaseException], None] | None,
    ) -> None:
        self._job = job
        self.tracker = tracker
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
        #: :data:`~routilux.tracking.EventEntry`).
        self.run_cells, self.event_cells = tracker.cells()
        #: True when anything wants ``activation_started`` calls.
        self.watching_starts = bool(self._hooks) or self._debug
        #: True when hooks read outcomes (and so their ``emitted`` lists).
        self.watching_outcomes = bool(self._hooks)

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
        self.run_cells.extend(
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
        self._stats.job_ended(job.status.value)
        if self._debug:
            log.debug(
                "job %s %s", job.job_id, job.status.value, extra={"job_id": job.job_id}
            )
        if self._hooks:
            self._call("on_job_end")
