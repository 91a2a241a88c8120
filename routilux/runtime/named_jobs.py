"""Jobs started with a caller's job id: ``execute(..., job_id="order-42")``.

A job id chosen by the caller makes starting idempotent: executing an id this
flow, or its checkpoint store, already holds returns that job instead of running
it again. Within one process :class:`NamedJobs` decides, under its lock, which
call starts the job; between processes the store's ``begin_job`` transaction
does (the loser's run is abandoned before anything of it ran, and the stored job
is returned).

Without a store a flow remembers every job started with a job id for as long as
the flow lives (they are its only record). With a store it forgets a job once
it stops: the store is the record, read back by :func:`stored_job`.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, ForeignJobError
from ..job_state import JobState
from ..persistence.lease import LeasingStore

if TYPE_CHECKING:
    from ..persistence.base import CheckpointStore

__all__ = [
    "JOB_ID",
    "NamedJobs",
    "check_job_id",
    "holds",
    "is_interrupted",
    "stored_job",
]

#: What a caller's job id may be: it names a file in the JSON-file store too.
JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")

_STARTING = object()  # an id whose JobState is being made by another thread


def check_job_id(value: object, what: str) -> str | None:
    """None, or a job id of 1 to 200 letters, digits, '.', '_', '-'.

    Raises:
        ConfigurationError: For anything else, naming ``what`` and the value.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not JOB_ID.fullmatch(value):
        raise ConfigurationError(
            f"{what} must be None or a str of 1 to 200 letters, digits, '.', '_' "
            f"and '-', not starting with '.'; got {value!r}"
        )
    return value


class NamedJobs:
    """The JobStates of jobs this flow started with a caller's id. Thread-safe."""

    def __init__(self) -> None:
        # Guards _held.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._held: dict[str, Any] = {}

    def reserve(self, job_id: str) -> JobState | None:
        """The JobState this flow holds for ``job_id``; else reserve the id.

        After a None the caller must :meth:`fill` the id (with its new JobState,
        or None when it did not start one); another thread reserving the same id
        meanwhile waits for that.
        """
        with self._changed:
            while self._held.get(job_id) is _STARTING:
                self._changed.wait()
            found = self._held.get(job_id)
            if found is not None:
                assert isinstance(found, JobState)
                return found
            self._held[job_id] = _STARTING
            return None

    def fill(self, job_id: str, job_state: JobState | None) -> None:
        """End a reservation: the id's JobState, or None to free the id."""
        with self._changed:
            if job_state is None:
                self._held.pop(job_id, None)
            else:
                self._held[job_id] = job_state
            self._changed.notify_all()

    def forget(self, job_id: str) -> None:
        """Drop a stopped job (its store holds it), unless it is being started."""
        with self._lock:
            if isinstance(self._held.get(job_id), JobState):
                del self._held[job_id]


def stored_job(store: CheckpointStore, job_id: str, flow_id: str) -> JobState:
    """The job ``job_id`` as its store keeps it (a snapshot, not a running job).

    Raises:
        ForeignJobError: When it belongs to another flow.
        CheckpointError: When the store cannot read it.
    """
    document = store.load(job_id)
    document.pop("pending_activations", None)
    job_state = JobState.deserialize(document)
    if job_state.flow_id != flow_id:
        raise ForeignJobError(
            f"job id {job_id!r} is taken in the store by a job of flow "
            f"{job_state.flow_id!r}, not {flow_id!r}"
        )
    return job_state


def is_interrupted(store: CheckpointStore, job_state: JobState) -> bool:
    """A stored ``running`` job whose lease is not live (its process died)."""
    if job_state.status.value != "running":
        return False
    if not isinstance(store, LeasingStore):
        return True  # nothing tells a live job from a dead one: the caller asked
    lease = store.lease_of(job_state.job_id)
    return lease is None or not lease["live"]


def holds(store: CheckpointStore, job_id: str, flow_id: str) -> bool:
    """Whether a store without ``begin_job`` already holds ``job_id``."""
    del flow_id  # an id is taken whichever flow took it
    return any(row["job_id"] == job_id for row in store.list_jobs())
