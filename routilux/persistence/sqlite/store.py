"""SQLiteCheckpointStore: the checkpoint protocol on one SQLite file.

The SQL of jobs and pending activations lives here; opening the file, its schema
and transactions are :mod:`.database`'s part. The package's docstring describes
the layout, concurrency and durability.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Literal

from ...checks import non_negative_int, non_negative_seconds
from ...exceptions import CheckpointError, ConfigurationError
from ..base import (
    ClosingStore,
    decode,
    summary,
    text,
)
from ..lease import (
    DEFAULT_LEASE_TTL,
    Heartbeat,
    check_clock,
    check_lease_ttl,
    query_status,
    with_leases,
)
from ..payloads import read_payload, value_classes
from ..retention import FINISHED, Retention, checked_retention, prune_plan
from . import history_log, leases, letters, payload_refs, retention, steps
from .database import READ, WRITE, Database
from .leases import LeasingDatabase

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Collection, Iterable, Sequence
    from datetime import timedelta
    from pathlib import Path


__all__ = ["COMMIT_WINDOW", "SQLiteCheckpointStore"]

_SELECT_JOB = "SELECT document FROM jobs WHERE job_id = ?"
_LIST_JOBS = """SELECT job_id, flow_id, status, updated_at FROM jobs
    WHERE (:flow_id IS NULL OR flow_id = :flow_id)
    AND (:status IS NULL OR status = :status)
    ORDER BY updated_ts, job_id"""
_DELETE_JOB = "DELETE FROM jobs WHERE job_id = ?"
_DELETE_JOB_PENDING = "DELETE FROM pending WHERE job_id = ?"
_DELETE_JOB_LEASE = "DELETE FROM leases WHERE job_id = ?"

#: The longest busy_timeout SQLite can keep (2**31 - 1 milliseconds).
_MAX_BUSY_TIMEOUT = 2_147_483.0
#: The default ``commit_window``. A batch grows only as far as the window lets
#: workers run ahead of the writer: on four workers and two cores (``make
#: bench``) 8 left workers waiting on every commit (48.8 us per activation),
#: 32 brought it to 34 us and 64 gained nothing more, while every step of the
#: window is one more activation a crash may run again. A fixed number rather
#: than one per worker: the store, not a flow, owns the writer and the window.
COMMIT_WINDOW = 32


class SQLiteCheckpointStore(LeasingDatabase, ClosingStore):
    """Checkpoints in one SQLite database file, shared safely by threads and processes.

    Thread-safe. Several processes may open the same file at once.

    Args:
        path: The database file; it and its directory are created when missing.
            ``":memory:"`` keeps everything in memory (for tests).
        busy_timeout: Seconds a write waits for another connection's write to end
            before failing with :class:`~routilux.CheckpointError` (>= 0 and at
            most 2,147,483, the most SQLite can keep).
        synchronous: ``"NORMAL"`` survives a killed process, ``"FULL"`` a power cut.
        read_only: Open for reading only, e.g. a database in a directory without
            write permission. Writes then raise :class:`~routilux.CheckpointError`.
        allowed_classes: When given, the only classes whose values (enum members,
            pydantic models, dataclasses) stored payloads, letters and job
            documents may rebuild; by default any such class the process has
            imported (nothing is imported).
        retention: Prune finished jobs as they accumulate (see
            :class:`~routilux.persistence.Retention`): at the first job this
            store records as finished, then once every ``retention.every``.

            .. versionadded:: 1.0
        lease_ttl: Seconds a job's lease stays live after its last beat; a job
            whose lease has not beaten for longer may be taken over (see
            :doc:`/guide/durability`). Beats come every third of it.
        clock: Returns the time leases are written and judged by, in seconds
            (``time.time``; give another for tests). Processes sharing a file
            must share a clock.
        commit_window: How many settled activations of running jobs may wait
            for their step to be written (an int >= 0, default
            :data:`COMMIT_WINDOW`). On the concurrent strategy a worker hands
            its activation's step to one writer thread per store, which writes
            whatever waits in one transaction (group commit), and goes on
            unless more than ``commit_window`` steps wait. After a crash at
            most ``max_workers + commit_window`` activations run again (see
            :doc:`/guide/durability`). ``0``: each worker writes its own step.

            .. versionadded:: 1.0

    Raises:
        CheckpointError: For a ``busy_timeout`` out of range (NaN, infinity,
            negative, a bool or a string) or an unknown ``synchronous``, naming
            the setting, before anything is opened; likewise a ``lease_ttl``
            that is not a finite number > 0 or a ``clock`` that is not callable.
            When the file is not a
            checkpoint database (corrupt, another format, another schema
            version), or it or its directory cannot be written (unless
            ``read_only``), or it is locked longer than ``busy_timeout`` while the
            schema is created.

    Example:
        >>> with SQLiteCheckpointStore(":memory:") as store:
        ...     store.list_jobs()
        []
    """

    _upsert_job = steps.UPSERT_JOB
    _insert_pending = steps.INSERT_PENDING

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        read_only: bool = False,
        retention: Retention | None = None,
        allowed_classes: Iterable[type] | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        clock: Callable[[], float] = time.time,
        commit_window: int = COMMIT_WINDOW,
    ) -> None:
        #: Settled activations whose steps may wait for the writer thread.
        self.commit_window = non_negative_int(commit_window, "commit_window")
        checked_retention(retention)
        self._classes = value_classes(allowed_classes)
        #: As given: the runtime reads this store's job documents with it.
        self.allowed_classes = allowed_classes
        self._ttl = check_lease_ttl(lease_ttl, os.fspath(path))
        self._clock = check_clock(clock, os.fspath(path))
        if synchronous not in ("NORMAL", "FULL"):
            raise CheckpointError(
                f"synchronous must be NORMAL or FULL: {synchronous!r}"
            )
        try:  # SQLite keeps it as an int of milliseconds; more wraps to 0
            busy_timeout = non_negative_seconds(
                busy_timeout, "busy_timeout", maximum=_MAX_BUSY_TIMEOUT
            )
        except ConfigurationError as exc:
            raise CheckpointError(str(exc)) from exc
        self._db = Database(path, busy_timeout, synchronous, read_only)
        self._path = self._db.path
        self._retention = retention
        # Finished jobs recorded until the next amortized prune (under the
        # database's lock): the first finished job prunes, so a short-lived
        # process prunes too.
        self._until_prune = 1
        self._fenced = {}
        # Whether the file has the payloads table (until it is seen: a file
        # opened read-only may be older, and a writer may add it later).
        self._shared_payloads = False
        self._heartbeat = Heartbeat(
            f"routilux-leases-{self._path.name}", self._ttl / 3, self._beat
        )

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def lease_ttl(self) -> float:
        """Seconds a job's lease stays live after its last beat."""
        return self._ttl

    def __repr__(self) -> str:
        return f"{type(self).__name__}({os.fspath(self._path)!r})"

    # -- the CheckpointStore protocol -----------------------------------------

    def save_job(self, job: dict[str, Any]) -> None:
        """Insert or replace a job document. Thread-safe.

        Args:
            job: :meth:`routilux.JobState.serialize` output (at least ``job_id``,
                ``flow_id``, ``status`` and an ISO-8601 ``updated_at``). A
                ``pending_activations`` key is not stored: pending activations
                live beside the document.

        Raises:
            CheckpointError: On a bad document or when the database cannot be
                written; nothing is written then.
            JobOwnedError: When this store took the job's lease and it was
                taken over since: nothing is written.
        """
        row = self._job_params(job)
        with self._db.transaction(f"save job {row[0]!r}", WRITE) as conn:
            self._fence(conn, row[0])
            conn.execute(steps.UPSERT_JOB, row)
            history_log.clear(conn, row[0])  # the document holds all of it now
            pruned = self._retain(conn, row[2])
        if pruned:
            retention.give_back_space(self._db, best_effort=True)

    def record_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
        job: dict[str, Any] | None = None,
    ) -> None:
        """Record one completed step of a job in one transaction. Thread-safe.

        Args:
            job_id: The job the step belongs to; it must have been saved before
                unless ``job`` is given.
            finished: Ids of pending activations to remove (unknown ids are
                ignored).
            added: Activations to append to the pending list; one whose id is
                already pending replaces it in place.
            job: The job document after the step, if it changed.

        Raises:
            CheckpointError: On bad input, an unknown job, or when the database
                cannot be written; nothing is written then.
            JobOwnedError: When this store took the job's lease and it was
                taken over since: nothing is written.
        """
        where = str(self._path)
        step = steps.prepare(where, job_id, finished, added, job)
        with self._db.transaction(f"record a step of job {job_id!r}", WRITE) as conn:
            self._fence(conn, job_id)
            steps.write(conn, where, step)
            pruned = step.job is not None and self._retain(conn, step.job[2])
        if pruned:
            retention.give_back_space(self._db, best_effort=True)

    def log_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
        history: Sequence[dict[str, Any]] = (),
        first: int = 0,
        job: dict[str, Any] | None = None,
        restart: bool = False,
        compact: bool = False,
    ) -> None:
        """Record a step of a running job and append its history, in one transaction.

        The :class:`~routilux.persistence.LoggingStore` method (see there);
        :meth:`load` returns the document's history followed by the logged
        entries; :meth:`save_job` and :meth:`record_step` with ``job=`` empty
        the log, and so does ``compact=True``, which folds it into the document
        as it is stored, without decoding it. Thread-safe.

        Raises:
            CheckpointError: On bad input, an unknown job, or when the database
                cannot be written; nothing is written then.
            JobOwnedError: When this store took the job's lease and it was
                taken over since: nothing is written.

        .. versionadded:: 1.0
        """
        where = str(self._path)
        step = steps.prepare(
            where, job_id, finished, added, job, history, first, restart, compact
        )
        with self._db.transaction(f"record a step of job {job_id!r}", WRITE) as conn:
            self._fence(conn, job_id)
            steps.write(conn, where, step)
            pruned = (
                step.job is not None
                and step.kept is not None
                and self._retain(conn, step.job[2])
            )
        if pruned:  # a compacted job ended: it counts towards the retention
            retention.give_back_space(self._db, best_effort=True)

    def prepare_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
    ) -> steps.Prepared:
        """Encode a step of a running job for :meth:`write_steps` (no transaction).

        Raises:
            CheckpointError: On a bad activation.
            SerializationError: On a value the store cannot write, naming its path.
        """
        return steps.prepare(str(self._path), job_id, finished, added)

    def write_steps(
        self, batch: Sequence[steps.Prepared]
    ) -> list[BaseException | None]:
        """Write prepared steps in one transaction (group commit). Thread-safe.

        Each step stays atomic and is fenced by its job's lease; a step the
        store refuses fails alone (the batch is then written step by step).
        Never raises.

        Returns:
            One entry per step, in order: None when it was written, else the
            error (a :class:`~routilux.CheckpointError` or
            :class:`~routilux.JobOwnedError`).
        """
        return steps.write_batch(self._db, str(self._path), batch, self._fence)

    def pending(self, job_id: str) -> list[dict[str, Any]]:
        """Return the job's pending activations in insertion order. Thread-safe.

        Raises:
            CheckpointError: When the database cannot be read.
        """
        with self._db.transaction(f"read pending of job {job_id!r}", READ) as conn:
            rows = self._pending_rows(conn, job_id)
        return [self._activation(job_id, row) for row in rows]

    def load(self, job_id: str) -> dict[str, Any]:
        """Return the job document plus its ``pending_activations``. Thread-safe.

        Raises:
            CheckpointError: When the job is unknown, its document is corrupt or
                the database cannot be read.
        """
        with self._db.transaction(f"load job {job_id!r}", READ) as conn:
            found = conn.execute(_SELECT_JOB, (job_id,)).fetchone()
            rows = self._pending_rows(conn, job_id)
            logged = history_log.entries(conn, job_id, str(self._path))
        if found is None:
            raise CheckpointError(f"{self._path}: no checkpoint of job {job_id!r}")
        what = f"the stored document of job {job_id!r}"
        document = decode(found[0], str(self._path), what)
        if not isinstance(document, dict):
            raise CheckpointError(
                f"{self._path}: the document of job {job_id!r} is not an object"
            )
        if logged:  # a running job's history: its log follows the document's
            kept = document.get("execution_history")
            document["execution_history"] = [
                *(kept if isinstance(kept, list) else ()),
                *logged,
            ]
        document["pending_activations"] = [
            self._activation(job_id, row) for row in rows
        ]
        return document

    def list_jobs(
        self,
        flow_id: str | None = None,
        status: str | None = None,
        *,
        owners: bool = False,
    ) -> list[dict[str, Any]]:
        """Return job summaries, oldest ``updated_at`` first. Thread-safe.

        Args:
            flow_id: Only jobs of this flow.
            status: Only jobs with this status (a string or a ``JobStatus``);
                ``"interrupted"``: ``running`` jobs whose lease is not live
                (their process died), the jobs to resume.
            owners: Add ``owner`` (``{"pid", "host"}`` of the job's lease, or
                None) and ``live`` (its lease has beaten within ``lease_ttl``).

        Returns:
            ``{"job_id", "flow_id", "status", "updated_at"}`` dicts.

        Raises:
            CheckpointError: When the database cannot be read.
        """
        status = text(status)
        params = {"flow_id": flow_id, "status": query_status(status)}
        with self._db.transaction("list jobs", READ) as conn:
            rows = conn.execute(_LIST_JOBS, params).fetchall()
        summaries = [summary(row) for row in rows]
        if not owners and status != "interrupted":
            return summaries
        held = leases.leases_of(self._db, self._clock(), self._ttl)
        return with_leases(summaries, held, status, owners)

    def delete(self, job_id: str) -> None:
        """Remove a job and its pending activations; unknown ids are a no-op.

        Thread-safe.

        Raises:
            CheckpointError: When the database cannot be written.
        """
        with self._db.transaction(f"delete job {job_id!r}", WRITE) as conn:
            conn.execute(_DELETE_JOB_PENDING, (job_id,))
            conn.execute(_DELETE_JOB, (job_id,))
            conn.execute(_DELETE_JOB_LEASE, (job_id,))
            history_log.clear(conn, job_id)

    def prune(
        self,
        *,
        older_than: float | timedelta | None = None,
        status: str | Collection[str] | None = None,
        keep_last: int | None = None,
        flow_id: str | None = None,
    ) -> int:
        """Delete the stored jobs that match, in one transaction; return how many.

        The rule and the arguments are those of
        :class:`~routilux.persistence.PruningStore`: matching status, older
        than ``older_than``, not among the ``keep_last`` newest of its flow;
        replayed dead letters go with the job, waiting ones stay. The freed
        space is then given back to the file system (see :meth:`compact` for a
        file made before routilux 1.0). Thread-safe.

        Raises:
            CheckpointError: For a bad argument (naming it), or when the
                database cannot be written; nothing is deleted then.

        .. versionadded:: 1.0
        """
        plan = prune_plan(older_than, status, keep_last, flow_id)
        with self._db.transaction("prune jobs", WRITE) as conn:
            count = retention.delete_jobs(conn, plan, time.time())
        if count:
            retention.give_back_space(self._db, best_effort=False)
        return count

    def compact(self) -> None:
        """Rebuild the file at its smallest (``VACUUM``). Thread-safe.

        Also switches a file made before routilux 1.0 to incremental vacuum, so
        that later prunes give their space back. It rewrites the whole file and
        waits for other connections' writes: run it when the store is quiet.

        Raises:
            CheckpointError: When the database cannot be written.

        .. versionadded:: 1.0
        """
        retention.compact(self._db)

    def close(self) -> None:
        """Stop the lease heartbeat and close the connection.

        Idempotent and thread-safe. Leases still held stop beating and expire
        after ``lease_ttl``.
        """
        self._heartbeat.stop()
        self._db.close()

    # -- the DeadLetterStore protocol -------------------------------------------

    def add_dead_letter(self, letter: dict[str, Any]) -> None:
        """Keep a dead letter; one with the same ``letter_id`` is replaced.

        Thread-safe. Replacing keeps the letter's place and its ``replayed_by``.

        Raises:
            CheckpointError: On a bad letter or when the database cannot be
                written; nothing is written then.
        """
        letters.add_letter(self._db, letter)

    def dead_letters(
        self,
        flow_id: str | None = None,
        job_id: str | None = None,
        include_replayed: bool = False,
    ) -> list[dict[str, Any]]:
        """Return the kept letters, oldest first. Thread-safe.

        Args:
            flow_id: Only letters of this flow.
            job_id: Only letters of this job.
            include_replayed: Include letters already replayed.

        Raises:
            CheckpointError: When the database cannot be read or a letter is
                corrupt.
        """
        return letters.select_letters(
            self._db, flow_id, job_id, include_replayed, self._classes
        )

    def mark_dead_letters_replayed(
        self, letter_ids: Sequence[str], job_id: str
    ) -> None:
        """Record that job ``job_id`` replays these letters, in one transaction.

        Thread-safe; two processes cannot both mark a letter.

        Raises:
            CheckpointError: When a letter is unknown or already replayed
                (nothing is changed then), or the database cannot be written.
        """
        letters.mark_replayed(self._db, letter_ids, job_id)

    # -- internals --------------------------------------------------------------

    def _retain(self, conn: sqlite3.Connection, status: str) -> bool:
        """Count a finished job; prune by the retention when its turn comes.

        Runs inside the write that recorded the job (database lock held), so
        the prune is atomic with it and fails with it. True: give the free
        space back now (a prune freed some, or the job's pending rows left a
        large part of the file free, see :func:`retention.space_to_give_back`).
        """
        if status not in FINISHED:
            return False
        policy = self._retention
        if policy is None:
            return retention.space_to_give_back(conn)
        self._until_prune -= 1
        if self._until_prune > 0:
            return False
        self._until_prune = policy.every
        pruned = retention.delete_jobs(conn, policy.plan(), time.time()) > 0
        return pruned or retention.space_to_give_back(conn)

    def _job_params(
        self, job: dict[str, Any], job_id: str | None = None
    ) -> tuple[str, str, str, str, float, str]:
        return steps.job_params(str(self._path), job, job_id)

    def _pending_params(
        self, job_id: str, activation: dict[str, Any]
    ) -> tuple[str, str, str, str, str]:
        return steps.pending_params(str(self._path), job_id, activation)

    def _pending_rows(self, conn: sqlite3.Connection, job_id: str) -> list[Any]:
        """A job's pending rows, big payloads read back in (transaction held)."""
        if not self._shared_payloads:
            found = conn.execute(payload_refs.HAS_PAYLOADS).fetchone()
            if found is None:
                return conn.execute(
                    payload_refs.SELECT_PENDING_PLAIN, (job_id,)
                ).fetchall()
            self._shared_payloads = True
        return conn.execute(payload_refs.SELECT_PENDING, (job_id,)).fetchall()

    def _activation(self, job_id: str, row: Sequence[Any]) -> dict[str, Any]:
        what = f"the stored payload of activation {row[0]!r} of job {job_id!r}"
        where = str(self._path)
        data = decode(row[3], where, what)
        payload = read_payload(data, row[3], where, what, self._classes)
        return {"id": row[0], "routine_id": row[1], "slot": row[2], "payload": payload}
