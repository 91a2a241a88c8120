"""The records a JobState keeps: history entries, routine states, errors.

All three are pydantic models. Routine states and error records also read like the
dicts routilux 0.9 kept (``state["status"]``, ``error.get("message")``), so code
written for 0.9 keeps working while new code can use attributes.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from ._compat import ReadsLikeADict
from .exceptions import ConfigurationError, JobStateError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CheckedModel",
    "ErrorRecord",
    "ExecutionRecord",
    "RoutineState",
    "RoutineStatus",
    "bad_value",
]


def now_utc() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(timezone.utc)


class RoutineStatus(str, Enum):
    """The status recorded for a routine within a job."""

    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR_CONTINUED = "error_continued"

    def __str__(self) -> str:
        return self.value


class RoutineState(ReadsLikeADict):
    """What a job recorded for one routine.

    Attributes:
        status: ``completed``, ``failed``, ``skipped`` or ``error_continued``
            (:class:`RoutineStatus`), or a status of the user's own.
        error: The error message, when the routine failed.
        error_type: The exception's class name, when it failed.
        retry_count: Retries made, under the RETRY strategy.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    status: str | None = None
    error: str | None = None
    error_type: str | None = None
    retry_count: int | None = None

    @model_serializer(mode="wrap")
    def _leave_out_unset(self, write: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Documents hold only what was recorded, as 0.9's dicts did.
        return {key: value for key, value in write(self).items() if value is not None}


class _SharedState(RoutineState):
    """A read-only ``completed`` state: the one every job's ledger records.

    A routine whose handler returned needs only its status recorded, and a
    program may keep thousands of finished jobs: one shared record, rather than
    a model and its fields set per routine per job, leaves the garbage collector
    that much less to walk. Being shared, it refuses changes; copies of it are
    plain, editable :class:`RoutineState` objects.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        _refuse(name)

    def __delattr__(self, name: str) -> None:
        _refuse(name)

    def __copy__(self) -> RoutineState:  # type: ignore[override]  # a plain one
        return RoutineState(status=self.status)

    def __eq__(self, other: object) -> bool:
        # Equal to a plain RoutineState of the same values, either way round (as a
        # subclass, its __eq__ is tried first); pydantic's compares classes.
        if type(other) in (RoutineState, _SharedState):
            assert isinstance(other, RoutineState)
            return self.__dict__ == other.__dict__ and (
                self.__pydantic_extra__ or {}
            ) == (other.__pydantic_extra__ or {})
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # compared by value, as its base

    def __deepcopy__(  # type: ignore[override]  # a plain one
        self, memo: dict[int, Any] | None = None
    ) -> RoutineState:
        return self.__copy__()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_plain_state, (self.status,))


def _plain_state(status: str | None) -> RoutineState:
    """An editable RoutineState of ``status`` (what a shared state unpickles as)."""
    return RoutineState(status=status)


def _refuse(name: str) -> None:
    raise JobStateError(
        f"the routine state of a job a flow ran is read-only: cannot set {name!r} "
        "(job.update_routine_state(routine_id, {...}) replaces it; copy.copy(state) "
        "is a RoutineState you may change)"
    )


def _completed_state() -> RoutineState:
    state = _SharedState.__new__(_SharedState)
    values = {"status": "completed", "error": None, "error_type": None}
    values["retry_count"] = None
    object.__setattr__(state, "__dict__", values)
    object.__setattr__(state, "__pydantic_fields_set__", {"status"})
    object.__setattr__(state, "__pydantic_extra__", {})
    object.__setattr__(state, "__pydantic_private__", None)
    return state


#: The state the runtime records for a routine whose handler returned.
COMPLETED_STATE = _completed_state()


def unshared(states: dict[str, RoutineState]) -> dict[str, RoutineState]:
    """``states`` with the shared read-only ones replaced by editable copies."""
    return {
        rid: state.__copy__() if type(state) is _SharedState else state
        for rid, state in states.items()
    }


class ErrorRecord(ReadsLikeADict):
    """One error raised in a job (every one is kept: nothing vanishes).

    Attributes:
        routine_id: The routine whose handler raised, by its id in the flow.
        slot: The slot whose handler raised.
        error_type: The exception's class name.
        message: ``str(exception)``.
        traceback: The formatted traceback.
        attempt: Which call of the handler raised (1 unless retried).
        time: When, as a Unix timestamp.
    """

    model_config = ConfigDict(extra="allow")

    routine_id: str = ""
    slot: str = ""
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    attempt: int = 1
    time: float = 0.0


_validating: ContextVar[bool] = ContextVar("routilux_model_validate", default=False)


class CheckedModel(BaseModel):
    """A model whose constructor raises ConfigurationError for bad values.

    A RoutiluxError (and a ValueError, as pydantic's ValidationError is) naming
    the field. Inside :meth:`model_validate`, which runs the constructor too, the
    ValidationError is left as it is, so a document reader names its own path.
    """

    @classmethod
    def model_validate(cls, *args: Any, **kwargs: Any) -> Self:
        """As pydantic's; a bad value raises ValidationError."""
        token = _validating.set(True)
        try:
            return super().model_validate(*args, **kwargs)
        finally:
            _validating.reset(token)


def bad_value(exc: ValidationError, what: str) -> Exception:
    """What a CheckedModel's constructor raises for ``exc``: see the class."""
    if _validating.get():
        return exc
    first = exc.errors()[0]
    where = ".".join(map(str, first["loc"])) or "arguments"
    return ConfigurationError(f"{what} {where}: {first['msg']}")


class ExecutionRecord(CheckedModel):
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
    timestamp: datetime = Field(default_factory=now_utc)

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
        try:
            super().__init__(**fields)
        except ValidationError as exc:  # one hierarchy: a RoutiluxError, a ValueError
            raise bad_value(exc, "ExecutionRecord") from exc

    def __setattr__(self, name: str, value: Any) -> None:
        # A record is a snapshot of the job's history: changing it would change
        # nothing, so it is refused (a JobState builds new ones on every read).
        raise ConfigurationError(
            f"ExecutionRecord is read-only: cannot set {name!r} (build a new one, "
            "or use job.record_execution() to add to a job's history)"
        )

    def serialize(self) -> dict[str, Any]:
        """A JSON-ready dict with an ISO timestamp."""
        return self.model_dump(mode="json")
