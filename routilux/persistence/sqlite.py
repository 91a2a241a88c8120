"""The default checkpoint store: one SQLite file (stdlib ``sqlite3``, WAL mode).

Layout (``PRAGMA user_version`` holds :data:`SCHEMA_VERSION`)::

    jobs(job_id PRIMARY KEY, flow_id, status, updated_at, updated_ts, document)
    pending(seq INTEGER PRIMARY KEY, job_id, activation_id, routine_id, slot,
            payload, UNIQUE(job_id, activation_id))

Documents and payloads are stored as JSON text written by orjson. ``seq`` keeps the
pending activations of a job in insertion order.

Concurrency: the store holds one connection guarded by a lock. Measured with 8
threads making small ``record_step`` calls (2 cores), one locked connection and one
connection per thread were within noise of each other; the locked connection never
waits in SQLite's busy handler (which sleeps in millisecond steps) for a thread of
its own process, and ``close()`` releases it from any thread. Several processes may
share one file: WAL lets readers run beside the writer, writes wait up to
``busy_timeout`` for one another, and every write is one ``BEGIN IMMEDIATE``
transaction.

Durability: with ``synchronous="NORMAL"`` (the default) a committed step survives the
process being killed; a power cut may lose the last steps but never corrupts the
file. ``synchronous="FULL"`` survives power cuts too, at the cost of an fsync per
step.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..checks import non_negative_seconds
from ..exceptions import CheckpointError, ConfigurationError

try:
    import fcntl
except ImportError:  # not on Windows: opening there relies on busy_timeout alone
    fcntl = None  # type: ignore[assignment]
from .base import (
    ClosingStore,
    activation_fields,
    decode,
    encode,
    prepare_directory,
    stored_job,
    summary,
    text,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["SCHEMA_VERSION", "SQLiteCheckpointStore"]

#: The layout version this module reads and writes (kept in ``PRAGMA user_version``).
SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE jobs (job_id TEXT PRIMARY KEY, flow_id TEXT NOT NULL,
        status TEXT NOT NULL, updated_at TEXT NOT NULL, updated_ts REAL NOT NULL,
        document TEXT NOT NULL)""",
    """CREATE TABLE pending (seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL,
        activation_id TEXT NOT NULL, routine_id TEXT NOT NULL, slot TEXT NOT NULL,
        payload TEXT NOT NULL, UNIQUE (job_id, activation_id))""",
)
_UPSERT_JOB = """INSERT INTO jobs
    (job_id, flow_id, status, updated_at, updated_ts, document)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (job_id) DO UPDATE SET flow_id = excluded.flow_id,
        status = excluded.status, updated_at = excluded.updated_at,
        updated_ts = excluded.updated_ts, document = excluded.document"""
_INSERT_PENDING = """INSERT INTO pending
    (job_id, activation_id, routine_id, slot, payload) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (job_id, activation_id) DO UPDATE SET
        routine_id = excluded.routine_id, slot = excluded.slot,
        payload = excluded.payload"""
_DELETE_PENDING = "DELETE FROM pending WHERE job_id = ? AND activation_id = ?"
_JOB_EXISTS = "SELECT 1 FROM jobs WHERE job_id = ?"
_SELECT_JOB = "SELECT document FROM jobs WHERE job_id = ?"
_SELECT_PENDING = """SELECT activation_id, routine_id, slot, payload
    FROM pending WHERE job_id = ? ORDER BY seq"""
_LIST_JOBS = """SELECT job_id, flow_id, status, updated_at FROM jobs
    WHERE (:flow_id IS NULL OR flow_id = :flow_id)
    AND (:status IS NULL OR status = :status)
    ORDER BY updated_ts, job_id"""
_DELETE_JOB = "DELETE FROM jobs WHERE job_id = ?"
_DELETE_JOB_PENDING = "DELETE FROM pending WHERE job_id = ?"

#: sqlite3 message fragment -> what it means for the user.
_HINTS = {
    "locked": "; another connection held it longer than busy_timeout="
    "{busy_timeout}s, nothing was written",
    "not a database": "; the file is corrupt or not a checkpoint database",
    "malformed": "; the file is corrupt",
    "readonly": "; check that the file and its directory are writable, or open "
    "with read_only=True",
    "unable to open": "; check the path and its permissions",
}

#: The longest busy_timeout SQLite can keep (2**31 - 1 milliseconds).
_MAX_BUSY_TIMEOUT = 2_147_483.0

_READ = "BEGIN"
_WRITE = "BEGIN IMMEDIATE"


