"""Halting and pausing: how a ledger stops a job, or holds it, and lets it go on.

A halt (a cancel, a timeout, a stop-on-error failure) drops every activation
that has not started and cancels handlers awaiting on the event loop; a pause
parks new activations until the running ones end, when the job counts as
paused and lists what it holds in ``pending_tasks``. Both are flags the rest of
the ledger reads under its lock (see :mod:`routilux.runtime.ledger`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..._views import writable_list
from ...exceptions import JobStateError
from .. import aio
from ..activation import DROPPED, PARKED, QUEUED
from .base import LedgerBase

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..activation import Activation

__all__ = ["Pausing"]

_wall = time.time
#: How the ledger appends to the job's read-only list views (see routilux._views).
_append = list.append


def _cancel_all(tasks: list[Any]) -> None:
    for task in tasks:
        task.cancel()


class Pausing(LedgerBase):
    """Halts and pauses a job (a part of the ledger)."""

    __slots__ = ()

    def _drop_locked(self, activations: Sequence[Activation]) -> None:
        for activation in activations:
            activation.state = DROPPED
        self._dropped += len(activations)

    def _park_locked(self, activations: Sequence[Activation]) -> None:
        for activation in activations:
            activation.state = PARKED
        if self._parked:
            self._parked.extend(activations)
        else:  # never extend the shared empty list
            self._parked = list(activations)

    def _show_parked_locked(self) -> None:
        """A settled pause lists what it holds in the JobState's pending tasks."""
        if self._pause_settled:
            self._set(pending_tasks=self._tasks([a.describe() for a in self._parked]))

    def _halt_locked(self, source: str, reason: str) -> bool:
        if self._halted is not None or self._ended:
            return False
        self._halted = source
        self._set(cancel_source=source, cancel_reason=reason)
        if self._stop_event is not None:
            self._stop_event.set()
        tasks = [a.task for a in self._awaiting or () if a.task is not None]
        if tasks:
            # One loop callback cancels them all, before any of them runs again:
            # cancelled one by one, a call leaving its routine's gate could let a
            # call still waiting there in before that one's cancel arrived.
            aio.call_soon(_cancel_all, tasks)
        return True

    def _take_parked_if_halted(self) -> int:
        if self._halted is None or not self._parked:
            return 0
        parked, self._parked = self._parked, []
        self._drop_locked(parked)
        return len(parked)

    def halt(self, source: str, reason: str = "") -> bool:
        """Stop the job: drop what has not started. Returns False if already halted."""
        with self._lock:
            halted = self._halt_locked(source, reason)
            parked = self._take_parked_if_halted()
        if parked:
            self._finish(parked)
        return halted

    def pause(self, reason: str, checkpoint: Any) -> bool:
        """Hold new activations; the job is paused once running ones finish.

        Returns:
            False, doing nothing, when the job has finished or is already held.
        """
        with self._lock:
            if self._ended or self._paused:
                return False
            self._paused = True
            _append(
                writable_list(self.job_state.__dict__, "pause_points"),
                {"reason": reason, "checkpoint": checkpoint, "timestamp": _wall()},
            )
        self._finish(0)
        return True

    def unpause(self) -> bool:
        """Call off a pause that has not settled; False when it already has.

        Raises:
            JobStateError: When no pause was asked for: the job just runs.
        """
        with self._lock:
            if not self._paused:
                raise JobStateError(
                    f"job {self.job_state.job_id!r} is running, not paused: there "
                    "is nothing to resume"
                )
            if self._pause_settled:
                return False
            self._paused = False
            parked, self._parked = self._parked, []
            for activation in parked:
                activation.state = QUEUED
        self._hand(parked)
        return True

    def take_parked(self) -> list[Activation]:
        """The activations held by a settled pause (for resume)."""
        with self._lock:
            parked, self._parked = self._parked, []
            self._pending -= len(parked)
            self._pause_settled = False
            return parked
