"""Job leases in the SQLite file: the ``leases`` table.

``leases(job_id PRIMARY KEY, pid, host, token, beat)`` holds one row per job being
run: its owner and the store-clock time of its last beat. Every change is one
``BEGIN IMMEDIATE`` transaction, so SQLite's write lock orders two claims of the
same job (from two processes or two connections) and a conditional ``UPDATE``
lets only the first of them through: the second finds a live lease that is not
its own and raises :class:`~routilux.JobOwnedError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..lease import described, lost_lease_error, owned_error, owner_died
from .database import HAS_LEASES, READ, WRITE
from .steps import insert_rows

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from ..lease import Heartbeat, Owner
    from .database import Database

__all__ = [
    "beat",
    "begin_job",
    "claim",
    "fence",
    "lease_of",
    "leases_of",
    "release",
]

# Take the lease when it is ours already or has not beaten since ``stale``.
_TAKE = """UPDATE leases SET pid = :pid, host = :host, token = :token, beat = :now
    WHERE job_id = :job_id AND (token = :token OR beat <= :stale)"""
_TAKE_FROM = """UPDATE leases SET pid = :pid, host = :host, token = :token,
    beat = :now WHERE job_id = :job_id AND token = :old"""
_INSERT = """INSERT INTO leases (job_id, pid, host, token, beat)
    VALUES (:job_id, :pid, :host, :token, :now)"""
_SELECT = "SELECT pid, host, token, beat FROM leases WHERE job_id = ?"
_RELEASE = "DELETE FROM leases WHERE job_id = ? AND token = ?"
_BEAT = "UPDATE leases SET beat = ? WHERE job_id = ? AND token = ?"
_ALL = "SELECT job_id, pid, host, beat FROM leases"
_JOB_EXISTS = "SELECT 1 FROM jobs WHERE job_id = ?"


def take(
    conn: sqlite3.Connection, job_id: str, owner: Owner, now: float, ttl: float
) -> None:
    """Take the lease inside an open write transaction.

    Raises:
        JobOwnedError: When another owner's lease has beaten within ``ttl`` and
            its process is not known to have ended.
    """
    params = {
        "job_id": job_id,
        "pid": owner.pid,
        "host": owner.host,
        "token": owner.token,
        "now": now,
        "stale": now - ttl,
    }
    if conn.execute(_TAKE, params).rowcount:
        return
    found = conn.execute(_SELECT, (job_id,)).fetchone()
    if found is None:
        conn.execute(_INSERT, params)
    elif owner_died(found[0], found[1]):
        conn.execute(_TAKE_FROM, {**params, "old": found[2]})
    else:
        raise owned_error(job_id, found, now)


def claim(db: Database, job_id: str, owner: Owner, now: float, ttl: float) -> None:
    """Take the job's lease for ``owner`` (one transaction); see :func:`take`."""
    with db.transaction(f"claim job {job_id!r}", WRITE) as conn:
        take(conn, job_id, owner, now, ttl)


def begin_job(
    db: Database,
    job_id: str,
    job_params: Sequence[Any],
    pending_params: Sequence[tuple[str, str, str, str, str]],
    owner: Owner,
    now: float,
    ttl: float,
    upsert_job: str,
    insert_pending: str,
) -> bool:
    """Write a new job, its pending activations and its lease in one transaction.

    Returns:
        False, writing nothing, when the file already holds the job.
    """
    with db.transaction(f"begin job {job_id!r}", WRITE) as conn:
        if conn.execute(_JOB_EXISTS, (job_id,)).fetchone() is not None:
            return False
        take(conn, job_id, owner, now, ttl)
        conn.execute(upsert_job, job_params)
        if pending_params:
            insert_rows(conn, pending_params, insert_pending)
    return True


def fence(conn: sqlite3.Connection, job_id: str, owner: Owner, now: float) -> None:
    """Refuse a write of ``owner``'s job unless its lease is still ``owner``'s.

    Runs inside the write's transaction. A process that stalled past
    ``lease_ttl`` (its lease was taken over, or the job ended elsewhere) must not
    write over the new owner's steps.

    Raises:
        JobOwnedError: When another owner holds the lease, or none does.
    """
    found = conn.execute(_SELECT, (job_id,)).fetchone()
    if found is None or found[2] != owner.token:
        raise lost_lease_error(job_id, owner, found, now)


def release(db: Database, job_id: str, owner: Owner) -> None:
    """Delete the lease if ``owner`` holds it."""
    with db.transaction(f"release job {job_id!r}", WRITE) as conn:
        conn.execute(_RELEASE, (job_id, owner.token))


