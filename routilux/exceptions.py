"""The one exception hierarchy of routilux.

Every exception routilux raises derives from :class:`RoutiluxError`. Where an error
has a standard-library meaning the class derives from that class too, so code that
catches ``ValueError`` or ``RuntimeError`` keeps working::

    RoutiluxError
    ├── ConfigurationError (ValueError)        bad input when building a flow
    │   ├── DuplicateNameError                 routine id, slot, event or connection
    │   ├── UnknownRoutineError                no routine with that id in the flow
    │   ├── UnknownEventError                  the routine declares no such event
    │   ├── UnknownSlotError                   the routine declares no such slot
    │   ├── UnknownStrategyError               no execution strategy by that name
    │   ├── ExtraNotInstalledError             a strategy needs an optional extra
    │   │                                      (``pip install 'routilux[ray]'``)
    │   ├── UnknownMergeStrategyError          no merge strategy by that name
    │   ├── EntryPointError                    entry routine has no ``trigger`` slot
    │   ├── ForeignJobError                    a JobState of another flow
    │   └── TopologyChangedError               a job resumed on a flow of another
    │                                          shape (routines, slots, connections)
    ├── SerializationError (ValueError)        a document that cannot be read or written
    ├── StrategyShutdownError (RuntimeError)   use of a flow or strategy after shutdown
    ├── QueueFullError (RuntimeError)          a full flow refuses work (max_pending)
    ├── JobStateError (RuntimeError)           pause/resume/cancel in the wrong state,
    │   │                                      or a write to a job the runtime owns
    │   └── JobOwnedError                      another live owner runs the stored job
    ├── JobFailedError (RuntimeError)          ``job.result()`` of a failed job
    ├── JobCancelledError (RuntimeError)       ``job.result()`` of a cancelled job
    ├── ReentrantCallError (RuntimeError)      a handler waits on a slot it holds
    ├── CircuitOpenError (RuntimeError)        a routine's circuit breaker is open
    ├── JoinIncompleteError (RuntimeError)     an ``all_sources`` join some source
    │                                          never completed (``on_missing="fail"``)
    ├── SessionError (RuntimeError)            ``session_state`` read outside a
    │                                          session (no handler, or no lane)
    ├── CheckpointError                        a checkpoint store cannot read or write
    ├── WorkerLostError (RuntimeError)         a remote worker died during a call
    ├── RemoteHandlerError (RuntimeError)      a remote handler's error that could
    │                                          not be sent back as itself
    ├── JobTimeoutError (TimeoutError)         a wait on a job ran out of time
    └── RoutineTimeoutError (TimeoutError)     an activation ran past its timeout

Each message names what was wrong (routine id, slot, event, strategy name, path) and,
where it helps, what to do instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .topology import TopologyChanges

__all__ = [
    "CheckpointError",
    "CircuitOpenError",
    "ConfigurationError",
    "DuplicateNameError",
    "EntryPointError",
    "ExtraNotInstalledError",
    "ForeignJobError",
    "JobCancelledError",
    "JobFailedError",
    "JobOwnedError",
    "JobStateError",
    "JobTimeoutError",
    "JoinIncompleteError",
    "QueueFullError",
    "ReentrantCallError",
    "RemoteHandlerError",
    "RoutiluxError",
    "RoutineTimeoutError",
    "SerializationError",
    "SessionError",
    "StrategyShutdownError",
    "TopologyChangedError",
    "UnknownEventError",
    "UnknownMergeStrategyError",
    "UnknownRoutineError",
    "UnknownSlotError",
    "UnknownStrategyError",
    "WorkerLostError",
]


class RoutiluxError(Exception):
    """Base class of every exception routilux raises."""


class ConfigurationError(RoutiluxError, ValueError):
    """A flow, routine or strategy was given input it cannot accept."""


class DuplicateNameError(ConfigurationError):
    """A routine id, slot name, event name or connection is already taken."""


class UnknownRoutineError(ConfigurationError):
    """No routine with the given id belongs to the flow."""


class UnknownEventError(ConfigurationError):
    """The routine declares no event with the given name."""


class UnknownSlotError(ConfigurationError):
    """The routine declares no slot with the given name."""


class UnknownStrategyError(ConfigurationError):
    """No execution strategy is registered under the given name."""


class UnknownMergeStrategyError(ConfigurationError):
    """No merge strategy is registered under the given name."""


class EntryPointError(ConfigurationError):
    """The routine cannot start a job: it has no ``trigger`` slot."""


class ForeignJobError(ConfigurationError):
    """A JobState was passed to a flow it does not belong to."""


class TopologyChangedError(ConfigurationError):
    """A stored job was resumed on a flow whose shape changed since.

    Attributes:
        job_id: The job.
        changes: A :class:`routilux.topology.TopologyChanges`: every routine,
            slot, event and connection added and removed.

    .. versionadded:: 1.0
    """

    def __init__(
        self, message: str, *, job_id: str = "", changes: TopologyChanges | None = None
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.changes = changes


class SerializationError(RoutiluxError, ValueError):
    """A document could not be written or read back safely."""


class QueueFullError(RoutiluxError, RuntimeError):
    """A flow at its ``max_pending`` bound refused new work (``on_full="raise"``)."""


class StrategyShutdownError(RoutiluxError, RuntimeError):
    """New work was submitted after ``shutdown()``."""


class JobTimeoutError(RoutiluxError, TimeoutError):
    """Waiting for a job ran out of time."""


class JobStateError(RoutiluxError, RuntimeError):
    """A job cannot be paused, resumed or cancelled in its current state."""


class JobOwnedError(JobStateError):
    """A stored job is run by another owner whose lease is live.

    Attributes:
        job_id: The job.
        pid: The owner's process id.
        host: The owner's host name.
    """

    def __init__(self, message: str, *, job_id: str, pid: int, host: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.pid = pid
        self.host = host

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields: pickling (e.g. across processes) needs them spelt.
        return (_owned_error, (str(self), self.job_id, self.pid, self.host))


def _owned_error(message: str, job_id: str, pid: int, host: str) -> JobOwnedError:
    return JobOwnedError(message, job_id=job_id, pid=pid, host=host)


class JobFailedError(RoutiluxError, RuntimeError):
    """The job failed; its first error is chained as ``__cause__``.

    Raised by :meth:`JobState.result`.
    """


class JobCancelledError(RoutiluxError, RuntimeError):
    """The job was cancelled (by a user, a timeout or a shutdown).

    Raised by :meth:`JobState.result`.
    """


class ReentrantCallError(RoutiluxError, RuntimeError):
    """A handler started work that needs a concurrency place it holds itself.

    A routine with ``max_concurrency=1`` whose handler runs a nested sequential job
    through the same routine would wait for itself forever; this is raised instead.
    """


class CircuitOpenError(RoutiluxError, RuntimeError):
    """A routine's circuit breaker is open: the call failed fast without running."""


