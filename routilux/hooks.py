"""What observers of a job see: activations, their outcomes, and the hook base class.

The runtime calls a handler and turns the call into an :class:`Outcome`; observers
(the tracker, checkpointing, flow statistics, logging, and the user's
:class:`FlowHooks`) are told about every change the job's ledger makes:

* ``on_job_start(job)`` before the first activation of a job (or of a resume);
* ``on_activation_start(job, activation)`` before a handler is called;
* ``on_activation_end(job, activation, outcome)`` after it returned, or
  ``on_error(job, activation, error)`` when it failed (its error policy then
  decides whether the job goes on);
* ``on_job_end(job)`` once the job completed, failed, was cancelled or paused.

Hooks run in the thread that made the change (a worker, the event-loop thread, the
watchdog; a job whose steps a store's writer thread wrote ends on a thread of its
own) and never under a lock of the runtime. A hook that raises is recorded in
``job.errors`` (routine id ``"<hooks>"``) and never changes how the job runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .job_state import JobState

__all__ = ["ActivationInfo", "FlowHooks", "Outcome"]


class ActivationInfo(NamedTuple):
    """One handler call of a job, as observers see it.

    Attributes:
        activation_id: Unique among the job's activations that are running.
        job_id: The job.
        routine_id: The routine's id in the flow.
        slot: The slot whose handler is called.
        attempt: 1 for the first call, then one more per retry.
        payload: The merged payload the handler receives (do not modify it).
    """

    activation_id: int
    job_id: str
    routine_id: str
    slot: str
    attempt: int
    payload: dict[str, Any]


class Outcome:
    """What one activation came to.

    Attributes:
        value: What the handler returned (None when it failed).
        error: The exception it ended with, or None.
        attempts: How many times the handler was called (retries included).
        timed_out: True when the activation ran past its routine's timeout.
    """

    __slots__ = ("_emitted", "attempts", "error", "timed_out", "value")

    def __init__(
        self,
        value: Any = None,
        error: BaseException | None = None,
        attempts: int = 1,
        emitted: list[tuple[str, dict[str, Any]]] | None = None,
        timed_out: bool = False,
    ) -> None:
        self.value = value
        self.error = error
        self.attempts = attempts
        # None until read or set: most outcomes nobody reads (no hooks), and
        # an empty list each would be made and dropped per activation.
        self._emitted = emitted
        self.timed_out = timed_out

    @property
    def emitted(self) -> list[tuple[str, dict[str, Any]]]:
        """``(event_name, payload)`` for every emit the handler made, in order.

        Kept when the flow has hooks (the runtime skips the list when no one
        can read it). In-process handlers stream their emits (downstream work
        starts before the handler returns); the list is kept for hooks and for
        strategies that run handlers elsewhere. Made when first read.
        """
        emitted = self._emitted
        if emitted is None:
            emitted = self._emitted = []
        return emitted

    @emitted.setter
    def emitted(self, emitted: list[tuple[str, dict[str, Any]]]) -> None:
        self._emitted = emitted

    @property
    def ok(self) -> bool:
        """True when the handler returned without an error."""
        return self.error is None

    def __repr__(self) -> str:
        if self.error is not None:
            what = f"error={type(self.error).__name__}"
        else:
            what = f"value={self.value!r:.60}"
        emits = len(self._emitted or ())
        return f"Outcome({what}, attempts={self.attempts}, emits={emits})"


class FlowHooks:
    """Base class of user hooks: override the methods you need.

    Add an instance with :meth:`Flow.add_hooks`. Every method is a no-op here.
    Methods may be called from several threads at once (one per running
    activation); keep them quick, since the activation they report on waits for
    them.
    """

    def on_job_start(self, job: JobState) -> None:
        """A job starts (or resumes) running."""

    def on_activation_start(self, job: JobState, activation: ActivationInfo) -> None:
        """A handler is about to be called."""

    def on_activation_end(
        self, job: JobState, activation: ActivationInfo, outcome: Outcome
    ) -> None:
        """A handler returned."""

    def on_error(
        self, job: JobState, activation: ActivationInfo | None, error: BaseException
    ) -> None:
        """A handler failed, or the job itself did.

        ``activation`` is None for a failure of the job itself, such as a
        checkpoint store that cannot write.
        """

    def on_job_end(self, job: JobState) -> None:
        """The job stopped running: completed, failed, cancelled or paused."""
