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
from ..serialization import encode_value, encodes_as_itself

if TYPE_CHECKING:
    from ..job_state import HistoryEntry, JobState
    from ..persistence.base import CheckpointStore

__all__ = ["bare_document", "encoded_history", "takes_keyword", "whole_document"]

_READ_ATTEMPTS = 3


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
