"""The SQL of the history log (see :mod:`routilux.persistence.history_log`).

One row per history entry: ``(job_id, ordinal, entry)``, the entry as the JSON
text a job document holds. Every function runs inside a transaction the caller
holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import decode
from .database import HAS_HISTORY_LOG

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

__all__ = ["append", "clear", "entries", "fold"]

_INSERT = "INSERT OR REPLACE INTO history_log (job_id, ordinal, entry) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM history_log WHERE job_id = ?"
_SELECT = "SELECT ordinal, entry FROM history_log WHERE job_id = ? ORDER BY ordinal"


def append(
    conn: sqlite3.Connection, job_id: str, first: int, rows: Sequence[str]
) -> None:
    """Log ``rows`` (encoded entries) as entries ``first``, ``first + 1``..."""
    if rows:
        conn.executemany(
            _INSERT, [(job_id, first + i, row) for i, row in enumerate(rows)]
        )


def fold(
    conn: sqlite3.Connection, job_id: str, kept: str, first: int, rows: Sequence[str]
) -> str:
    """The JSON text of a compacted ``execution_history``, the log's rows spliced.

    Args:
        conn: The connection, in the transaction that compacts.
        job_id: The job.
        kept: The JSON array (text) of the document's own entries.
        first: The number of the first of ``rows``.
        rows: Encoded entries not logged yet, numbered from ``first``; one
            whose number is logged already replaces it.
    """
    logged = conn.execute(_SELECT, (job_id,)).fetchall()
    if logged and logged[-1][0] >= first:  # rare: numbers logged again replace
        by_number = dict(logged)
        by_number.update(enumerate(rows, first))
        texts = [by_number[n] for n in sorted(by_number)]
    else:
        texts = [text for _, text in logged]
        texts.extend(rows)
    if not texts:
        return kept
    inner = kept[1:-1]
    return f"[{inner}{',' if inner else ''}{','.join(texts)}]"


def clear(conn: sqlite3.Connection, job_id: str) -> None:
    """Forget the job's logged history (it was compacted or the job deleted)."""
    conn.execute(_DELETE, (job_id,))


def entries(conn: sqlite3.Connection, job_id: str, where: str) -> list[Any]:
    """The job's logged history entries in order ([] in a file without a log).

    Raises:
        CheckpointError: When an entry is not JSON, naming its number.
    """
    if conn.execute(HAS_HISTORY_LOG).fetchone() is None:  # an older read-only file
        return []
    return [
        decode(text, where, f"history entry {ordinal} of job {job_id!r}")
        for ordinal, text in conn.execute(_SELECT, (job_id,)).fetchall()
    ]
