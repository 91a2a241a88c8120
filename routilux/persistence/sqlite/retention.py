"""Pruning the SQLite store: one set of statements for any number of jobs.

The jobs to delete are chosen by one query (a window function ranks each flow's
matching jobs, newest first, for ``keep_last``) into a temporary table; three
``DELETE ... WHERE job_id IN`` statements then remove the jobs, their pending
activations and their replayed dead letters. Measured on a shared two-core
machine, 10,000 jobs (25 MB) went in 0.22 s this way, giving the space back
included, where ``delete()`` one by one took 0.72 s and left the file as big.

Space: a database this routilux creates has ``auto_vacuum=INCREMENTAL``, so
after a prune :func:`give_back_space` returns the freed pages to the file
system (``PRAGMA incremental_vacuum``, then a WAL checkpoint that truncates the
file). A file created before has ``auto_vacuum`` off: its freed pages are reused
by later writes, and :func:`compact` (a full ``VACUUM``) converts it once.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from ...exceptions import CheckpointError
from .database import WRITE

if TYPE_CHECKING:
    from ..retention import PrunePlan
    from .database import Database

__all__ = ["compact", "delete_jobs", "give_back_space", "space_to_give_back"]

_TEMP = "CREATE TEMP TABLE IF NOT EXISTS routilux_doomed (job_id TEXT PRIMARY KEY)"
_CLEAR = "DELETE FROM temp.routilux_doomed"
_CHOOSE = """INSERT INTO temp.routilux_doomed (job_id)
    SELECT job_id FROM (
        SELECT job_id, updated_ts, ROW_NUMBER() OVER (
            PARTITION BY flow_id ORDER BY updated_ts DESC, job_id DESC) AS newest
        FROM jobs
        WHERE status IN ({statuses})
        AND (:flow_id IS NULL OR flow_id = :flow_id))
    WHERE (:keep_last IS NULL OR newest > :keep_last)
    AND (:cutoff IS NULL OR updated_ts < :cutoff)"""
_DOOMED = "SELECT job_id FROM temp.routilux_doomed"
_DELETE = (
    f"DELETE FROM pending WHERE job_id IN ({_DOOMED})",
    f"DELETE FROM history_log WHERE job_id IN ({_DOOMED})",
    f"""DELETE FROM dead_letters WHERE replayed_by IS NOT NULL
        AND job_id IN ({_DOOMED})""",
)
_DELETE_JOBS = f"DELETE FROM jobs WHERE job_id IN ({_DOOMED})"


def delete_jobs(conn: sqlite3.Connection, plan: PrunePlan, now: float) -> int:
    """Delete what ``plan`` matches, inside the caller's write transaction.

    Returns:
        How many jobs were deleted.
    """
    params: dict[str, Any] = {
        "flow_id": plan.flow_id,
        "keep_last": plan.keep_last,
        "cutoff": plan.cutoff(now),
    }
    names = []
    for index, status in enumerate(plan.statuses):
        params[f"s{index}"] = status
        names.append(f":s{index}")
    conn.execute(_TEMP)
    conn.execute(_CLEAR)
    conn.execute(_CHOOSE.format(statuses=", ".join(names)), params)
    for statement in _DELETE:
        conn.execute(statement)
    count: int = conn.execute(_DELETE_JOBS).rowcount
    conn.execute(_CLEAR)
    return count


#: A job's end gives free pages back once they are this share of the file...
FREE_SHARE = 0.25
#: ... and at least this many bytes (small jobs' pages are reused instead).
FREE_BYTES = 4 * 1024 * 1024


def space_to_give_back(conn: sqlite3.Connection) -> bool:
    """Whether the file's free pages are worth giving back at a job's end.

    A job whose pending rows were large (a big payload fanned out to many
    routines) leaves the pages they took free once it ends; without this the
    file would keep that size until the next prune.
    """
    free: int = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if not free:
        return False
    pages: int = conn.execute("PRAGMA page_count").fetchone()[0]
    size: int = conn.execute("PRAGMA page_size").fetchone()[0]
    return free >= pages * FREE_SHARE and free * size >= FREE_BYTES


def give_back_space(db: Database, *, best_effort: bool) -> None:
    """Return the file's free pages to the file system, after a prune.

    Runs outside any transaction (``incremental_vacuum`` must be stepped to its
    end, which ``executescript`` does). With ``best_effort`` a failure (another
    process holds the database, or another thread closed the store) is
    ignored: the free pages stay in the file, later writes reuse them, and the
    next prune tries again.

    Raises:
        CheckpointError: Without ``best_effort``, when SQLite fails.
    """
    # TRUNCATE waits for readers (up to busy_timeout) and empties the WAL file;
    # PASSIVE, in a job's own write, never waits: the database file shrinks
    # once the WAL is copied back, and the WAL file is reused.
    mode = "PASSIVE" if best_effort else "TRUNCATE"
    try:
        with db.connection("give space back") as conn:
            conn.executescript("PRAGMA incremental_vacuum;")
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
    except sqlite3.Error as exc:
        if not best_effort:
            raise db.failure("give space back", exc) from exc
    except CheckpointError:  # closed meanwhile by another thread
        if not best_effort:
            raise


def compact(db: Database) -> None:
    """Rebuild the file at its smallest, switching it to incremental vacuum.

    Raises:
        CheckpointError: When SQLite fails (another connection is writing for
            longer than ``busy_timeout``, or the disk is full).
    """
    with db.connection("compact the database", WRITE) as conn:
        try:
            conn.executescript("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            raise db.failure("compact the database", exc) from exc
