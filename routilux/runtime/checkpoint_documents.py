"""The job documents and history batches a :class:`.Checkpointer` writes.

Reading a running job (worker threads may add a routine state while it is
read: read again then), the history made since the last write as a store
holds it (tagged JSON, the plain batch as it is), and which parameters a
store's ``log_step`` takes (one written before ``compact`` existed is given
whole documents).
"""

from __future__ import annotations

import inspect
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from ..exceptions import SerializationError
from ..job_documents import FRAME, history_json, job_document, snapshot
from ..persistence.history_log import HistoryBatch
from ..serialization import dumps_value, encode_value, encodes_as_itself

if TYPE_CHECKING:
    from ..job_state import HistoryEntry, JobState
    from ..persistence.base import CheckpointStore
    from ..record_log import RecordLog

__all__ = [
    "HISTORY_CHUNK",
    "bare_document",
    "encoded_history",
    "history_batch",
    "takes_keyword",
    "whole_document",
]

_READ_ATTEMPTS = 3
#: History entries encoded at a time by :func:`history_batch`: few enough that
#: their objects never pile up for the garbage collector, enough that the
#: calls per chunk do not count.
HISTORY_CHUNK = 512


def bare_document(
    job_state: JobState, history: list[HistoryEntry], attempts: int = _READ_ATTEMPTS
) -> dict[str, Any]:
    """The job document with only ``history`` (the log holds the rest)."""
    lock = job_state._owner_lock
    try:
        with lock if lock is not None else nullcontext():
            fields = snapshot(job_state)
    except RuntimeError:  # as in whole_document: a state added while we read
        if attempts <= 1:
            raise
        return bare_document(job_state, history, attempts - 1)
    return job_document(job_state.job_id, fields, history)


def encoded_history(
    job_id: str, entries: list[HistoryEntry], first: int
) -> list[dict[str, Any]]:
    """History entries as a job document holds them (tagged JSON)."""
    if not entries:
        return []
    rows = [history_json(entry) for entry in entries]
    # Mostly plain data: then the rows are their own encoding, and the copy
    # encode_value would make is one more pass over the whole batch.
    if encodes_as_itself(rows, frame=FRAME - 1):
        return rows
    try:
        encoded: list[dict[str, Any]] = encode_value(
            rows, "execution_history", frame=FRAME - 1
        )
    except SerializationError as exc:
        raise SerializationError(
            f"job {job_id!r} cannot be written (history from entry {first}): {exc}"
        ) from exc
    return encoded


def history_batch(
    job_id: str, history: RecordLog[HistoryEntry], first: int, count: int
) -> HistoryBatch:
    """Entries ``first`` .. ``first + count - 1`` of an unbounded history, encoded.

    The text :func:`encoded_history` of the same entries would encode to, made
    a chunk at a time straight from the log's cells: no list of every entry's
    tuple and object is built (see :class:`HistoryBatch`).

    Raises:
        SerializationError: As :func:`encoded_history`, naming the same entry.
    """
    if count <= 0:
        return HistoryBatch("[]", 0)
    cells, width = history.cells, history.width
    if not isinstance(cells, list):  # a bounded log renumbers: never logged
        raise TypeError("history_batch reads an unbounded history only")
    parts: list[bytes] = []
    for start in range(first, first + count, HISTORY_CHUNK):
        stop = min(start + HISTORY_CHUNK, first + count)
        flat = iter(cells[start * width : stop * width])
        rows = [history_json(entry) for entry in zip(*(flat,) * width, strict=True)]
        try:
            raw = dumps_value(rows, "execution_history", frame=FRAME - 1)
        except SerializationError:
            # Again over the whole batch, for the message the index of the
            # entry at fault within it, as the batch was always encoded.
            encoded_history(job_id, history.since(first)[:count], first)
            raise
        parts.append(raw[1:-1])  # a chunk is never empty: "[...]"
    return HistoryBatch(f"[{b','.join(parts).decode()}]", count)


def takes_keyword(store: CheckpointStore, keyword: str) -> bool:
    """Whether the store's ``log_step`` accepts ``keyword``."""
    try:
        parameters = inspect.signature(store.log_step).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):  # no signature to read: assume the old one
        return False
    return keyword in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def whole_document(
    job_state: JobState, attempts: int = _READ_ATTEMPTS
) -> dict[str, Any]:
    """``job_state.serialize()``, read again if a worker changed it meanwhile."""
    try:
        return job_state.serialize()
    except RuntimeError:  # "dictionary changed size during iteration"
        if attempts <= 1:
            raise
        return whole_document(job_state, attempts - 1)
