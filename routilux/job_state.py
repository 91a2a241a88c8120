"""JobState and ExecutionRecord: what happened during one execution of a flow.

JobState is a pydantic model, so assignments are validated (``job_state.status =
"paused"`` works; ``"done"`` raises). The execution history is kept as cheap tuples
while the job runs and turned into :class:`ExecutionRecord` objects when read, which
keeps the hot path free of per-emit model construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading  # noqa: TC003 - pydantic reads private attribute types
import time
import uuid
from datetime import datetime  # noqa: TC003 - pydantic reads field types at runtime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ._compat import InstanceOrClassMethod
from ._views import RUN_FIELDS_SET, new_fields, own_fields, writable_states
from .checks import wait_limit
from .exceptions import ConfigurationError, JobStateError
from .job_copies import copy_job
from .job_documents import (
    invalid,
    to_record,
)
from .job_state_documents import JobStateDocuments
from .job_status import JobStatus
from .latch import OPEN, Latch
from .record_log import RecordLog
from .records import (
    CheckedModel,
    ErrorRecord,
    ExecutionRecord,
    RoutineState,
    RoutineStatus,
    bad_value,
    now_utc,
)
from .topology import FlowTopology  # noqa: TC001 - pydantic reads field types

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "ErrorRecord",
    "ExecutionRecord",
    "JobState",
    "JobStatus",
    "RoutineState",
    "RoutineStatus",
]

#: Who cancelled a job.
CancelSource = Literal["user", "timeout", "shutdown", "stop-on-error"]

#: Raw history entry: (routine_id, event_name, data, unix timestamp).
HistoryEntry = tuple[str, str, Any, float]


class _Results(Protocol):
    """What a ledger leaves a job for :meth:`JobState.result` (its outputs)."""

    def result(self, job: JobState) -> dict[str, Any]:
        """``job``'s result (see :meth:`JobState.result`)."""
        ...


