"""The SQLite file under a store: opening it, its schema, and transactions.

:class:`Database` holds one connection guarded by a lock (see the package's
docstring for why one), checks the file when it opens, switches it to WAL and
creates the schema of a new file, one process at a time. Every use of the
connection goes through :meth:`Database.transaction`, which maps ``sqlite3``
errors to :class:`~routilux.CheckpointError` with a hint of what to do.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from ...exceptions import CheckpointError
from ..base import prepare_directory
from . import payload_refs

try:
    import fcntl
except ImportError:  # not on Windows: opening there relies on busy_timeout alone
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "HAS_HISTORY_LOG",
    "HAS_LEASES",
    "HAS_LETTERS",
    "READ",
    "SCHEMA_VERSION",
    "WRITE",
    "Database",
]

#: Bytes the WAL file is cut back to after a checkpoint that resets it.
WAL_SIZE_LIMIT = 64 * 1024 * 1024

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
#: Added after version 1 was released, without a new version: older routilux
#: versions never read it, and opening an older file for writing adds it.
_LETTERS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY,
        letter_id TEXT NOT NULL UNIQUE, flow_id TEXT NOT NULL,
        job_id TEXT NOT NULL, replayed_by TEXT, document TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS dead_letters_of_flow
        ON dead_letters (flow_id, job_id)""",
)
#: Job leases (who runs a job, :mod:`.leases`), added the same way as dead letters.
_LEASES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS leases (job_id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL, host TEXT NOT NULL, token TEXT NOT NULL,
        beat REAL NOT NULL)""",
)
#: A running job's history, appended per step (:mod:`.history_log`), added the
#: same way as dead letters: one row per entry, numbered within the job.
_HISTORY_LOG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS history_log (job_id TEXT NOT NULL,
        ordinal INTEGER NOT NULL, entry TEXT NOT NULL,
        PRIMARY KEY (job_id, ordinal)) WITHOUT ROWID""",
)
#: Whether the file has the history log table (a read-only older file may not).
HAS_HISTORY_LOG = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'history_log'"
)
#: Whether the file has the leases table (a read-only older file may not).
HAS_LEASES = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'leases'"
#: Whether the file has the dead letters table (a read-only older file may not).
HAS_LETTERS = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'"
)

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

#: How a transaction begins: reading, or writing (the write lock taken at once).
READ = "BEGIN"
WRITE = "BEGIN IMMEDIATE"


