"""The seam between the runtime and the places checkpoints are kept.

A :class:`CheckpointStore` keeps two things per job: the job document (the output of
:meth:`routilux.JobState.serialize`) and the job's *pending activations*, the work that
was scheduled and has not completed yet. The runtime saves the job when it starts,
then calls :meth:`CheckpointStore.record_step` after every activation completes, in
one atomic step: the finished activation leaves the pending list, the activations it
emitted join it, and the job document may be replaced. A process killed at any point
leaves a store from which the job can resume.

A pending activation is a dict::

    {"id": str, "routine_id": str, "slot": str, "payload": dict}

The job document is plain JSON (:meth:`~routilux.JobState.serialize` output, its
values already tagged) and is kept as it is. Payloads and dead letters hold Python
values: the stores write them in routilux's tagged JSON encoding (see
:mod:`.payloads`) and read them back as the same types.

Every failure of a store (corrupt, locked or unwritable file, unknown job, bad input)
raises :class:`routilux.CheckpointError` naming the file or job and what went wrong,
except a payload or letter value no encoding holds: that is refused, before
anything is written, with :class:`routilux.SerializationError` naming the path of
the value, as :meth:`~routilux.JobState.save` refuses it. A stored payload that is
not an object, or a tag that does not decode, raises CheckpointError naming it.

Add a store by implementing the :class:`CheckpointStore` protocol; no registration is
needed. Forgetting old jobs (``prune``, ``retention=``) is a protocol of its own,
:class:`~routilux.persistence.PruningStore`, which both built-in stores implement:
a store without it still works, and keeps its jobs until it deletes them.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import orjson

from ..exceptions import CheckpointError
from ..merge import AppendView

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["CheckpointStore", "ClosingStore"]

_FRACTION = re.compile(r"\.(\d+)")


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


class ClosingStore:
    """``with store:`` closes the store at the end of the block (stores share it)."""

    def close(self) -> None:
        """Release files and connections. Idempotent."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class JobRow(NamedTuple):
    """The indexed fields of a job document, checked (internal)."""

    job_id: str
    flow_id: str
    status: str
    updated_at: str
    sort_key: float


def prepare_directory(directory: Path, where: Path, *, read_only: bool) -> None:
    """Create ``directory`` if needed and check that a store may write there.

    Args:
        directory: The directory the store writes into.
        where: The store's file or directory, for error messages.
        read_only: Only check that the directory exists.

    Raises:
        CheckpointError: When the directory is missing (``read_only``), cannot
            be created, is not a directory, or is not writable.
    """
    if read_only:
        if not directory.is_dir():
            raise CheckpointError(f"{where}: no such directory {directory}")
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(
            f"{where}: cannot create the directory {directory}: {exc}"
        ) from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CheckpointError(
            f"{where}: the directory {directory} is not writable; open the store "
            "with read_only=True to read the checkpoints it holds"
        )


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


def stored_job(
    job: dict[str, Any], where: str, job_id: str | None = None
) -> tuple[JobRow, dict[str, Any]]:
    """Check a job document; return its row and the document as stored.

    The stored document has no ``pending_activations`` key: stores keep pending
    activations beside it.

    Args:
        job: The job document.
        where: The store's file or directory, for error messages.
        job_id: The job ``record_step`` was called for, if any.

    Raises:
        CheckpointError: On a bad document, or one of a job other than ``job_id``.
    """
    row = job_row(job, where)
    if job_id is not None and row.job_id != job_id:
        raise CheckpointError(
            f"{where}: record_step for job {job_id!r} got the document of job "
            f"{row.job_id!r}"
        )
    if "pending_activations" in job:
        job = {k: v for k, v in job.items() if k != "pending_activations"}
    return row, job


def encode(value: Any, where: str, what: str) -> bytes:
    """Serialize ``value`` with orjson; an :class:`AppendView` is written as a list.

    Raises:
        CheckpointError: When ``value`` is not JSON-ready.
    """
    try:
        return orjson.dumps(value, default=_view_as_list)
    except orjson.JSONEncodeError as exc:
        raise CheckpointError(f"{where}: {what} is not JSON-ready: {exc}") from exc


def _view_as_list(value: Any) -> list[Any]:
    # Payloads of append slots hold views; nothing else is turned into JSON here.
    if isinstance(value, AppendView):
        return list(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def replace_file(directory: Path, path: Path, data: bytes, fsync: bool) -> None:
    """Replace ``path`` with ``data`` atomically (a temporary file, then a rename).

    Args:
        directory: Where the temporary file is made (``path``'s directory).
        path: The file to replace.
        data: Its new content.
        fsync: Flush the data to disk before the rename.

    Raises:
        OSError: When the file cannot be written; ``path`` is left as it was.
    """
    fd, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{path.stem}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):  # the write's own error is the one to report
            os.unlink(temporary)
        raise


def decode(data: str | bytes, where: str, what: str) -> Any:
    """Parse stored JSON.

    Raises:
        CheckpointError: When ``data`` is not JSON; the message says to delete or
            move the damaged record away.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CheckpointError(
            f"{where}: {what} is corrupt ({exc}); delete it or move it away"
        ) from exc


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
        # Python 3.10 reads only 3 or 6 digits of fraction: pad or cut to 6.
        six = _FRACTION.sub(lambda m: "." + (m[1] + "00000")[:6], iso, count=1)
        try:
            moment = datetime.fromisoformat(six)
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
        CheckpointError: When a key is missing, an id is not a string or the
            payload is not a dict.
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
    if not isinstance(fields[3], dict):  # what an activation is called with
        raise CheckpointError(
            f"{where}: job {job_id!r}: activation {fields[0]!r}: payload must be an "
            f"object (a dict), got {type(fields[3]).__name__}"
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