class SQLiteCheckpointStore(ClosingStore):
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

    Raises:
        CheckpointError: For a ``busy_timeout`` out of range (NaN, infinity,
            negative, a bool or a string) or an unknown ``synchronous``, naming
            the setting, before anything is opened. When the file is not a
            checkpoint database (corrupt, another format, another schema
            version), or it or its directory cannot be written (unless
            ``read_only``), or it is locked longer than ``busy_timeout`` while the
            schema is created.

    Example:
        >>> with SQLiteCheckpointStore(":memory:") as store:
        ...     store.list_jobs()
        []
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        read_only: bool = False,
    ) -> None:
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
        self._memory = os.fspath(path) == ":memory:"
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous
        self._read_only = read_only
        # Guards _conn: every use of the connection, and close().
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = self._open()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

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
        """
        row = self._job_params(job)
        with self._transaction(f"save job {row[0]!r}", _WRITE) as conn:
            conn.execute(_UPSERT_JOB, row)

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
        """
        job_params = None if job is None else self._job_params(job, job_id)
        removed = [(job_id, activation_id) for activation_id in finished]
        inserted = [self._pending_params(job_id, a) for a in added]
        with self._transaction(f"record a step of job {job_id!r}", _WRITE) as conn:
            if job_params is not None:
                conn.execute(_UPSERT_JOB, job_params)
            elif conn.execute(_JOB_EXISTS, (job_id,)).fetchone() is None:
                raise CheckpointError(
                    f"{self._path}: cannot record a step of unknown job {job_id!r}: "
                    "save_job() it first or pass job="
                )
            if removed:
                conn.executemany(_DELETE_PENDING, removed)
            if inserted:
                conn.executemany(_INSERT_PENDING, inserted)

    def pending(self, job_id: str) -> list[dict[str, Any]]:
        """Return the job's pending activations in insertion order. Thread-safe.

        Raises:
            CheckpointError: When the database cannot be read.
        """
        with self._transaction(f"read pending of job {job_id!r}", _READ) as conn:
            rows = conn.execute(_SELECT_PENDING, (job_id,)).fetchall()
        return [self._activation(job_id, row) for row in rows]

    def load(self, job_id: str) -> dict[str, Any]:
        """Return the job document plus its ``pending_activations``. Thread-safe.

        Raises:
            CheckpointError: When the job is unknown, its document is corrupt or
                the database cannot be read.
        """
        with self._transaction(f"load job {job_id!r}", _READ) as conn:
            found = conn.execute(_SELECT_JOB, (job_id,)).fetchone()
            rows = conn.execute(_SELECT_PENDING, (job_id,)).fetchall()
        if found is None:
            raise CheckpointError(f"{self._path}: no checkpoint of job {job_id!r}")
        what = f"the stored document of job {job_id!r}"
        document = decode(found[0], str(self._path), what)
        if not isinstance(document, dict):
            raise CheckpointError(
                f"{self._path}: the document of job {job_id!r} is not an object"
            )
        document["pending_activations"] = [
            self._activation(job_id, row) for row in rows
        ]
        return document

    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Return job summaries, oldest ``updated_at`` first. Thread-safe.

        Args:
            flow_id: Only jobs of this flow.
            status: Only jobs with this status (a string or a ``JobStatus``).

        Returns:
            ``{"job_id", "flow_id", "status", "updated_at"}`` dicts.

        Raises:
            CheckpointError: When the database cannot be read.
        """
        params = {"flow_id": flow_id, "status": text(status)}
        with self._transaction("list jobs", _READ) as conn:
            rows = conn.execute(_LIST_JOBS, params).fetchall()
        return [summary(row) for row in rows]

    def delete(self, job_id: str) -> None:
        """Remove a job and its pending activations; unknown ids are a no-op.

        Thread-safe.

        Raises:
            CheckpointError: When the database cannot be written.
        """
        with self._transaction(f"delete job {job_id!r}", _WRITE) as conn:
            conn.execute(_DELETE_JOB_PENDING, (job_id,))
            conn.execute(_DELETE_JOB, (job_id,))

    def close(self) -> None:
        """Close the connection. Idempotent and thread-safe."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- internals --------------------------------------------------------------

    @contextmanager
    def _transaction(self, action: str, begin: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run one transaction; map sqlite3 errors."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise CheckpointError(f"{self._path}: cannot {action}: store is closed")
            if begin == _WRITE and self._read_only:
                raise CheckpointError(
                    f"{self._path}: cannot {action}: the store was opened read-only"
                )
            try:
                conn.execute(begin)
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise self._failure(action, exc) from exc
            except BaseException:
                _rollback(conn)
                raise

    def _failure(self, action: str, exc: sqlite3.Error) -> CheckpointError:
        message = str(exc)
        hint = _HINTS.get(next((k for k in _HINTS if k in message), ""), "")
        return CheckpointError(
            f"{self._path}: cannot {action}: {message}"
            + hint.format(busy_timeout=self._busy_timeout)
        )

    def _job_params(
        self, job: dict[str, Any], job_id: str | None = None
    ) -> tuple[str, str, str, str, float, str]:
        row, document = stored_job(job, str(self._path), job_id)
        return (*row, encode(document, str(self._path), f"job {row.job_id!r}").decode())

    def _pending_params(
        self, job_id: str, activation: dict[str, Any]
    ) -> tuple[str, str, str, str, str]:
        where = str(self._path)
        activation_id, routine_id, slot, payload = activation_fields(
            activation, job_id, where
        )
        encoded = encode(payload, where, f"activation {activation_id!r}").decode()
        return (job_id, activation_id, routine_id, slot, encoded)

    def _activation(self, job_id: str, row: Sequence[Any]) -> dict[str, Any]:
        what = f"the stored payload of activation {row[0]!r} of job {job_id!r}"
        payload = decode(row[3], str(self._path), what)
        return {"id": row[0], "routine_id": row[1], "slot": row[2], "payload": payload}

    # -- opening ------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if not self._memory:
            self._check_files()
        conn = self._connect(immutable=False)
        if self._read_only and not _readable(conn):
            # Reading a WAL database needs its -shm file. In a directory we cannot
            # write, with no writer left to change the file, open it immutable.
            conn.close()
            conn = self._connect(immutable=True)
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_files(self) -> None:
        path = self._path
        if path.is_dir():
            raise CheckpointError(f"{path}: is a directory, not a database file")
        prepare_directory(path.parent, path, read_only=self._read_only)
        if self._read_only and not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint database")
        if not self._read_only and path.exists() and not os.access(path, os.W_OK):
            raise CheckpointError(
                f"{path}: the file is not writable; open the store with "
                "read_only=True to read the checkpoints it holds"
            )

    def _connect(self, *, immutable: bool) -> sqlite3.Connection:
        if self._memory:
            target, uri = ":memory:", False
        elif self._read_only:
            flags = "?mode=ro&immutable=1" if immutable else "?mode=ro"
            target, uri = self._path.resolve().as_uri() + flags, True
        else:
            target, uri = os.fspath(self._path), False
        try:
            return sqlite3.connect(
                target,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise self._failure("open the database", exc) from exc

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check the file, switch to WAL and create the schema if it is new."""
        try:
            if self._read_only:
                version = _user_version(conn)
            else:
                with _opening_lock(None if self._memory else self._path):
                    version = _user_version(conn)
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                    if version == 0:
                        version = self._create_schema(conn)
        except sqlite3.Error as exc:
            raise self._failure("open the database", exc) from exc
        if version == 0:
            raise CheckpointError(f"{self._path}: not a checkpoint database (empty)")
        if version != SCHEMA_VERSION:
            raise CheckpointError(
                f"{self._path}: checkpoint schema version {version}, but this "
                f"routilux reads version {SCHEMA_VERSION}; use the routilux version "
                "that wrote it"
            )

    def _create_schema(self, conn: sqlite3.Connection) -> int:
        """Create the tables unless another process did first; return the version."""
        conn.execute(_WRITE)
        try:
            version = _user_version(conn)
            if version == 0:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise CheckpointError(
                        f"{self._path}: not a checkpoint database (it has tables "
                        "but no routilux schema version)"
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                version = SCHEMA_VERSION
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return version


def _user_version(conn: sqlite3.Connection) -> int:
    """The schema version kept in the database header (internal)."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def _readable(conn: sqlite3.Connection) -> bool:
    """Whether a read-only connection can read the database (internal)."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        return False
    return True


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back an open transaction, keeping the connection usable."""
    if conn.in_transaction:
        # The error that brought us here is what the caller must see; a failing
        # rollback (the connection is broken anyway) must not replace it.
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


@contextmanager
def _opening_lock(path: Path | None) -> Iterator[None]:
    """Let one process at a time switch a database to WAL and create its schema.

    Two processes opening a new file at once can otherwise deadlock in SQLite
    (one holds a write lock and waits to commit, the other holds a read lock and
    waits to change the journal mode) until ``busy_timeout`` runs out. The lock is
    an advisory ``flock`` on ``<database>.lock``; where ``fcntl`` is missing, none.
    """
    if path is None or fcntl is None:
        yield
        return
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