class JobState(JobStateDocuments, CheckedModel):
    """The state of one execution of a flow.

    Args:
        flow_id: The id of the flow the job belongs to.

    Attributes:
        job_id: A uuid4 string.
        flow_id: The flow's id.
        status: A :class:`JobStatus`; plain strings are accepted and validated.
        current_routine_id: The routine that started the job (or runs now).
        routine_states: routine id -> :class:`RoutineState` (reads like a dict:
            ``state["status"]``).
        pending_tasks: Activations not yet run (for pause and resume): dicts with
            ``routine_id``, ``slot`` and ``payload``.
        pause_points: ``{reason, checkpoint, timestamp}`` entries.
        errors: One :class:`ErrorRecord` per error raised in the job: routine id,
            slot, exception type, message, traceback, attempt, time.
        cancel_reason: Why the job was cancelled, if it was.
        cancel_source: Who cancelled it: user, timeout, shutdown or stop-on-error.
        created_at: When the job was created.
        updated_at: When the status last changed.
        topology: The shape of the flow the job last started or resumed on (a
            :class:`~routilux.topology.FlowTopology`), which a resume from a
            document checks; None for a job no flow ran, or stored before 1.0.

            .. versionadded:: 1.0

    On a job a flow runs (:attr:`is_owned`) every field is read-only: assigning
    one, or changing ``routine_states``, ``pending_tasks``, ``pause_points`` or
    ``errors`` in place, raises :class:`~routilux.JobStateError`. Copies of
    them (``list(job.errors)``, ``copy.deepcopy``) are plain and yours, and so
    is a copy of the job itself (``job.model_copy()``, ``copy.copy(job)``,
    ``copy.deepcopy(job)``): unowned, editable, a snapshot of the job when copied.
    """

    model_config = ConfigDict(
        validate_assignment=True,
        arbitrary_types_allowed=False,
        ignored_types=(InstanceOrClassMethod,),  # deserialize, 0.9's either way
    )

    job_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    flow_id: str = ""
    status: JobStatus = JobStatus.PENDING
    current_routine_id: str | None = None
    routine_states: dict[str, RoutineState] = Field(default_factory=dict)
    pending_tasks: list[dict[str, Any]] = Field(default_factory=list)
    pause_points: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[ErrorRecord] = Field(default_factory=list)
    cancel_reason: str | None = None
    cancel_source: CancelSource | None = None
    created_at: datetime = Field(default_factory=now_utc)
    updated_at: datetime = Field(default_factory=now_utc)
    topology: FlowTopology | None = None

    _history: RecordLog[HistoryEntry] = PrivateAttr(
        default_factory=lambda: RecordLog(4)
    )
    _done: Latch = PrivateAttr(default_factory=Latch)
    # Set while a runtime ledger owns the job: its lock and its result reader.
    _owner_lock: threading.Lock | None = PrivateAttr(default=None)
    _outputs: _Results | None = PrivateAttr(default=None)
    # Made by the first wait_async (most jobs have none): see _mark_done.
    _on_done: list[Callable[[], None]] = PrivateAttr()

    def __init__(self, flow_id: str = "", **fields: Any) -> None:
        try:
            super().__init__(**{"flow_id": flow_id, **fields})
        except ValidationError as exc:  # one hierarchy: a RoutiluxError, a ValueError
            raise bad_value(exc, "JobState") from exc

    def __setattr__(self, name: str, value: Any) -> None:
        private = self.__pydantic_private__
        owned = private is not None and private.get("_owner_lock") is not None
        if owned and name in type(self).model_fields:
            raise JobStateError(
                f"job {self.job_id!r} is run by a flow: its {name!r} is read-only "
                "(use flow.pause/resume/cancel to change what the job does)"
            )
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigurationError(
                f"job {self.job_id!r}: {invalid(exc, '')}"
            ) from exc

    # -- ownership (the runtime's ledger) ------------------------------------------

    def _take_ownership(
        self,
        lock: threading.Lock,
        outputs: _Results,
        history_limit: int | None,
    ) -> RecordLog[HistoryEntry]:
        """Called by the runtime's ledger: from now on only it writes this job.

        The containers become read-only views (the ledger writes them through
        the ``list``/``dict`` methods). Returns the history log it appends to.
        """
        private = self.__pydantic_private__
        assert private is not None
        own_fields(self.__dict__)
        private["_owner_lock"] = lock
        private["_outputs"] = outputs
        history: RecordLog[HistoryEntry] = private["_history"]
        if history_limit is not None:
            history = history.with_limit(history_limit)
            private["_history"] = history
        return history

    def _keep_outputs(self, outputs: _Results) -> None:
        """Called by the owning ledger (its lock held): the job's own outputs."""
        private = self.__pydantic_private__
        assert private is not None
        private["_outputs"] = outputs

    @classmethod
    def _for_run(cls, flow_id: str, job_id: str | None = None) -> JobState:
        """A new pending JobState for the runtime, built without validation.

        Equal to ``JobState(flow_id)``, at a fraction of the cost of a model
        validation (a flow may run many small jobs a second). Its containers are
        made as the read-only views the ledger that takes it keeps.
        """
        state = _new_object(cls)
        now = now_utc()
        values = _RUN_VALUES.copy()  # every field, in order, its shared empties
        values["job_id"] = new_job_id() if job_id is None else job_id
        values["flow_id"] = flow_id
        values["created_at"] = values["updated_at"] = now
        _set_object_attribute(state, "__dict__", values)
        _set_fields_set(state, RUN_FIELDS_SET)
        _set_extra(state, None)
        _set_private(
            state,
            {
                "_history": RecordLog(4),
                "_done": Latch(),
                "_owner_lock": None,
                "_outputs": None,
            },
        )
        return state

    def _mark_done(self) -> None:
        """Wake every waiter (the job completed, failed, was cancelled or paused)."""
        private = self.__pydantic_private__
        assert private is not None
        private["_done"].set()
        if self.status.is_final:
            # Final: it never runs again, so the shared open latch serves (waiters
            # already blocked on the job's own latch were woken by the set above).
            private["_done"] = OPEN
        # pop: a wait_async registering now makes a new list and sees the latch set
        callbacks = private.pop("_on_done", None)
        if callbacks:
            for callback in callbacks:
                _wake(callback)

    def _reopen(self) -> None:
        """Close the done latch again: the job runs once more (a resume)."""
        private = self.__pydantic_private__
        assert private is not None
        if private["_done"] is OPEN:  # it had a final status once: a latch of its own
            private["_done"] = Latch()
        else:
            private["_done"].clear()

    def __copy__(self) -> JobState:
        """An unowned copy, with containers of its own (:mod:`routilux.job_copies`)."""
        return copy_job(self, None)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> JobState:
        """An unowned deep copy (see :mod:`routilux.job_copies`)."""
        return copy_job(self, {} if memo is None else memo)

    @property
    def is_owned(self) -> bool:
        """True when a flow runs this job (its fields are then read-only)."""
        return self._owner_lock is not None

    # -- history -----------------------------------------------------------------

    @property
    def execution_history(self) -> list[ExecutionRecord]:
        """The history as :class:`ExecutionRecord` objects, in time order (a copy)."""
        return [to_record(entry) for entry in self._history.snapshot()]

    def record_execution(
        self, routine_id: str, event_name: str, data: Any = None
    ) -> None:
        """Append a history record. Thread-safe."""
        self._history.append((routine_id, event_name, data, _timestamp()))

    def get_execution_history(
        self, routine_id: str | None = None
    ) -> list[ExecutionRecord]:
        """History records, optionally only those of ``routine_id``, in time order."""
        entries = self._history.snapshot()
        if routine_id is not None:
            entries = [e for e in entries if e[0] == routine_id]
        entries.sort(key=lambda e: e[3])
        return [to_record(e) for e in entries]

    # -- routine states ----------------------------------------------------------

    def update_routine_state(
        self, routine_id: str, state: Mapping[str, Any] | RoutineState
    ) -> None:
        """Store a copy of ``state`` (a dict with at least ``status``).

        Allowed on a job a flow runs too: the write is made under its lock.
        """
        record = RoutineState.model_validate(dict(state))
        lock = self._owner_lock
        if lock is None:
            self.routine_states[routine_id] = record
        else:
            with lock:
                dict.__setitem__(writable_states(self.__dict__), routine_id, record)

    def get_routine_state(self, routine_id: str) -> RoutineState | None:
        """The stored state of ``routine_id``, or None."""
        return self.routine_states.get(routine_id)

    # -- waiting -----------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job reaches a final status or pauses.

        Returns:
            True when it did, False when ``timeout`` seconds passed first.
        """
        return self._done.wait(wait_limit(timeout))

    @property
    def is_done(self) -> bool:
        """True once the job has stopped running (final status or paused)."""
        private = self.__pydantic_private__  # not self._done: pydantic __getattr__
        return bool((private["_done"] if private else self._done).is_set())

    async def wait_async(self, timeout: float | None = None) -> bool:
        """Like :meth:`wait`, for code running on an event loop.

        Returns:
            True when the job stopped running, False when ``timeout`` passed first.
        """
        if self._done.is_set():
            return True
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_resolve, woken)

        private = self.__pydantic_private__
        assert private is not None
        waiting: list[Callable[[], None]] = private.setdefault("_on_done", [])
        waiting.append(wake)
        if self._done.is_set():  # it finished while we registered
            return True
        try:
            await asyncio.wait_for(asyncio.shield(woken), timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ValueError):  # already taken by _mark_done
                waiting.remove(wake)
            return self._done.is_set()
        return True

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the job, then return what it produced.

        The result maps the id of every routine with no outgoing connection to the
        last non-None value its handler returned in this job or, when it returned
        none, the last payload it emitted.

        Raises:
            TimeoutError: When the job is still running after ``timeout`` seconds.
            JobFailedError: When the job failed (its first error is ``__cause__``).
            JobCancelledError: When the job was cancelled.
            JobStateError: When the job is paused, or no flow ran this JobState.
        """
        if self._owner_lock is None and not (
            self.status.is_final or self.status is JobStatus.PAUSED
        ):
            raise JobStateError(
                f"job {self.job_id!r} is {self.status.value} and no flow runs it here: "
                "it has no result to wait for"
            )
        settled = self._owner_lock is None
        if not settled and not self._done.wait(wait_limit(timeout)):
            raise TimeoutError(
                f"job {self.job_id!r} still {self.status.value} after {timeout}s"
            )
        if self.status is JobStatus.PAUSED:
            raise JobStateError(f"job {self.job_id!r} is paused: it has no result yet")
        outputs = self._outputs
        if outputs is None:
            raise JobStateError(
                f"job {self.job_id!r} was not run by a flow in this process: its "
                "result was not kept"
            )
        return outputs.result(self)

    def __repr__(self) -> str:
        return (
            f"JobState(job_id={self.job_id!r}, flow_id={self.flow_id!r}, "
            f"status={self.status.value!r})"
        )


