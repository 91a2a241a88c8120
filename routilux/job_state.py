"""JobState and ExecutionRecord: what happened during one execution of a flow.

JobState is a pydantic model, so assignments are validated (``job_state.status =
"paused"`` works; ``"done"`` raises). The execution history is kept as cheap tuples
while the job runs and turned into :class:`ExecutionRecord` objects when read, which
keeps the hot path free of per-emit model construction.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from .exceptions import SerializationError

__all__ = ["ExecutionRecord", "JobState", "JobStatus", "RoutineStatus"]

#: Who cancelled a job.
CancelSource = Literal["user", "timeout", "shutdown", "stop-on-error"]

#: Raw history entry: (routine_id, event_name, data, unix timestamp).
HistoryEntry = tuple[str, str, Any, float]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class JobStatus(str, Enum):
    """The status of a job."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in _FINAL


_FINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class RoutineStatus(str, Enum):
    """The status recorded for a routine within a job."""

    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR_CONTINUED = "error_continued"

    def __str__(self) -> str:
        return self.value


class ExecutionRecord(BaseModel):
    """One entry of a job's history: a routine emitted an event (or started, ended).

    Args:
        routine_id: The routine's id in the flow.
        event_name: The event, or ``start``, ``completed``, ``error``...
        data: What was emitted.
        timestamp: When; defaults to now (UTC).
    """

    model_config = ConfigDict(frozen=True)

    routine_id: str = ""
    event_name: str = ""
    data: Any = None
    timestamp: datetime = Field(default_factory=_now)

    def __init__(
        self,
        routine_id: str = "",
        event_name: str = "",
        data: Any = None,
        timestamp: datetime | None = None,
        **extra: Any,
    ) -> None:
        fields: dict[str, Any] = {
            "routine_id": routine_id,
            "event_name": event_name,
            "data": data,
            **extra,
        }
        if timestamp is not None:
            fields["timestamp"] = timestamp
        super().__init__(**fields)

    def serialize(self) -> dict[str, Any]:
        """A JSON-ready dict with an ISO timestamp."""
        return self.model_dump(mode="json")


class JobState(BaseModel):
    """The state of one execution of a flow.

    Args:
        flow_id: The id of the flow the job belongs to.

    Attributes:
        job_id: A uuid4 string.
        flow_id: The flow's id.
        status: A :class:`JobStatus`; plain strings are accepted and validated.
        current_routine_id: The routine that started the job (or runs now).
        routine_states: routine id -> dict with at least ``status``.
        pending_tasks: Activations not yet run (for pause and resume): dicts with
            ``routine_id``, ``slot`` and ``payload``.
        pause_points: ``{reason, checkpoint, timestamp}`` entries.
        errors: One dict per error: routine id, slot, exception type, message,
            traceback, attempt, time.
        cancel_reason: Why the job was cancelled, if it was.
        cancel_source: Who cancelled it: user, timeout, shutdown or stop-on-error.
        created_at: When the job was created.
        updated_at: When the status last changed.
    """

    model_config = ConfigDict(validate_assignment=True, arbitrary_types_allowed=False)

    job_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    flow_id: str = ""
    status: JobStatus = JobStatus.PENDING
    current_routine_id: str | None = None
    routine_states: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pending_tasks: list[dict[str, Any]] = Field(default_factory=list)
    pause_points: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list)
    cancel_reason: str | None = None
    cancel_source: CancelSource | None = None
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)

    _history: list[HistoryEntry] = PrivateAttr(default_factory=list)
    _done: threading.Event = PrivateAttr(default_factory=threading.Event)

    def __init__(self, flow_id: str = "", **fields: Any) -> None:
        super().__init__(flow_id=flow_id, **fields)

    # -- history -----------------------------------------------------------------

    @property
    def execution_history(self) -> list[ExecutionRecord]:
        """The history as :class:`ExecutionRecord` objects, in time order (a copy)."""
        return [_to_record(entry) for entry in list(self._history)]

    def record_execution(
        self, routine_id: str, event_name: str, data: Any = None
    ) -> None:
        """Append a history record. Thread-safe."""
        self._history.append((routine_id, event_name, data, _timestamp()))

    def get_execution_history(
        self, routine_id: str | None = None
    ) -> list[ExecutionRecord]:
        """History records, optionally only those of ``routine_id``, in time order."""
        entries = list(self._history)
        if routine_id is not None:
            entries = [e for e in entries if e[0] == routine_id]
        entries.sort(key=lambda e: e[3])
        return [_to_record(e) for e in entries]

    # -- routine states ----------------------------------------------------------

    def update_routine_state(self, routine_id: str, state: dict[str, Any]) -> None:
        """Store a copy of ``state`` for ``routine_id``."""
        self.routine_states[routine_id] = dict(state)

    def get_routine_state(self, routine_id: str) -> dict[str, Any] | None:
        """The stored state of ``routine_id``, or None."""
        return self.routine_states.get(routine_id)

    # -- waiting -----------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job reaches a final status or pauses.

        Returns:
            True when it did, False when ``timeout`` seconds passed first.
        """
        return self._done.wait(timeout)

    @property
    def is_done(self) -> bool:
        """True once the job has stopped running (final status or paused)."""
        return self._done.is_set()

    # -- serialization -----------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO datetimes) including the execution history."""
        data = self.model_dump(mode="json")
        data["execution_history"] = [r.serialize() for r in self.execution_history]
        return orjson.loads(orjson.dumps(data, default=_json_default))  # type: ignore[no-any-return]

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> JobState:
        """Rebuild a JobState from :meth:`serialize` output.

        Raises:
            SerializationError: When ``data`` is not a JobState document.
        """
        if not isinstance(data, dict):
            raise SerializationError(
                f"a JobState document must be an object, got {type(data).__name__}"
            )
        fields = dict(data)
        history = fields.pop("execution_history", [])
        try:
            state = cls.model_validate(fields)
            records = [ExecutionRecord.model_validate(r) for r in history]
        except ValidationError as exc:
            raise SerializationError(f"not a valid JobState document: {exc}") from exc
        state._history = [
            (r.routine_id, r.event_name, r.data, r.timestamp.timestamp())
            for r in records
        ]
        if state.status.is_final:
            state._done.set()
        return state

    def save(self, path: str | Path) -> None:
        """Write the JobState as JSON to ``path``, creating parent directories."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(orjson.dumps(self.serialize(), option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, path: str | Path) -> JobState:
        """Read a JobState written by :meth:`save`.

        Raises:
            FileNotFoundError: When ``path`` does not exist.
            SerializationError: When the file is not a JobState document.
        """
        raw = Path(path).read_bytes()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"{path}: not JSON: {exc}") from exc
        try:
            return cls.deserialize(data)
        except SerializationError as exc:
            raise SerializationError(f"{path}: {exc}") from exc

    def __repr__(self) -> str:
        return (
            f"JobState(job_id={self.job_id!r}, flow_id={self.flow_id!r}, "
            f"status={self.status.value!r})"
        )


def _timestamp() -> float:
    return time.time()


def _to_record(entry: HistoryEntry) -> ExecutionRecord:
    routine_id, event_name, data, ts = entry
    return ExecutionRecord(
        routine_id, event_name, data, datetime.fromtimestamp(ts, tz=timezone.utc)
    )


def _json_default(value: Any) -> Any:
    # History data is user payload: keep what JSON can hold, describe the rest.
    return repr(value)
