"""What a job produced: the values and emits of its sinks, and its first error."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ...exceptions import JobCancelledError, JobFailedError
from ...job_state import JobStatus
from ..invoker import safe_text

if TYPE_CHECKING:
    from ...job_state import JobState

__all__ = ["NO_OUTPUTS", "JobOutputs"]


class JobOutputs:
    """What a job produced, kept apart from its ledger.

    The JobState holds this (for :meth:`JobState.result`), not the ledger, so a
    finished job a caller keeps does not keep its whole ledger alive.

    Args:
        lock: The ledger's lock (guards the two dicts and ``first_error``).
        sinks: The routines with no outgoing connection.
    """

    __slots__ = ("_lock", "first_error", "returned", "sinks", "unconsumed")

    def __init__(self, lock: threading.Lock, sinks: frozenset[str]) -> None:
        # No reference to the JobState (which holds this): a finished job the
        # caller drops is freed by reference counting, not left for the
        # garbage collector as a cycle.
        self._lock = lock
        self.sinks = sinks
        #: routine id -> the last non-None value its handler returned.
        self.returned: dict[str, Any] = {}
        #: routine id -> the last payload it emitted on an event nothing consumes.
        self.unconsumed: dict[str, Any] = {}
        #: The job's first error (the ``__cause__`` of JobFailedError).
        self.first_error: BaseException | None = None

    def result(self, job: JobState) -> dict[str, Any]:
        """What ``job`` produced, by sink routine id (see :meth:`JobState.result`)."""
        with self._lock:
            merged = {
                rid: value
                for rid, value in self.unconsumed.items()
                if rid in self.sinks
            }
            merged.update(self.returned)
            first = self.first_error
        if job.status is JobStatus.FAILED:
            text = safe_text(first) if first is not None else "no error recorded"
            raise JobFailedError(f"job {job.job_id!r} failed: {text}") from first
        if job.status is JobStatus.CANCELLED:
            raise JobCancelledError(
                f"job {job.job_id!r} was cancelled "
                f"({job.cancel_source}): {job.cancel_reason}"
            )
        return merged


#: What every job holds until it produces something: most jobs of a service
#: that reads its sinks' state, not ``result()``, never do, and each would
#: otherwise keep one more object for the garbage collector to walk. The
#: ledger gives a job its own :class:`JobOutputs` at the first write.
NO_OUTPUTS = JobOutputs(threading.Lock(), frozenset())
