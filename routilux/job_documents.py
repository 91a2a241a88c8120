"""JobState documents: how a job is written to JSON and read back, checked.

The JSON side of :class:`~routilux.JobState`: history entries as plain objects,
field values pydantic cannot write described by their ``repr``, and strict reading
that names the path of every problem (``execution_history[3].timestamp``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from .exceptions import SerializationError
from .merge import AppendView
from .records import ErrorRecord, ExecutionRecord, RoutineState
from .serialization import json_copy

if TYPE_CHECKING:
    from .job_state import HistoryEntry, JobState

__all__ = [
    "JOB_KIND",
    "JOB_SCHEMA_VERSION",
    "adopt_record",
    "check_pending",
    "history_json",
    "invalid",
    "job_fields",
    "json_default",
    "json_fields",
    "read_history",
    "to_record",
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
    stamp = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()
    return {
        "routine_id": routine_id,
        "event_name": event_name,
        "data": data,
        "timestamp": stamp.replace("+00:00", "Z"),
    }


def json_default(value: Any) -> Any:
    """How orjson writes a value it does not know (records, views, the rest)."""
    # History data is user payload: keep what JSON can hold, describe the rest.
    if isinstance(value, BaseModel):  # a record: its fields, each described alike
        return value.model_dump(exclude_none=isinstance(value, RoutineState))
    if isinstance(value, AppendView):  # what an append slot hands: a JSON list
        return list(value)
    return repr(value)


JOB_SCHEMA_VERSION = 1
JOB_KIND = "routilux.job"
_RECORD_KEYS = frozenset({"routine_id", "event_name", "data", "timestamp"})


def json_fields(model: BaseModel) -> dict[str, Any]:
    """``model_dump(mode="json")``, describing a field pydantic cannot write."""
    try:
        return model.model_dump(mode="json")
    except ValueError:  # a payload pydantic cannot write: only that field falls back
        return {name: _json_field(model, name) for name in type(model).model_fields}


def _json_field(model: BaseModel, name: str) -> Any:
    try:
        return model.model_dump(mode="json", include={name})[name]
    except ValueError:
        return orjson.loads(orjson.dumps(getattr(model, name), default=json_default))


def job_fields(cls: type[JobState], data: Any) -> tuple[dict[str, Any], Any]:
    """The model fields of a JobState document, checked, and its raw history."""
    if not isinstance(data, dict):
        raise SerializationError(
            f"a JobState document must be an object, got {type(data).__name__}"
        )
    fields: dict[str, Any] = json_copy(data, "")
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
        if not isinstance(task.get("payload") or {}, dict):
            raise SerializationError(f"{path}.payload: expected an object")


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
