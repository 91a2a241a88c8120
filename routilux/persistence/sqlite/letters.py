"""Dead letters in the SQLite store: one row per letter in ``dead_letters``.

Layout (created by :mod:`.database`)::

    dead_letters(seq INTEGER PRIMARY KEY, letter_id UNIQUE, flow_id, job_id,
                 replayed_by, document)

``document`` is the letter as tagged JSON (its payload keeps its types) without
``replayed_by``, which its column holds; ``seq`` keeps the letters in the order
they were first kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import CheckpointError
from ..base import decode
from ..dead_letters import MISSING, check_ids, letter_row, not_markable
from ..payloads import decode_values, encode_values
from .database import HAS_LETTERS, READ, WRITE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ...serialization import ClassPolicy
    from .database import Database

__all__ = ["add_letter", "mark_replayed", "select_letters"]

_INSERT = """INSERT INTO dead_letters
    (letter_id, flow_id, job_id, replayed_by, document) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (letter_id) DO UPDATE SET flow_id = excluded.flow_id,
        job_id = excluded.job_id, document = excluded.document"""
_SELECT = """SELECT letter_id, document, replayed_by FROM dead_letters
    WHERE (:flow_id IS NULL OR flow_id = :flow_id)
    AND (:job_id IS NULL OR job_id = :job_id)
    AND (:everything OR replayed_by IS NULL)
    ORDER BY seq"""
_REPLAYED_BY = "SELECT replayed_by FROM dead_letters WHERE letter_id = ?"
_MARK = "UPDATE dead_letters SET replayed_by = ? WHERE letter_id = ?"


def add_letter(db: Database, letter: dict[str, Any]) -> None:
    """Insert or replace one letter (see ``DeadLetterStore.add_dead_letter``)."""
    where = str(db.path)
    row = letter_row(letter, where)
    document = {k: v for k, v in letter.items() if k != "replayed_by"}
    text = encode_values(document, where, f"dead letter {row.letter_id!r}").decode()
    params = (row.letter_id, row.flow_id, row.job_id, row.replayed_by, text)
    with db.transaction(f"keep dead letter {row.letter_id!r}", WRITE) as conn:
        conn.execute(_INSERT, params)


def select_letters(
    db: Database,
    flow_id: str | None,
    job_id: str | None,
    include_replayed: bool,
    classes: ClassPolicy,
) -> list[dict[str, Any]]:
    """The letters that match, oldest first (see ``DeadLetterStore.dead_letters``)."""
    params = {
        "flow_id": flow_id,
        "job_id": job_id,
        "everything": bool(include_replayed),
    }
    with db.transaction("list dead letters", READ) as conn:
        if conn.execute(HAS_LETTERS).fetchone() is None:
            return []  # a file from before dead letters, opened read-only
        rows = conn.execute(_SELECT, params).fetchall()
    letters = []
    for letter_id, text, replayed_by in rows:
        what = f"the stored dead letter {letter_id!r}"
        letter = decode(text, str(db.path), what)
        letter = decode_values(letter, text, str(db.path), what, classes)
        if not isinstance(letter, dict):
            raise CheckpointError(f"{db.path}: {what} is not an object")
        letter["replayed_by"] = replayed_by
        letters.append(letter)
    return letters


def mark_replayed(db: Database, letter_ids: Sequence[str], job_id: str) -> None:
    """Mark letters replayed by ``job_id``, all or none (one transaction)."""
    where = str(db.path)
    ids = check_ids(letter_ids, job_id, where)
    with db.transaction(f"mark dead letters replayed by {job_id!r}", WRITE) as conn:
        for letter_id in ids:
            found = conn.execute(_REPLAYED_BY, (letter_id,)).fetchone()
            if found is None or found[0] is not None:
                raise not_markable(
                    letter_id, MISSING if found is None else found[0], where
                )
        conn.executemany(_MARK, [(job_id, letter_id) for letter_id in ids])