class Database:
    """One SQLite checkpoint file, opened and checked (internal).

    Thread-safe: one lock guards every use of the connection.

    Args:
        path: The database file, or ``":memory:"``.
        busy_timeout: Seconds a write waits for another connection's (checked).
        synchronous: ``"NORMAL"`` or ``"FULL"`` (checked).
        read_only: Open for reading only.

    Raises:
        CheckpointError: See :class:`~routilux.persistence.SQLiteCheckpointStore`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        busy_timeout: float,
        synchronous: str,
        read_only: bool,
    ) -> None:
        self.memory = os.fspath(path) == ":memory:"
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self.read_only = read_only
        # Guards _conn: every use of the connection, and close().
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = self._open()

    @contextmanager
    def transaction(self, action: str, begin: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run one transaction; map sqlite3 errors.

        Args:
            action: What the transaction does, for error messages ("save job x").
            begin: :data:`READ` or :data:`WRITE`.

        Raises:
            CheckpointError: When the store is closed, a write is asked of a
                read-only store, or SQLite fails (everything is rolled back).
        """
        with self._lock:
            conn = self._conn
            if conn is None:
                raise CheckpointError(f"{self.path}: cannot {action}: store is closed")
            if begin == WRITE and self.read_only:
                raise CheckpointError(
                    f"{self.path}: cannot {action}: the store was opened read-only"
                )
            try:
                conn.execute(begin)
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise self.failure(action, exc) from exc
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def connection(
        self, action: str, begin: str | None = None
    ) -> Iterator[sqlite3.Connection]:
        """Hold the lock and hand out the connection outside any transaction.

        For statements that cannot run in one (``VACUUM``, WAL checkpoints).
        sqlite3 errors are the caller's to map (see :meth:`failure`).

        Args:
            action: What is done, for error messages.
            begin: :data:`WRITE` to refuse a read-only store; else None.

        Raises:
            CheckpointError: When the store is closed, or a write is asked of a
                read-only store.
        """
        with self._lock:
            conn = self._conn
            if conn is None:
                raise CheckpointError(f"{self.path}: cannot {action}: store is closed")
            if begin == WRITE and self.read_only:
                raise CheckpointError(
                    f"{self.path}: cannot {action}: the store was opened read-only"
                )
            yield conn

    def close(self) -> None:
        """Close the connection. Idempotent and thread-safe."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def failure(self, action: str, exc: sqlite3.Error) -> CheckpointError:
        """The CheckpointError for a sqlite3 error, with a hint of what to do."""
        message = str(exc)
        hint = _HINTS.get(next((k for k in _HINTS if k in message), ""), "")
        return CheckpointError(
            f"{self.path}: cannot {action}: {message}"
            + hint.format(busy_timeout=self.busy_timeout)
        )

    # -- opening ------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if not self.memory:
            self._check_files()
        conn = self._connect(immutable=False)
        if self.read_only and not _readable(conn):
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
        path = self.path
        if path.is_dir():
            raise CheckpointError(f"{path}: is a directory, not a database file")
        prepare_directory(path.parent, path, read_only=self.read_only)
        if self.read_only and not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint database")
        if not self.read_only and path.exists() and not os.access(path, os.W_OK):
            raise CheckpointError(
                f"{path}: the file is not writable; open the store with "
                "read_only=True to read the checkpoints it holds"
            )

    def _connect(self, *, immutable: bool) -> sqlite3.Connection:
        if self.memory:
            target, uri = ":memory:", False
        elif self.read_only:
            flags = "?mode=ro&immutable=1" if immutable else "?mode=ro"
            target, uri = self.path.resolve().as_uri() + flags, True
        else:
            target, uri = os.fspath(self.path), False
        try:
            return sqlite3.connect(
                target,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise self.failure("open the database", exc) from exc

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check the file, switch to WAL and create the schema if it is new."""
        try:
            if self.read_only:
                version = _user_version(conn)
            else:
                with _opening_lock(None if self.memory else self.path):
                    version = _user_version(conn)
                    if version == 0:
                        # Only takes effect before the first table is made: a
                        # new file gives pruned space back (see .retention).
                        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                    # A checkpoint that resets the WAL cuts it to this size: one
                    # big job must not leave the WAL file at its high-water mark.
                    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
                    if version == 0:
                        version = self._create_schema(conn)
                    elif version == SCHEMA_VERSION:
                        self._add_tables(conn)
        except sqlite3.Error as exc:
            raise self.failure("open the database", exc) from exc
        if version == 0:
            raise CheckpointError(f"{self.path}: not a checkpoint database (empty)")
        if version != SCHEMA_VERSION:
            raise CheckpointError(
                f"{self.path}: checkpoint schema version {version}, but this "
                f"routilux reads version {SCHEMA_VERSION}; use the routilux version "
                "that wrote it"
            )

    def _create_schema(self, conn: sqlite3.Connection) -> int:
        """Create the tables unless another process did first; return the version."""
        conn.execute(WRITE)
        try:
            version = _user_version(conn)
            if version == 0:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise CheckpointError(
                        f"{self.path}: not a checkpoint database (it has tables "
                        "but no routilux schema version)"
                    )
                for statement in (
                    *_SCHEMA,
                    *_LETTERS_SCHEMA,
                    *_LEASES_SCHEMA,
                    *_HISTORY_LOG_SCHEMA,
                    *payload_refs.SCHEMA,
                ):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                version = SCHEMA_VERSION
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return version

    def _add_tables(self, conn: sqlite3.Connection) -> None:
        """Give a file written before letters, leases or the log their tables."""
        missing = [
            schema
            for probe, schema in (
                (HAS_LETTERS, _LETTERS_SCHEMA),
                (HAS_LEASES, _LEASES_SCHEMA),
                (HAS_HISTORY_LOG, _HISTORY_LOG_SCHEMA),
                (payload_refs.HAS_PAYLOADS, payload_refs.SCHEMA),
            )
            if conn.execute(probe).fetchone() is None
        ]
        if not missing:
            return
        conn.execute(WRITE)
        try:
            for statement in (s for schema in missing for s in schema):
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise


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
