"""The SQL of the history log (see :mod:`routilux.persistence.history_log`).

One row per logged batch of history entries: ``(job_id, ordinal, entry)``,
``entry`` the JSON array (text) of the entries a step logged, as a job
document holds them, and ``ordinal`` the number of the batch's *last* entry.
Rows written before batches (one entry, a JSON object, per row, numbered by
itself) read the same way. Numbered by their last entry, rows sort in entry
order, and a batch whose numbers overlap entries logged already is found with
one look at the highest number: then (never from the runtime, whose numbers
only grow) the entries are rewritten one per row, the new ones replacing
those of the same number. One row per batch rather than per entry: a long
job logs tens of thousands of entries a second, and a row each cost more
than everything else in its log step. Every function runs inside a
transaction the caller holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..base import decode
from .database import HAS_HISTORY_LOG

if TYPE_CHECKING:
    import sqlite3

__all__ = ["append", "clear", "entries", "fold"]

_INSERT = "INSERT OR REPLACE INTO history_log (job_id, ordinal, entry) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM history_log WHERE job_id = ?"
_SELECT = "SELECT ordinal, entry FROM history_log WHERE job_id = ? ORDER BY ordinal"
_LAST = "SELECT max(ordinal) FROM history_log WHERE job_id = ?"


def append(
    conn: sqlite3.Connection, job_id: str, first: int, batch: str, count: int
) -> None:
    """Log ``batch`` (a JSON array of ``count`` entries) as entries ``first``...

    An entry whose number is logged already is replaced.
    """
    if not count:
        return
    last = conn.execute(_LAST, (job_id,)).fetchone()[0]
    if last is not None and last >= first:
        _renumber(conn, job_id, first, batch)
        return
    conn.execute(_INSERT, (job_id, first + count - 1, batch))


def _renumber(conn: sqlite3.Connection, job_id: str, first: int, batch: str) -> None:
    """Merge overlapping numbers: every entry its own row, the new ones winning."""
    numbered = _numbered(conn, job_id)
    numbered.update(enumerate(orjson.loads(batch), first))
    clear(conn, job_id)
    conn.executemany(
        _INSERT,
        [
            (job_id, number, orjson.dumps(numbered[number]).decode())
            for number in sorted(numbered)
        ],
    )


def _numbered(conn: sqlite3.Connection, job_id: str) -> dict[int, Any]:
    """The logged entries by number (rows decoded; only for merging)."""
    numbered: dict[int, Any] = {}
    for last, text in conn.execute(_SELECT, (job_id,)).fetchall():
        value = orjson.loads(text)
        if isinstance(value, list):
            numbered.update(enumerate(value, last - len(value) + 1))
        else:
            numbered[last] = value
    return numbered


def fold(
    conn: sqlite3.Connection, job_id: str, kept: str, first: int, batch: str, count: int
) -> str:
    """The JSON text of a compacted ``execution_history``, the log's rows spliced.

    Args:
        conn: The connection, in the transaction that compacts.
        job_id: The job.
        kept: The JSON array (text) of the document's own entries.
        first: The number of the first entry of ``batch``.
        batch: A JSON array (text) of ``count`` entries not logged yet.
        count: How many entries ``batch`` holds.
    """
    append(conn, job_id, first, batch, count)
    texts = [kept[1:-1]]
    for _, text in conn.execute(_SELECT, (job_id,)).fetchall():
        # A batch is an array: its entries are the text inside the brackets.
        texts.append(text[1:-1] if text.startswith("[") else text)
    return f"[{','.join(text for text in texts if text)}]"


def clear(conn: sqlite3.Connection, job_id: str) -> None:
    """Forget the job's logged history (it was compacted or the job deleted)."""
    conn.execute(_DELETE, (job_id,))


def entries(conn: sqlite3.Connection, job_id: str, where: str) -> list[Any]:
    """The job's logged history entries in order ([] in a file without a log).

    Raises:
        CheckpointError: When a row is not JSON, naming its number.
    """
    if conn.execute(HAS_HISTORY_LOG).fetchone() is None:  # an older read-only file
        return []
    logged: list[Any] = []
    for ordinal, text in conn.execute(_SELECT, (job_id,)).fetchall():
        value = decode(text, where, f"history entry {ordinal} of job {job_id!r}")
        if isinstance(value, list):
            logged.extend(value)
        else:
            logged.append(value)
    return logged
