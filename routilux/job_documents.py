"""JobState documents: how a job is written to JSON and read back, checked.

The JSON side of :class:`~routilux.JobState`: history entries as plain objects,
user values (payloads, pause points, routine states, errors, history data) in the
tagged encoding of :mod:`routilux.serialization`, so they read back as the same
types, and strict reading that names the path of every problem
(``execution_history[3].timestamp``).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from .exceptions import SerializationError
from .records import ErrorRecord, ExecutionRecord, RoutineState
from .serialization import ClassPolicy, decode_value, encode_value

if TYPE_CHECKING:
    from .job_state import HistoryEntry, JobState

__all__ = [
    "FRAME",
    "JOB_KIND",
    "JOB_SCHEMA_VERSION",
    "adopt_record",
    "check_pending",
    "history_json",
    "invalid",
    "job_document",
    "job_fields",
    "read_history",
    "record_values",
    "snapshot",
    "to_record",
    "utc_stamp",
]

RecordT = TypeVar("RecordT", RoutineState, ErrorRecord)


def to_record(entry: HistoryEntry) -> ExecutionRecord:
    """A raw history entry as an :class:`ExecutionRecord`."""
    routine_id, event_name, data, ts = entry
    return ExecutionRecord(
        routine_id, event_name, data, datetime.fromtimestamp(ts, tz=timezone.utc)
    )


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    """One history entry as the JSON object a document holds."""
    # Written directly, not through ExecutionRecord: a checkpointed job writes its
    # history every second, and building a model per entry dominated that cost.
    routine_id, event_name, data, ts = entry
    return {
        "routine_id": routine_id,
        "event_name": event_name,
        "data": data,
        "timestamp": utc_stamp(ts),
    }


#: The last whole second utc_stamp formatted, and its text (one tuple: threads
#: replace it whole).
_last_second: tuple[float, str] = (math.nan, "")


def utc_stamp(ts: float) -> str:
    """``ts`` (seconds since the epoch) as ISO-8601 UTC text ending in ``Z``.

    The text ``datetime.fromtimestamp(ts, timezone.utc).isoformat()`` gives,
    with ``Z`` for ``+00:00``. History entries come many a second, so the
    date and time of the second is formatted once and only the microseconds
    per entry (formatting a datetime per entry was most of a log's cost).
    """
    global _last_second
    # Split as datetime.fromtimestamp does: the fraction rounded half to even
    # to microseconds, carried into the second when it rounds to a whole one.
    fraction, whole = math.modf(ts)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1.0, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1.0, micro + 1_000_000
    second, text = _last_second
    if second != whole:
        text = datetime.fromtimestamp(whole, tz=timezone.utc).isoformat()[:-6]
        _last_second = (whole, text)
    return f"{text}.{micro:06d}Z" if micro else f"{text}Z"


JOB_SCHEMA_VERSION = 1
JOB_KIND = "routilux.job"
_RECORD_KEYS = frozenset({"routine_id", "event_name", "data", "timestamp"})


#: Fields that hold user values: written in the tagged encoding.
_VALUE_FIELDS = frozenset({"routine_states", "pending_tasks", "pause_points", "errors"})
#: Levels of a JobState document around the values it holds (for MAX_DEPTH):
#: ``pending_tasks[0].payload``, ``routine_states.<id>.<key>`` and alike.
FRAME = 3


def snapshot(state: JobState) -> dict[str, Any]:
    """The fields of ``state`` as a new dict, ready for :func:`job_document`.

    Typed fields as JSON (ISO datetimes, status text); the fields holding user
    values as shallow copies of their Python values, so that encoding them may
    happen outside the job's lock.
    """
    scalars = state.model_dump(mode="json", exclude=set(_VALUE_FIELDS))
    values = {
        "routine_states": {
            rid: record_values(record, drop_none=True)
            for rid, record in state.routine_states.items()
        },
        "pending_tasks": [dict(task) for task in state.pending_tasks],
        "pause_points": [dict(point) for point in state.pause_points],
        "errors": [record_values(error) for error in state.errors],
    }
    return {
        name: values[name] if name in _VALUE_FIELDS else scalars[name]
        for name in type(state).model_fields
    }


def record_values(record: BaseModel, *, drop_none: bool = False) -> dict[str, Any]:
    """A record's fields and extra keys as their Python values."""
    values = {name: getattr(record, name) for name in type(record).model_fields}
    values.update(record.__pydantic_extra__ or {})
    if drop_none:  # as RoutineState writes itself: only what was recorded
        return {key: value for key, value in values.items() if value is not None}
    return values


def job_document(
    job_id: str, fields: dict[str, Any], history: list[HistoryEntry]
) -> dict[str, Any]:
    """The JobState document: ``fields`` and ``history`` in the tagged encoding.

    Raises:
        SerializationError: Naming the job and the path of a value no encoding
            holds (``pending_tasks[0].payload.items[3].price``).
    """
    fields["execution_history"] = [history_json(entry) for entry in history]
    try:
        encoded = encode_value(fields, "", frame=FRAME)
    except SerializationError as exc:
        raise SerializationError(f"job {job_id!r} cannot be written: {exc}") from exc
    return {"schema_version": JOB_SCHEMA_VERSION, "kind": JOB_KIND, **encoded}


def job_fields(
    cls: type[JobState], data: Any, classes: ClassPolicy | None = None
) -> tuple[dict[str, Any], Any]:
    """The model fields of a JobState document, values decoded, and its history."""
    if not isinstance(data, dict):
        raise SerializationError(
            f"a JobState document must be an object, got {type(data).__name__}"
        )
    fields: dict[str, Any] = decode_value(data, "", classes, frame=FRAME)
    version = fields.pop("schema_version", JOB_SCHEMA_VERSION)
    if type(version) is not int or version != JOB_SCHEMA_VERSION:
        raise SerializationError(
            f"schema_version: {_brief(version)} is not supported (this routilux reads "
            f"JobState documents of version {JOB_SCHEMA_VERSION})"
        )
    kind = fields.pop("kind", JOB_KIND)
    if kind != JOB_KIND:
        raise SerializationError(f"kind: expected {JOB_KIND!r}, got {_brief(kind)}")
    history = fields.pop("execution_history", [])
    unknown = sorted(set(fields) - set(cls.model_fields))
    if unknown:
        name = unknown[0] or '""'
        raise SerializationError(f"{name}: not a JobState field")
    return fields, history


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def invalid(exc: ValidationError, path: str) -> str:
    """A message naming the path of a validation error's first problem."""
    first = exc.errors()[0]
    where = ".".join(
        [path, *map(str, first["loc"])] if path else map(str, first["loc"])
    )
    more = exc.error_count() - 1
    tail = f" (and {more} more)" if more else ""
    return f"{where or 'document'}: {first['msg']}{tail}"


def check_pending(tasks: list[dict[str, Any]]) -> None:
    """Check ``pending_tasks`` entries; raise SerializationError naming one."""
    for index, task in enumerate(tasks):
        path = f"pending_tasks[{index}]"
        for key in ("routine_id", "slot"):
            if not isinstance(task.get(key), str):
                raise SerializationError(f"{path}.{key}: expected a string")
        payload = task.get("payload", {})
        if not isinstance(payload, dict):
            raise SerializationError(
                f"{path}.payload: expected an object, got {type(payload).__name__}"
            )


def read_history(history: Any) -> list[HistoryEntry]:
    """Raw history entries from a document's ``execution_history``."""
    if not isinstance(history, list):
        raise SerializationError("execution_history: expected a list")
    return [
        _history_entry(item, f"execution_history[{i}]")
        for i, item in enumerate(history)
    ]


def _history_entry(item: Any, path: str) -> HistoryEntry:
    if not isinstance(item, dict):
        raise SerializationError(f"{path}: expected an object")
    unknown = sorted(set(item) - _RECORD_KEYS)
    if unknown:
        name = unknown[0] or '""'
        raise SerializationError(f"{path}.{name}: not a history field")
    try:
        record = ExecutionRecord.model_validate(item)
    except ValidationError as exc:
        raise SerializationError(invalid(exc, path)) from exc
    moment = record.timestamp
    if moment.tzinfo is None:  # written without a zone: read as UTC
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        stamp = moment.timestamp()
        datetime.fromtimestamp(stamp, tz=timezone.utc)  # history must read back
    except (OverflowError, OSError, ValueError) as exc:
        raise SerializationError(f"{path}.timestamp: out of range") from exc
    return (record.routine_id, record.event_name, record.data, stamp)


def adopt_record(model: type[RecordT], value: Any, where: str) -> RecordT:
    """A plain dict (0.9 style) as the record ``model``, checked."""
    try:
        return model.model_validate(dict(value))
    except (ValidationError, TypeError, ValueError) as exc:
        raise SerializationError(f"{where}: not a {model.__name__}: {exc}") from exc
