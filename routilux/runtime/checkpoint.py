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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..job_state import JobState
    from ..persistence.base import CheckpointStore
    from .activation import Activation

__all__ = ["Checkpointer"]


class Checkpointer:
    """Writes one job's progress to a :class:`CheckpointStore`.

    Args:
        store: Where checkpoints go.
        job_id: The job.
        first_key: The first activation number to hand out (resumed jobs continue
            after the numbers already in the store).
    """

    def __init__(self, store: CheckpointStore, job_id: str, first_key: int = 0) -> None:
        self.store = store
        self.job_id = job_id
        self._keys = itertools.count(first_key)  # next() is atomic: no lock needed

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
        self.store.save_job(job_state.serialize())
        if fresh:
            self.store.record_step(self.job_id, added=[a.checkpoint() for a in fresh])

    def step(self, activation: Activation, children: Sequence[Activation]) -> None:
        """Record, atomically, that ``activation`` is done and ``children`` pending."""
        self.store.record_step(
            self.job_id,
            finished=[activation.key] if activation.key is not None else [],
            added=[child.checkpoint() for child in children],
        )

    def end(self, job_state: JobState) -> None:
        """Write the final document; nothing of the job is pending any more."""
        leftovers = [item["id"] for item in self.store.pending(self.job_id)]
        self.store.record_step(
            self.job_id, finished=leftovers, job=job_state.serialize()
        )

    def save(self, job_state: JobState) -> None:
        """Write the job document (status changes: pause, end)."""
        self.store.save_job(job_state.serialize())


def next_key(pending: Sequence[dict[str, Any]]) -> int:
    """The first activation number after those used by ``pending``."""
    numbers = [
        int(str(item.get("id", ""))[1:])
        for item in pending
        if str(item.get("id", "")).startswith("a")
        and str(item.get("id", ""))[1:].isdigit()
    ]
    return max(numbers, default=-1) + 1
