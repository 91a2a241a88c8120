"""Copies of a JobState: independent, unowned snapshots.

``copy.copy(job)``, ``job.model_copy()``, ``copy.deepcopy(job)`` and
``job.model_copy(deep=True)`` give a JobState of one's own: its lists and dicts
are new plain containers (a shallow copy shares only the records and payloads in
them), its history is a snapshot in a log of its own, and no flow owns it, so it
is editable like a JobState built by hand. A copy of a job a flow runs is taken
under that job's lock, so it is consistent; later progress of the job does not
reach it, and waiting on a copy of a running job would never end (no flow runs
the copy), so ``copy.wait()`` returns only if the job had stopped when copied.
"""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING, Any

from .latch import Latch
from .record_log import RecordLog
from .records import unshared

if TYPE_CHECKING:
    from .job_state import JobState

__all__ = ["copy_job"]

_CONTAINERS = ("routine_states", "pending_tasks", "pause_points", "errors")


def copy_job(job: JobState, memo: dict[int, Any] | None) -> JobState:
    """An unowned copy of ``job``: shallow when ``memo`` is None, else deep."""
    private = job.__pydantic_private__
    assert private is not None
    lock = private.get("_owner_lock")
    with lock if lock is not None else contextlib.nullcontext():
        values = dict(job.__dict__)
        for name in _CONTAINERS:  # plain, one level: the views are the owner's
            values[name] = copy.copy(values[name])
        # The runtime's shared "completed" record is read-only: a copy is editable.
        values["routine_states"] = unshared(values["routine_states"])
        log: RecordLog[Any] = private["_history"]
        history = log.snapshot()
        fields_set = set(job.__pydantic_fields_set__)
        done = private["_done"].is_set()
    if memo is not None:  # outside the lock: payloads may be large
        values = copy.deepcopy(values, memo)
        history = copy.deepcopy(history, memo)
    latch = Latch()
    if done:
        latch.set()
    twin = type(job).__new__(type(job))
    object.__setattr__(twin, "__dict__", values)
    object.__setattr__(twin, "__pydantic_fields_set__", fields_set)
    object.__setattr__(twin, "__pydantic_extra__", None)
    object.__setattr__(
        twin,
        "__pydantic_private__",
        {
            "_history": RecordLog(log.width, log.limit, history),
            "_done": latch,
            "_owner_lock": None,
            # The result reader of a finished job answers the same for its copy.
            "_outputs": private.get("_outputs"),
        },
    )
    if memo is not None:
        memo[id(job)] = twin
    return twin
