"""The SQL of a running job's steps: pending activations, documents and log.

A step is prepared first (every value encoded, outside any transaction) and
then written inside a transaction the caller holds (``record_step``,
``log_step``), or with other steps in one transaction (:func:`write_batch`, the
group commit of :mod:`routilux.runtime.step_writer`).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, NamedTuple

from ...exceptions import CheckpointError
from ..base import activation_fields, encode, stored_job
from ..history_log import HistoryBatch
from ..payloads import encode_values
from . import history_log, payload_refs
from .database import WRITE

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .database import Database


__all__ = [
    "INSERT_PENDING",
    "UPSERT_JOB",
    "Prepared",
    "insert_rows",
    "job_params",
    "pending_params",
    "prepare",
    "write",
    "write_batch",
]

UPSERT_JOB = """INSERT INTO jobs
    (job_id, flow_id, status, updated_at, updated_ts, document)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (job_id) DO UPDATE SET flow_id = excluded.flow_id,
        status = excluded.status, updated_at = excluded.updated_at,
        updated_ts = excluded.updated_ts, document = excluded.document"""
INSERT_PENDING = """INSERT INTO pending
    (job_id, activation_id, routine_id, slot, payload) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (job_id, activation_id) DO UPDATE SET
        routine_id = excluded.routine_id, slot = excluded.slot,
        payload = excluded.payload"""
_DELETE_PENDING = "DELETE FROM pending WHERE job_id = ? AND activation_id = ?"
# The finished row becomes its one child: the same table as a delete and an
# insert (the child last in insertion order), in one statement.
_PASS_ON = """UPDATE pending SET seq = (SELECT max(seq) FROM pending) + 1,
    activation_id = ?, routine_id = ?, slot = ?, payload = ?
    WHERE job_id = ? AND activation_id = ?"""
_JOB_EXISTS = "SELECT 1 FROM jobs WHERE job_id = ?"

#: A jobs-table row: job_id, flow_id, status, updated_at, updated_ts, document.
JobRow = tuple[str, str, str, str, float, str]


class Prepared(NamedTuple):
    """A step with every value encoded, ready to write."""

    job_id: str
    job: JobRow | None
    removed: list[tuple[str, str]]
    inserted: list[tuple[str, str, str, str, str]]
    #: The history entries to log as one JSON array (text), or None: the step
    #: does not log (a document it carries then holds the whole history: the
    #: log is emptied).
    history: str | None
    first: int
    restart: bool = False
    #: Compact: the job row's document lacks its history, which is this
    #: JSON array (text) followed by the log's entries and ``history``.
    kept: str | None = None
    #: How many entries ``history`` holds.
    size: int = 0


def job_params(where: str, job: dict[str, Any], job_id: str | None = None) -> JobRow:
    """The jobs-table row of a job document (checked and encoded)."""
    row, document = stored_job(job, where, job_id)
    return (*row, encode(document, where, f"job {row.job_id!r}").decode())


def pending_params(
    where: str, job_id: str, activation: dict[str, Any]
) -> tuple[str, str, str, str, str]:
    """The pending-table row of an activation (checked and encoded)."""
    activation_id, routine_id, slot, payload = activation_fields(
        activation, job_id, where
    )
    what = f"activation {activation_id!r} of job {job_id!r}"
    encoded = encode_values(payload, where, what).decode()
    return (job_id, activation_id, routine_id, slot, encoded)


def prepare(
    where: str,
    job_id: str,
    finished: Sequence[str] = (),
    added: Sequence[dict[str, Any]] = (),
    job: dict[str, Any] | None = None,
    history: Sequence[dict[str, Any]] | None = None,
    first: int = 0,
    restart: bool = False,
    compact: bool = False,
) -> Prepared:
    """Encode a step (no transaction needed).

    Raises:
        CheckpointError: On a bad document or activation.
        SerializationError: On a value the store cannot write, naming its path.
    """
    if not added and job is None and history is None and not compact:
        # Most steps of a running job: one activation done, nothing new.
        return Prepared(
            job_id, None, [(job_id, key) for key in finished], [], None, first
        )
    rows = None
    kept = None
    if compact:
        if job is None:
            raise CheckpointError(
                f"{where}: compacting the log of job {job_id!r} needs its document"
            )
        entries = job.get("execution_history", [])
        kept = encode(entries, where, f"history of job {job_id!r}").decode()
        if not kept.startswith("["):
            raise CheckpointError(
                f"{where}: job {job_id!r}: execution_history must be a list"
            )
        job = {k: v for k, v in job.items() if k != "execution_history"}
    if isinstance(history, HistoryBatch):  # the runtime's: encoded already
        rows = history.text
    elif history is not None:
        what = f"history entries {first}.. of job {job_id!r}"
        rows = encode(list(history), where, what).decode()
    return Prepared(
        job_id,
        None if job is None else job_params(where, job, job_id),
        [(job_id, activation_id) for activation_id in finished],
        [pending_params(where, job_id, a) for a in added],
        rows,
        first,
        restart,
        kept,
        0 if history is None else len(history),
    )


def write(conn: sqlite3.Connection, where: str, step: Prepared) -> None:
    """Write a prepared step (transaction held).

    Raises:
        CheckpointError: For a step without a document of a job the store does
            not hold; the caller's transaction must be rolled back then.
    """
    job_id = step.job_id
    if step.kept is not None:
        _compacted(conn, step)
        return
    if step.job is not None:
        conn.execute(UPSERT_JOB, step.job)
        _remove(conn, step.removed)
    elif step.history is None and _pass_on(conn, step):
        return
    elif not _remove(conn, step.removed):
        # A pending row removed proves the job is stored (its rows go with it):
        # only a step that removed none looks the job up.
        _check_job(conn, where, job_id)
    _insert(conn, step.inserted)
    if step.history is None:
        if step.job is not None:  # a whole document: compact the log
            history_log.clear(conn, job_id)
        return
    if step.restart:
        history_log.clear(conn, job_id)
    history_log.append(conn, job_id, step.first, step.history, step.size)


def write_batch(
    db: Database,
    where: str,
    batch: Sequence[Prepared],
    fence: Callable[[sqlite3.Connection, str], None],
) -> list[BaseException | None]:
    """Write prepared steps of running jobs in one transaction; each one's error.

    ``fence`` checks a job's lease inside the transaction (once per job of the
    batch). When the transaction fails, every step is tried again alone, in
    order, so a step the store refuses (a fenced job, an unknown one) fails
    only itself and the others are written. Never raises.

    Returns:
        One entry per step, in order: None when it was written.
    """
    try:
        action = f"record {len(batch)} steps of running jobs"
        with db.transaction(action, WRITE) as conn:
            fenced: set[str] = set()
            removals: list[Prepared] = []
            for step in batch:
                if step.job_id not in fenced:
                    fence(conn, step.job_id)
                    fenced.add(step.job_id)
                if _removes_only(step):
                    removals.append(step)
                    continue
                if removals:
                    _remove_all(conn, where, removals)
                    removals = []
                write(conn, where, step)
            if removals:
                _remove_all(conn, where, removals)
    except BaseException as exc:  # noqa: BLE001 - each step is tried alone below
        if len(batch) == 1:
            return [exc]
    else:
        return [None] * len(batch)
    return [_alone(db, where, step, fence) for step in batch]


def _removes_only(step: Prepared) -> bool:
    """Whether writing ``step`` only removes pending rows (most queued steps)."""
    return (
        not step.inserted
        and step.job is None
        and step.history is None
        and step.kept is None
    )


def _remove_all(conn: sqlite3.Connection, where: str, steps: list[Prepared]) -> None:
    """Write consecutive steps that only remove rows, as one statement.

    What writing them one by one does (a statement each cost more than its
    row): should fewer rows go than were named, a step may have removed none,
    and then its job must be stored, which is checked once per job.

    Raises:
        CheckpointError: For a job the store does not hold (the caller's
            transaction must be rolled back then).
    """
    rows = [row for step in steps for row in step.removed]
    if _remove(conn, rows) < len(rows) or not all(step.removed for step in steps):
        for job_id in dict.fromkeys(step.job_id for step in steps):
            _check_job(conn, where, job_id)


def _alone(
    db: Database,
    where: str,
    step: Prepared,
    fence: Callable[[sqlite3.Connection, str], None],
) -> BaseException | None:
    """Write one step in its own transaction; its error, or None."""
    try:
        with db.transaction(f"record a step of job {step.job_id!r}", WRITE) as conn:
            fence(conn, step.job_id)
            write(conn, where, step)
    except BaseException as exc:  # noqa: BLE001 - the step's own failure
        return exc
    return None


def _pass_on(conn: sqlite3.Connection, step: Prepared) -> bool:
    """Write a step that finishes one activation and adds one as one statement.

    The finished row is replaced by the child's, last in insertion order: the
    table a delete and an insert would leave, in one statement rather than two
    (a statement costs more than its SQL under a pool's threads). False, with
    nothing written, for another step, or when the finished row is not there
    or the child's id is pending already: the general path tells an unknown
    job from an unknown id, and replaces a pending id in place.
    """
    if len(step.removed) != 1 or len(step.inserted) != 1:
        return False
    if len(step.inserted[0][4]) >= payload_refs.SHARED_BYTES:
        return False  # the general path stores it once (payload_refs)
    job_id, activation_id, routine_id, slot, payload = step.inserted[0]
    try:
        cursor = conn.execute(
            _PASS_ON,
            (activation_id, routine_id, slot, payload, job_id, step.removed[0][1]),
        )
    except sqlite3.IntegrityError:  # the child's id is pending: nothing changed
        return False
    return bool(cursor.rowcount)


def _check_job(conn: sqlite3.Connection, where: str, job_id: str) -> None:
    if conn.execute(_JOB_EXISTS, (job_id,)).fetchone() is None:
        raise CheckpointError(
            f"{where}: cannot record a step of unknown job {job_id!r}: "
            "save_job() it first or pass job="
        )


# One row is the common step: execute() skips executemany's iteration.


def _remove(conn: sqlite3.Connection, removed: list[tuple[str, str]]) -> int:
    """Remove pending activations; return how many rows were there."""
    if len(removed) == 1:
        return int(conn.execute(_DELETE_PENDING, removed[0]).rowcount)
    if removed:
        return int(conn.executemany(_DELETE_PENDING, removed).rowcount)
    return 0


def _insert(
    conn: sqlite3.Connection, inserted: list[tuple[str, str, str, str, str]]
) -> None:
    if len(inserted) == 1 and len(inserted[0][4]) < payload_refs.SHARED_BYTES:
        conn.execute(INSERT_PENDING, inserted[0])
    elif inserted:
        insert_rows(conn, inserted)


def insert_rows(
    conn: sqlite3.Connection,
    rows: Sequence[tuple[str, str, str, str, str]],
    sql: str = INSERT_PENDING,
) -> None:
    """Insert pending rows, a big payload stored once (transaction held)."""
    if not payload_refs.has_big(rows):
        conn.executemany(sql, rows)
        return
    shared, stored = payload_refs.share(conn, rows)
    conn.executemany(sql, shared)
    payload_refs.tidy(conn, stored)


def _compacted(conn: sqlite3.Connection, step: Prepared) -> None:
    """Write a step that ends a job: the log folded into its document."""
    row, kept = step.job, step.kept
    assert row is not None
    assert kept is not None
    history = history_log.fold(
        conn, step.job_id, kept, step.first, step.history or "[]", step.size
    )
    document = row[5]
    # The document is a JSON object without the key: close it with the key.
    comma = "" if document == "{}" else ","
    spliced = f'{document[:-1]}{comma}"execution_history":{history}}}'
    conn.execute(UPSERT_JOB, (*row[:5], spliced))
    history_log.clear(conn, step.job_id)
    _remove(conn, step.removed)
    _insert(conn, step.inserted)