class JoinIncompleteError(RoutiluxError, RuntimeError):
    """An ``all_sources`` join ended with sources that never delivered.

    Attributes:
        missing: The ids of the source routines that did not deliver.
        arrived: The ids of those that did.
    """

    def __init__(
        self,
        message: str,
        missing: list[str] | None = None,
        arrived: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = list(missing or [])
        self.arrived = list(arrived or [])


class SessionError(RoutiluxError, RuntimeError):
    """``routine.session_state`` was read where there is no session.

    Outside the routine's own handler, or in an activation that belongs to no
    session: its job was started without ``session=`` and its connection names
    no ``lane_key``.

    .. versionadded:: 1.0
    """


class CheckpointError(RoutiluxError):
    """A checkpoint store could not read or write (corrupt, locked, no permission)."""


class RoutineTimeoutError(RoutiluxError, TimeoutError):
    """An activation ran longer than its routine's timeout.

    Python cannot stop a running thread: the late handler runs on, but whatever it
    emits after the deadline is discarded.
    """


class ExtraNotInstalledError(ConfigurationError):
    """A feature needs an optional extra that is not installed.

    The message names the extra to install (``pip install 'routilux[ray]'``).
    """


class WorkerLostError(RoutiluxError, RuntimeError):
    """The remote worker running an activation died before it answered.

    The activation goes through its routine's error policy like any error, so a
    routine may list it in ``retryable_exceptions``: the retry runs on the worker
    once it has been restarted.
    """


class RemoteHandlerError(RoutiluxError, RuntimeError):
    """A remote handler raised an exception that could not be sent back as itself.

    Attributes:
        type_name: The qualified name of the original exception's class.
        remote_traceback: The traceback text formatted on the worker.
    """

    def __init__(self, message: str, type_name: str, remote_traceback: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[type[RemoteHandlerError], tuple[str, str, str]]:
        return (type(self), (str(self), self.type_name, self.remote_traceback))