def beat(db: Database, leases: Sequence[tuple[str, Owner]], now: float) -> None:
    """Write ``now`` as the last beat of each held lease (one transaction)."""
    params = [(now, job_id, owner.token) for job_id, owner in leases]
    with db.transaction("beat job leases", WRITE) as conn:
        conn.executemany(_BEAT, params)


def lease_of(
    db: Database, job_id: str, now: float, ttl: float
) -> dict[str, Any] | None:
    """The job's lease as ``{"pid", "host", "live", "beat_age"}``, or None."""
    with db.transaction(f"read the lease of job {job_id!r}", READ) as conn:
        if conn.execute(HAS_LEASES).fetchone() is None:
            return None
        found = conn.execute(_SELECT, (job_id,)).fetchone()
    if found is None:
        return None
    return described(found[0], found[1], found[3], now, ttl)


def leases_of(db: Database, now: float, ttl: float) -> dict[str, dict[str, Any]]:
    """Every lease in the file, by job id (see :func:`lease_of`)."""
    with db.transaction("read job leases", READ) as conn:
        if conn.execute(HAS_LEASES).fetchone() is None:
            return {}
        rows = conn.execute(_ALL).fetchall()
    return {row[0]: described(row[1], row[2], row[3], now, ttl) for row in rows}


class LeasingDatabase:
    """The lease methods of the SQLite store (one of its base classes).

    They make :class:`~routilux.persistence.SQLiteCheckpointStore` a
    :class:`~routilux.persistence.lease.LeasingStore`.
    """

    # Set by the store: its file and clock, and the SQL writing a job's row and
    # a pending activation.
    _upsert_job: str
    _insert_pending: str
    _db: Database
    _clock: Callable[[], float]
    _ttl: float
    _heartbeat: Heartbeat
    #: job id -> the owner whose lease this store took: its steps are fenced.
    _fenced: dict[str, Owner]

    def _job_params(
        self, job: dict[str, Any], job_id: str | None = None
    ) -> tuple[str, str, str, str, float, str]:
        raise NotImplementedError

    def _pending_params(
        self, job_id: str, activation: dict[str, Any]
    ) -> tuple[str, str, str, str, str]:
        raise NotImplementedError

    def begin_job(
        self, job: dict[str, Any], added: Sequence[dict[str, Any]], owner: Owner
    ) -> bool:
        """Store a new job, its first pending activations and its lease at once.

        One transaction: a process killed at any moment leaves either nothing
        or the whole start. Thread-safe.

        Args:
            job: The job document.
            added: Its first pending activations.
            owner: Who runs it; the lease beats until :meth:`release`.

        Returns:
            True when written; False, writing nothing, when the file already
            holds a job with that id.

        Raises:
            CheckpointError: On bad input or when the database cannot be written.
        """
        params = self._job_params(job)
        job_id = params[0]
        pending = [self._pending_params(job_id, a) for a in added]
        begun = begin_job(
            self._db,
            job_id,
            params,
            pending,
            owner,
            self._clock(),
            self._ttl,
            self._upsert_job,
            self._insert_pending,
        )
        if begun:
            self._fenced[job_id] = owner
            self._heartbeat.hold(job_id, owner)
        return begun

    def claim(self, job_id: str, owner: Owner) -> None:
        """Take the job's lease for ``owner`` and keep it beating. Thread-safe.

        Raises:
            JobOwnedError: When another owner's lease has beaten within
                ``lease_ttl``; nothing is changed then.
            CheckpointError: When the database cannot be written.
        """
        claim(self._db, job_id, owner, self._clock(), self._ttl)
        self._fenced[job_id] = owner
        self._heartbeat.hold(job_id, owner)

    def release(self, job_id: str, owner: Owner) -> None:
        """Give the job's lease up if ``owner`` holds it. Thread-safe.

        Raises:
            CheckpointError: When the database cannot be written (the lease then
                expires after ``lease_ttl``).
        """
        self._heartbeat.drop(job_id, owner)
        if self._fenced.get(job_id) is owner:
            del self._fenced[job_id]
        release(self._db, job_id, owner)

    def _fence(self, conn: sqlite3.Connection, job_id: str) -> None:
        """Inside a write of ``job_id``: refuse it if this store lost the lease."""
        owner = self._fenced.get(job_id)
        if owner is not None:
            fence(conn, job_id, owner, self._clock())

    def lease_of(self, job_id: str) -> dict[str, Any] | None:
        """The job's lease: ``{"pid", "host", "live", "beat_age"}``, or None.

        Raises:
            CheckpointError: When the database cannot be read.
        """
        return lease_of(self._db, job_id, self._clock(), self._ttl)

    def _beat(self, held: list[tuple[str, Owner]]) -> None:
        beat(self._db, held, self._clock())
