"""The seam between the runtime and the places checkpoints are kept.

A :class:`CheckpointStore` keeps two things per job: the job document (the output of
:meth:`routilux.JobState.serialize`) and the job's *pending activations*, the work that
was scheduled and has not completed yet. The runtime saves the job when it starts,
then calls :meth:`CheckpointStore.record_step` after every activation completes, in
one atomic step: the finished activation leaves the pending list, the activations it
emitted join it, and the job document may be replaced. A process killed at any point
leaves a store from which the job can resume.

A pending activation is a dict::

    {"id": str, "routine_id": str, "slot": str, "payload": <JSON-ready value>}

Every failure of a store (corrupt, locked or unwritable file, unknown job, bad input)
raises :class:`routilux.CheckpointError` naming the file or job and what went wrong.

Add a store by implementing the :class:`CheckpointStore` protocol; no registration is
needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from enum import Enum
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ..exceptions import CheckpointError

__all__ = ["CheckpointStore"]


@runtime_checkable
class CheckpointStore(Protocol):
    """Where the runtime keeps job documents and pending activations.

    Implementations are thread-safe: the runtime calls them from every worker
    thread. Every method raises :class:`routilux.CheckpointError` when the store
    cannot read or write.
    """

    def save_job(self, job: dict[str, Any]) -> None:
        """Insert or replace a job document.

        Args:
            job: A JSON-ready dict (:meth:`routilux.JobState.serialize` output) with
                at least ``job_id``, ``flow_id``, ``status`` and ``updated_at``.
        """

    def record_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
        job: dict[str, Any] | None = None,
    ) -> None:
        """Record one completed step of a job, atomically.

        Removes the pending activations whose ``id`` is in ``finished``, appends
        ``added`` to the pending list and, when ``job`` is given, replaces the job
        document. Either all of it happens or none of it does.

        Args:
            job_id: The job the step belongs to.
            finished: Ids of activations that completed (unknown ids are ignored).
            added: New pending activations, in the order they were emitted.
            job: The job document after the step, if it changed.
        """

    def pending(self, job_id: str) -> list[dict[str, Any]]:
        """Return the pending activations of a job, oldest first ([] if none)."""

    def load(self, job_id: str) -> dict[str, Any]:
        """Return the job document with its ``pending_activations`` list.

        Raises:
            CheckpointError: When the store holds no job with that id.
        """

    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Return ``{job_id, flow_id, status, updated_at}`` summaries, oldest first.

        Args:
            flow_id: Only jobs of this flow.
            status: Only jobs with this status.
        """

    def delete(self, job_id: str) -> None:
        """Forget a job and its pending activations; an unknown id is a no-op."""

    def close(self) -> None:
        """Release files and connections. Idempotent."""


class JobRow(NamedTuple):
    """The indexed fields of a job document, checked (internal)."""

    job_id: str
    flow_id: str
    status: str
    updated_at: str
    sort_key: float


def job_row(job: Mapping[str, Any], where: str) -> JobRow:
    """Check a job document and extract the fields stores index.

    Args:
        job: The job document.
        where: The store's file or directory, for error messages.

    Raises:
        CheckpointError: When a field is missing or has the wrong type.
    """
    if not isinstance(job, Mapping):
        raise CheckpointError(
            f"{where}: a job document must be a dict, got {type(job).__name__}"
        )
    fields = []
    for key in ("job_id", "flow_id", "status", "updated_at"):
        value = text(job.get(key))
        if not isinstance(value, str):
            raise CheckpointError(
                f"{where}: job document {job.get('job_id')!r} needs a string "
                f"{key!r}, got {value!r}"
            )
        fields.append(value)
    job_id, flow_id, status, updated_at = fields
    return JobRow(job_id, flow_id, status, updated_at, sort_key(updated_at, where))


def sort_key(updated_at: str, where: str) -> float:
    """Turn an ISO-8601 ``updated_at`` into seconds since the epoch.

    Naive times are taken as UTC. Strings do not sort in time order (a whole second
    is written without a fraction), so stores order by this number.

    Raises:
        CheckpointError: When ``updated_at`` is not an ISO-8601 date and time.
    """
    iso = updated_at[:-1] + "+00:00" if updated_at.endswith("Z") else updated_at
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise CheckpointError(
            f"{where}: updated_at {updated_at!r} is not an ISO-8601 date and time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def activation_fields(
    activation: Mapping[str, Any], job_id: str, where: str
) -> tuple[str, str, str, Any]:
    """Check a pending activation; return ``(id, routine_id, slot, payload)``.

    Raises:
        CheckpointError: When a key is missing or an id is not a string.
    """
    try:
        fields = (
            activation["id"],
            activation["routine_id"],
            activation["slot"],
            activation["payload"],
        )
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{where}: job {job_id!r}: an activation needs keys id, routine_id, "
            f"slot and payload; got {activation!r}"
        ) from exc
    if not all(isinstance(value, str) for value in fields[:3]):
        raise CheckpointError(
            f"{where}: job {job_id!r}: activation id, routine_id and slot must be "
            f"strings; got {activation!r}"
        )
    return fields


def text(value: Any) -> Any:
    """Return a string enum's value (``JobStatus.RUNNING`` -> ``"running"``)."""
    return value.value if isinstance(value, Enum) else value


def summary(row: JobRow | Sequence[Any]) -> dict[str, Any]:
    """The ``list_jobs`` entry for a row ``(job_id, flow_id, status, updated_at)``."""
    return {
        "job_id": row[0],
        "flow_id": row[1],
        "status": row[2],
        "updated_at": row[3],
    }
