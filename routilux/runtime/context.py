"""The execution context of the running handler, held in a context variable."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from ..flow import Flow
    from ..job_state import JobState
    from .activation import Activation
    from .ledger import JobLedger

__all__ = ["ExecutionContext", "Frame", "current_frame", "enter", "leave"]


class ExecutionContext(NamedTuple):
    """Where a handler runs: its flow, its job and its routine's id in the flow."""

    flow: Flow
    job_state: JobState
    routine_id: str


class Frame(Protocol):
    """What the runtime knows about the running activation.

    The activation itself is the frame (no object is made per call).
    """

    routine: Any
    routine_id: str
    job: JobLedger  # the job's ledger

    @property
    def activation(self) -> Activation:
        """The running activation."""

    def as_context(self) -> ExecutionContext:
        """The public view of this frame."""


_current: ContextVar[Frame | None] = ContextVar("routilux_frame", default=None)

current_frame = _current.get
enter = _current.set
leave = _current.reset
