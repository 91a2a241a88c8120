"""Counting a job's progress from the flow's hooks (never by polling the job).

:class:`Progress` is a :class:`~routilux.FlowHooks` added to every flow it
watches. It counts activations running, done and failed, retries, per routine
and in all, and tells a :class:`View` (:mod:`routilux.cli.display`) what
happened. ``queued`` is what the emits the hooks saw handed to slots that run
once per message, less the activations of those slots that started: an
estimate (a handler's emits are seen when it returns, a failed handler's not at
all, and a resumed job's pending activations not at all), never below zero,
and nothing once the job ended.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..hooks import FlowHooks

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from ..flow import Flow
    from ..hooks import ActivationInfo, Outcome
    from ..job_state import JobState

__all__ = ["Progress", "RoutineCounts", "Snapshot", "View"]


@dataclass
class RoutineCounts:
    """One routine's figures (or the total over routines).

    Attributes:
        running: Activations started and not finished.
        done: Activations finished, failed ones included.
        failed: Activations that ended with an error.
        retries: Calls beyond the first, over finished activations.
    """

    running: int = 0
    done: int = 0
    failed: int = 0
    retries: int = 0


@dataclass
class Snapshot:
    """Everything a view shows, copied at one moment.

    Attributes:
        elapsed: Seconds from the first job's start to now, or to the end of
            the last job when none runs (0 before any started).
        total: The sum over routines.
        queued: The estimate described in the module docstring.
        routines: Routine id -> its figures, in the order first seen.
        jobs_running: Jobs started and not ended.
        jobs_ended: Status value -> jobs that ended so.
    """

    elapsed: float
    total: RoutineCounts
    queued: int
    routines: dict[str, RoutineCounts]
    jobs_running: int
    jobs_ended: dict[str, int] = field(default_factory=dict)


class View(Protocol):
    """Where progress goes: plain lines or a live display."""

    def start(self, progress: Progress) -> None:
        """The display begins; it may read ``progress.snapshot()`` from now on."""

    def job_started(self, job: JobState) -> None:
        """A job started or resumed."""

    def failed(self, job: JobState, where: str, error: BaseException) -> None:
        """An activation (``where`` is ``routine.slot``) or the job itself failed."""

    def job_ended(self, job: JobState) -> None:
        """A job stopped: completed, failed, cancelled or paused."""

    def stop(self, final: Snapshot) -> None:
        """The display ends, showing the final figures."""


class Progress(FlowHooks):
    """Counts the activations of the jobs of every watched flow.

    Use it as a context manager around the jobs: the view starts on entry and
    shows the final figures on exit.

    Args:
        view: Where the figures go.
        clock: Seconds, monotonic (for tests).
    """

    def __init__(self, view: View, clock: Callable[[], float] = time.monotonic) -> None:
        self._view = view
        self._clock = clock
        self._lock = threading.Lock()
        self._started_at: float | None = None
        self._stopped_at: float | None = None  # when the last running job ended
        self._routines: dict[str, RoutineCounts] = {}
        self._handed: Counter[tuple[str, str, str]] = Counter()
        self._fed: set[tuple[str, str, str]] = set()
        # Job id -> [handed on, taken] while it runs (what an ended job still
        # held was dropped, or kept for a resume: queued no more either way).
        self._queues: dict[str, list[int]] = {}
        self._jobs_running = 0
        self._jobs_ended: Counter[str] = Counter()
        self._started: list[JobState] = []

    def watch(self, flow: Flow) -> Flow:
        """Count ``flow``'s jobs from now on (its hooks keep this object)."""
        for source, target, (event, slot_name) in flow.graph.edges(keys=True):
            slot = flow.routines[target].get_slot(slot_name)
            if slot is not None and slot.policy.name == "each":
                self._handed[(flow.flow_id, source, event)] += 1
                self._fed.add((flow.flow_id, target, slot_name))
        flow.add_hooks(self)
        return flow

    def __enter__(self) -> Progress:
        self._view.start(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._view.stop(self.snapshot())

    def snapshot(self) -> Snapshot:
        """The figures now (thread-safe)."""
        with self._lock:
            routines = {
                rid: RoutineCounts(c.running, c.done, c.failed, c.retries)
                for rid, c in self._routines.items()
            }
            elapsed = 0.0
            if self._started_at is not None:
                end = self._stopped_at
                elapsed = (self._clock() if end is None else end) - self._started_at
            queued = sum(max(0, d - t) for d, t in self._queues.values())
            running, ended = self._jobs_running, dict(self._jobs_ended)
        total = RoutineCounts(
            *(sum(getattr(c, name) for c in routines.values()) for name in _FIELDS)
        )
        return Snapshot(elapsed, total, queued, routines, running, ended)

    def jobs_started(self) -> list[JobState]:
        """Every job started (or resumed) under watch, in start order."""
        with self._lock:
            return list(self._started)

    # -- hooks -----------------------------------------------------------------

    def on_job_start(self, job: JobState) -> None:
        """Count a running job; the clock starts with the first."""
        with self._lock:
            if self._started_at is None:
                self._started_at = self._clock()
            self._stopped_at = None
            self._jobs_running += 1
            self._started.append(job)
            self._queues[job.job_id] = [0, 0]
        self._view.job_started(job)

    def on_activation_start(self, job: JobState, activation: ActivationInfo) -> None:
        """Count a running activation."""
        with self._lock:
            self._counts(activation.routine_id).running += 1
            queue = self._queues.get(job.job_id)
            fed = (job.flow_id, activation.routine_id, activation.slot) in self._fed
            if fed and queue is not None:
                queue[1] += 1

    def on_activation_end(
        self, job: JobState, activation: ActivationInfo, outcome: Outcome
    ) -> None:
        """Count a finished activation and what its emits handed on."""
        handed = sum(
            self._handed[(job.flow_id, activation.routine_id, event)]
            for event, _ in outcome.emitted
        )
        with self._lock:
            self._finish(activation, failed=False)
            queue = self._queues.get(job.job_id)
            if queue is not None:
                queue[0] += handed

    def on_error(
        self, job: JobState, activation: ActivationInfo | None, error: BaseException
    ) -> None:
        """Count a failed activation; tell the view."""
        if activation is None:
            self._view.failed(job, "the job", error)
            return
        with self._lock:
            self._finish(activation, failed=True)
        self._view.failed(job, f"{activation.routine_id}.{activation.slot}", error)

    def on_job_end(self, job: JobState) -> None:
        """Count an ended job by its status."""
        with self._lock:
            self._jobs_running -= 1
            if self._jobs_running == 0:
                self._stopped_at = self._clock()
            self._jobs_ended[job.status.value] += 1
            self._queues.pop(job.job_id, None)
        self._view.job_ended(job)

    # -- internals (under the lock) ----------------------------------------------

    def _counts(self, routine_id: str) -> RoutineCounts:
        counts = self._routines.get(routine_id)
        if counts is None:
            counts = self._routines[routine_id] = RoutineCounts()
        return counts

    def _finish(self, activation: ActivationInfo, *, failed: bool) -> None:
        counts = self._counts(activation.routine_id)
        counts.running -= 1
        counts.done += 1
        counts.failed += failed
        counts.retries += max(0, activation.attempt - 1)


_FIELDS = ("running", "done", "failed", "retries")
