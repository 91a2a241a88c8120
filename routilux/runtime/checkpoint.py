"""Checkpointing a job as its activations complete.

The store holds, per job, the job document and the *pending* activations: queued,
running or held by a pause. Each completed activation is recorded in one atomic
step: it leaves the pending list and the activations it emitted join it. So after
a crash the store lists exactly the work that had not completed; resuming runs it:

* completed activations are never run again;
* activations that were running when the process died run again (at-least-once),
  at most ``max_workers`` of them.

The job document itself is written when the job starts, pauses and ends.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..job_state import JobState
    from ..persistence.base import CheckpointStore
    from .activation import Activation

__all__ = ["SAVE_INTERVAL", "Checkpointer"]

#: Seconds between job-document writes while a checkpointed job runs.
SAVE_INTERVAL = 1.0
_READ_ATTEMPTS = 3


class Checkpointer:
    """Writes one job's progress to a :class:`CheckpointStore`.

    Args:
        store: Where checkpoints go.
        job_id: The job.
        first_key: The first activation number to hand out (resumed jobs continue
            after the numbers already in the store).
        discard: Ids of stored pending activations the resumed job dropped (their
            routine or slot is gone: see :mod:`routilux.topology`); the first
            step removes them.
    """

    def __init__(
        self,
        store: CheckpointStore,
        job_id: str,
        first_key: int = 0,
        discard: Sequence[str] | None = None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self._discard = list(discard or ())
        self._keys = itertools.count(first_key)  # next() is atomic: no lock needed
        self._saved_at = time.monotonic()
        #: Set after an error: the next step writes the job document too.
        self.dirty = False

    def key(self) -> str:
        """A new activation id, unique within the job."""
        return f"a{next(self._keys)}"

    def begin(self, job_state: JobState, activations: Sequence[Activation]) -> None:
        """Write the job document and the activations the store does not hold yet.

        That is the entry activation; loaded and paused ones already have ids.
        """
        fresh = [a for a in activations if a.key is None]
        for activation in fresh:
            activation.key = self.key()
        if self._discard:
            # What a resume on a changed flow dropped leaves the store in the
            # same step as the document recording the drop: never one alone.
            self.store.record_step(
                self.job_id,
                finished=self._discard,
                added=[a.checkpoint() for a in fresh],
                job=_document(job_state),
            )
            self._discard = []
            return
        self.store.save_job(_document(job_state))
        if fresh:
            self.store.record_step(self.job_id, added=[a.checkpoint() for a in fresh])

    def add(self, activations: Sequence[Activation]) -> None:
        """Store ``activations`` as pending work of the running job (new ids)."""
        for activation in activations:
            activation.key = self.key()
        self.store.record_step(
            self.job_id, added=[activation.checkpoint() for activation in activations]
        )

    def step(
        self,
        activation: Activation,
        children: Sequence[Activation],
        job_state: JobState,
    ) -> None:
        """Record, atomically, that ``activation`` is done and ``children`` pending.

        The job document rides along after an error and at most every
        ``SAVE_INTERVAL`` seconds, so a crash loses no error and little history.
        """
        job = None
        now = time.monotonic()
        if self.dirty or now - self._saved_at >= SAVE_INTERVAL:
            self.dirty = False
            self._saved_at = now
            job = _document(job_state)
        self.store.record_step(
            self.job_id,
            finished=[activation.key] if activation.key is not None else [],
            added=[child.checkpoint() for child in children],
            job=job,
        )

    def end(self, job_state: JobState) -> None:
        """Write the final document; nothing of the job is pending any more."""
        leftovers = [item["id"] for item in self.store.pending(self.job_id)]
        self.store.record_step(
            self.job_id, finished=leftovers, job=job_state.serialize()
        )

    def save(self, job_state: JobState) -> None:
        """Write the job document (status changes: pause, end)."""
        self.store.save_job(_document(job_state))


def _document(job_state: JobState, attempts: int = _READ_ATTEMPTS) -> dict[str, Any]:
    # Worker threads may add a routine state while we read; read again then.
    try:
        return job_state.serialize()
    except RuntimeError:  # "dictionary changed size during iteration"
        if attempts <= 1:
            raise
        return _document(job_state, attempts - 1)


def next_key(pending: Sequence[dict[str, Any]]) -> int:
    """The first activation number after those used by ``pending``."""
    numbers = [
        int(str(item.get("id", ""))[1:])
        for item in pending
        if str(item.get("id", "")).startswith("a")
        and str(item.get("id", ""))[1:].isdigit()
    ]
    return max(numbers, default=-1) + 1
