"""Big payloads stored once per job: pending rows refer to them by digest.

A payload emitted to ten routines makes ten pending activations, each with a
copy of the payload: a 50 MB payload fanned out to ten routines took 500 MB of
file until they ran. A payload of at least :data:`SHARED_BYTES` (encoded) is
therefore kept once per job in the ``payloads`` table, and its pending rows
hold ``@`` and its digest instead (an encoded payload is a JSON object, so it
never starts with ``@``).

SQLite keeps the count of rows referring to each payload itself (triggers on
``pending``), so every way a pending row goes (a step, a resume, a prune, a
deleted job) drops its reference in the same transaction, and a payload goes
with its last reference. A writer stores the payload (``refs`` 0) before the
rows that refer to it, and drops what no row took (:func:`tidy`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

__all__ = [
    "HAS_PAYLOADS",
    "SCHEMA",
    "SELECT_PENDING",
    "SELECT_PENDING_PLAIN",
    "SHARED_BYTES",
    "has_big",
    "share",
    "tidy",
]

#: An encoded payload at least this long is stored once per job.
SHARED_BYTES = 64 * 1024
_MARK = "@"

#: The table and the triggers that count references (added as the other
#: later tables are: older routilux versions never read it).
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS payloads (job_id TEXT NOT NULL,
        digest TEXT NOT NULL, refs INTEGER NOT NULL, body TEXT NOT NULL,
        UNIQUE (job_id, digest))""",
    """CREATE TRIGGER IF NOT EXISTS pending_payload_added AFTER INSERT ON pending
        WHEN substr(new.payload, 1, 1) = '@' BEGIN
        UPDATE payloads SET refs = refs + 1
            WHERE job_id = new.job_id AND digest = substr(new.payload, 2);
        END""",
    """CREATE TRIGGER IF NOT EXISTS pending_payload_dropped AFTER DELETE ON pending
        WHEN substr(old.payload, 1, 1) = '@' BEGIN
        UPDATE payloads SET refs = refs - 1
            WHERE job_id = old.job_id AND digest = substr(old.payload, 2);
        DELETE FROM payloads WHERE job_id = old.job_id
            AND digest = substr(old.payload, 2) AND refs <= 0;
        END""",
    """CREATE TRIGGER IF NOT EXISTS pending_payload_replaced
        AFTER UPDATE OF job_id, payload ON pending
        WHEN substr(new.payload, 1, 1) = '@' OR substr(old.payload, 1, 1) = '@'
        BEGIN
        UPDATE payloads SET refs = refs + 1 WHERE substr(new.payload, 1, 1) = '@'
            AND job_id = new.job_id AND digest = substr(new.payload, 2);
        UPDATE payloads SET refs = refs - 1 WHERE substr(old.payload, 1, 1) = '@'
            AND job_id = old.job_id AND digest = substr(old.payload, 2);
        DELETE FROM payloads WHERE substr(old.payload, 1, 1) = '@'
            AND job_id = old.job_id AND digest = substr(old.payload, 2)
            AND refs <= 0;
        END""",
)
#: Whether the file has the payloads table (a read-only older file may not).
HAS_PAYLOADS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'payloads'"
#: A job's pending rows, references resolved, in insertion order.
SELECT_PENDING = """SELECT p.activation_id, p.routine_id, p.slot,
    coalesce(b.body, p.payload) FROM pending AS p LEFT JOIN payloads AS b
    ON substr(p.payload, 1, 1) = '@' AND b.job_id = p.job_id
    AND b.digest = substr(p.payload, 2)
    WHERE p.job_id = ? ORDER BY p.seq"""
#: The same, on a file without the payloads table.
SELECT_PENDING_PLAIN = """SELECT activation_id, routine_id, slot, payload
    FROM pending WHERE job_id = ? ORDER BY seq"""
_STORE = """INSERT INTO payloads (job_id, digest, refs, body) VALUES (?, ?, 0, ?)
    ON CONFLICT (job_id, digest) DO NOTHING"""
_TIDY = "DELETE FROM payloads WHERE job_id = ? AND digest = ? AND refs <= 0"

#: A pending-table row: job_id, activation_id, routine_id, slot, payload.
Row = tuple[str, str, str, str, str]


def share(
    conn: sqlite3.Connection, rows: Sequence[Row]
) -> tuple[list[Row], list[tuple[str, str]]]:
    """Store the big payloads of ``rows``; return the rows referring to them.

    Also returns the (job_id, digest) of each payload stored, for :func:`tidy`
    once the rows are written. Transaction held.
    """
    shared: list[Row] = []
    stored: list[tuple[str, str]] = []
    digests: dict[str, str] = {}  # equal payloads of one step: hashed once
    for row in rows:
        job_id, activation_id, routine_id, slot, payload = row
        if len(payload) < SHARED_BYTES:
            shared.append(row)
            continue
        digest = digests.get(payload)
        if digest is None:
            digest = digests[payload] = hashlib.blake2b(
                payload.encode(), digest_size=20
            ).hexdigest()
            conn.execute(_STORE, (job_id, digest, payload))
            stored.append((job_id, digest))
        shared.append((job_id, activation_id, routine_id, slot, _MARK + digest))
    return shared, stored


def has_big(rows: Sequence[Row]) -> bool:
    """Whether any of ``rows`` has a payload :func:`share` would store."""
    return any(len(row[4]) >= SHARED_BYTES for row in rows)


def tidy(conn: sqlite3.Connection, stored: Sequence[tuple[str, str]]) -> None:
    """Drop the payloads :func:`share` stored that no row took (a replaced id)."""
    if stored:
        conn.executemany(_TIDY, stored)