def new_job_id() -> str:
    """A random (version 4) UUID string for a new job.

    Drawn from :mod:`random` (seeded from the OS, reseeded after ``fork``) rather
    than ``uuid4()``: ``os.urandom`` releases the GIL, and a thread starting many
    jobs then waits for it behind the workers on every job. Text as ``str(UUID)``.
    """
    text = "%032x" % (random.getrandbits(128) & _UUID_KEEP | _UUID_SET)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


#: The bits of a random 128-bit number a version 4 UUID keeps, and those it sets
#: (variant 10, version 4).
_UUID_KEEP = ~(0xC000 << 48) & ~(0xF000 << 64)
_UUID_SET = 0x8000 << 48 | 4 << 76


#: Field values every new job starts with (the runtime's fast constructor).
_RUN_VALUES: dict[str, Any] = dict.fromkeys(JobState.model_fields)
_RUN_VALUES["status"] = JobStatus.PENDING
new_fields(_RUN_VALUES)  # the shared empty containers

# What _for_run writes a new JobState with: the slots of a pydantic model, set
# through their descriptors (no generic setattr per job).
_new_object = object.__new__
_set_object_attribute = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _wake(callback: Callable[[], None]) -> None:
    # A waiter's loop may be closed by now (it gave up): that must not stop the
    # job from ending, nor keep the other waiters asleep.
    with contextlib.suppress(RuntimeError):
        callback()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _timestamp() -> float:
    return time.time()
