"""The ledger's state and the moves every part of it shares.

:class:`LedgerBase` holds one job's bookkeeping: the pending count, halt and pause
flags, parked activations, slot data, and the job's :class:`JobState`, which only
the ledger writes (see :mod:`routilux.runtime.ledger` for the whole picture and
the lock order). Halting and pausing (``pausing.py``), completion, failures and
running are added by the classes built on it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..._views import (
    EMPTY_STATES,
    OwnedList,
    has_own_lists,
    owned_list,
    share_empty_lists,
    writable_list,
    writable_states,
)
from ..held import HeldLists
from ..invoker import error_record
from .outputs import NO_OUTPUTS, JobOutputs

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...job_state import JobState
    from ...records import ErrorRecord
    from ...resilience import ErrorHandler
    from ...strategies.base import JobLane, RemoteCalls
    from ...topology import FlowTopology
    from .. import aio
    from ..activation import Activation, RouteTable
    from ..checkpoint import Checkpointer
    from ..dead_letters import DeadLetterBox
    from ..observers import Observers
    from ..pressure import FlowPressure
    from ..sessions import Lane, SessionStates
    from ..watchdog import Watchdog
    from .inboxes import JobInboxes

__all__ = ["STOP_ON_ERROR", "LedgerBase"]

_wall = time.time
#: How the ledger writes the job's containers, read-only views to everyone else
#: (see routilux._views): the base classes' own methods, bound once.
_append = list.append
_put = dict.__setitem__
#: The parked activations of every job that has none (never changed in place).
_NONE_PARKED: list[Activation] = []
#: The slot data of every job that keeps none (never written: see
#: LedgerBase._slot_data_locked).
_NO_SLOT_DATA: dict[Any, dict[str, Any]] = {}
#: The halt source of a job that failed.
STOP_ON_ERROR = "stop-on-error"


class LedgerBase:
    """One job's bookkeeping (see :class:`~routilux.runtime.ledger.JobLedger`).

    Args:
        flow: The flow (for the execution context).
        routes: The flow's routing table, frozen for this job.
        job_state: The job's public state; the ledger takes ownership of it.
        lane: The strategy's lane for this job's activations.
        flow_error_handler: The flow's error handler (a routine's own one wins).
        on_done: Called once each time the job stops running (done or paused).
        watchdog: Enforces routine and job timeouts.
        default_timeout: Timeout for routines that set none (None: no limit).
        checkpoint: Writes the job's progress to a store, if the flow has one.
        history_limit: Keep at most this many history records (None: all).
        async_gates: Hold ``async def`` handlers to their routine's
            ``max_concurrency`` (shared by the flow's jobs; None: no limits).
        pressure: The flow's ``max_pending`` bound (None: no bound).
    """

    # Slots, not an instance dict: a job's ledger is one object for the garbage
    # collector to walk, not two, while the job runs (or waits in a backlog).
    # The mixins below add none of their own.
    __slots__ = (
        "__weakref__",
        "_async_gates",
        "_awaiting",
        "_caller",
        "_checkpoint",
        "_deadline",
        "_default_timeout",
        "_dropped",
        "_ended",
        "_flow_error_handler",
        "_halted",
        "_held",
        "_history",
        "_inboxes",
        "_lock",
        "_on_done",
        "_parked",
        "_pause_settled",
        "_paused",
        "_pending",
        "_pressure",
        "_slot_data",
        "_specs",
        "_states",
        "_stop_event",
        "_watchdog",
        "dead_letters",
        "flow",
        "interrupt",
        "job_state",
        "lane",
        "lane_blocks",
        "observers",
        "outputs",
        "remote",
        "routes",
        "session",
        "sessions",
    )

    def __init__(
        self,
        flow: Any,
        routes: RouteTable,
        job_state: JobState,
        lane: JobLane | None,
        flow_error_handler: ErrorHandler | None,
        on_done: Callable[[Any], None],
        watchdog: Watchdog,
        default_timeout: float | None = None,
        checkpoint: Checkpointer | None = None,
        history_limit: int | None = None,
        async_gates: aio.AsyncGates | None = None,
        pressure: FlowPressure | None = None,
    ) -> None:
        self.flow = flow
        #: Makes handler calls somewhere else (a remote strategy's binding of
        #: the flow); None: handlers run in this process. Set by the runner.
        self.remote: RemoteCalls | None = None
        #: The job's session, the lane of activations whose connection names
        #: no lane key; and the flow's session states. Both set by the runner.
        self.session: Lane | None = None
        self.sessions: SessionStates | None = None
        #: True when the lane runs the job in the calling thread (set by the
        #: runner).
        self.lane_blocks = False
        self._pressure = pressure
        self._async_gates = async_gates
        self.routes = routes
        self.job_state = job_state
        self.lane = lane
        self._flow_error_handler = flow_error_handler
        self._on_done = on_done
        self._watchdog = watchdog
        self._default_timeout = default_timeout
        self._checkpoint = checkpoint
        self.observers: Observers | None = None  # set by the runner before start
        #: The flow's dead letters (set by the runner; None: none are kept).
        self.dead_letters: DeadLetterBox | None = None
        # Guards everything below, the activation states and the JobState fields.
        self._lock = threading.Lock()
        #: What the job produced; the JobState keeps only this (not the ledger),
        #: so a finished job a caller keeps does not keep its ledger alive.
        #: Shared and empty until the first write (see :meth:`_outputs_locked`).
        self.outputs = NO_OUTPUTS
        #: The history's cells: ``extend`` appends a record (see
        #: :class:`~routilux.record_log.RecordLog`; no bound method is kept).
        self._history = job_state._take_ownership(
            self._lock, NO_OUTPUTS, history_limit
        ).cells
        self._states = job_state.routine_states
        self._pending = 0
        self._dropped = 0
        self._halted: str | None = None
        self._ended = False  # nothing is pending any more: the job is finishing
        self._paused = False
        self._pause_settled = False
        # Both made on first use (most jobs never pause nor await): one list
        # shared while empty, written only by _park_locked, which replaces it.
        self._parked: list[Activation] = _NONE_PARKED
        self._awaiting: set[Activation] | None = None  # async handlers on the loop
        # Set on halt: ends retry waits early. Made on first need (most jobs
        # never retry, and an Event costs more than the rest of a small job).
        self._stop_event: threading.Event | None = None
        # Shared and empty until a merge keeps data (see _slot_data_locked).
        self._slot_data: dict[Any, dict[str, Any]] = _NO_SLOT_DATA
        #: Queues a task as a spec on a lane that takes them (see
        #: :class:`~routilux.strategies.base.JobLane`); None: as an Activation.
        self._specs: Callable[[tuple[int, Any, Any, Any]], None] | None = None
        #: Payloads waiting in slots with a policy; made at the first such arrival.
        self._inboxes: JobInboxes | None = None
        #: Their rows in the store, and those of merged arrivals (see ``held``).
        self._held = HeldLists() if checkpoint is not None else None
        self._deadline: Any = None
        #: A Ctrl-C caught in the thread running a blocking lane, raised again by
        #: the runner once the job is settled.
        self.interrupt: BaseException | None = None
        self._caller: int | None = None

    @property
    def checkpoint(self) -> Checkpointer | None:
        """What writes the job to its store (None: the flow has none)."""
        return self._checkpoint

    # -- writing the JobState (the only writer) --

    def _set(self, **fields: Any) -> None:
        """Write JobState fields (lock held or job not running yet)."""
        values = self.job_state.__dict__
        for name, value in fields.items():
            values[name] = value

    def _tasks(self, tasks: list[dict[str, Any]]) -> OwnedList[dict[str, Any]]:
        """``tasks`` as the job's ``pending_tasks`` (a read-only view)."""
        return owned_list(tasks, self.job_state.job_id, "pending_tasks")

    def _states_locked(self) -> dict[str, Any]:
        """The job's own routine states, to write to (lock held)."""
        states = self._states
        if states is EMPTY_STATES:
            states = self._states = writable_states(self.job_state.__dict__)
        return states

    def _outputs_locked(self) -> JobOutputs:
        """The job's own outputs, to write to (lock held); made at the first write."""
        outputs = self.outputs
        if outputs is NO_OUTPUTS:
            outputs = self.outputs = JobOutputs(self._lock, self.routes.sinks)
            self.job_state._keep_outputs(outputs)
        return outputs

    def _add_error_locked(self, record: ErrorRecord) -> None:
        """Append to the job's errors (lock held), after it ended too."""
        _append(writable_list(self.job_state.__dict__, "errors"), record)

    def _share_empty_lists(self) -> None:
        """The job has a final status: its empty lists become shared ones."""
        values = self.job_state.__dict__
        if has_own_lists(values):  # most jobs never had any: no lock to take
            with self._lock:
                share_empty_lists(values)

    def _error(self, record: ErrorRecord, exc: BaseException) -> None:
        """Record an error (lock held).

        The record is made before the lock is taken: it reads the exception's
        text, which is user code.
        """
        self._add_error_locked(record)
        outputs = self._outputs_locked()
        if outputs.first_error is None:
            outputs.first_error = exc
        if self._checkpoint is not None:
            self._checkpoint.dirty = True  # the error goes to the store with the step

    def stamp(self, topology: FlowTopology, dropped: ErrorRecord | None) -> None:
        """Record the flow shape the job runs on, before it (re)starts.

        ``dropped`` is the record of what a resume on a changed flow dropped.
        Called on a new ledger, before any other thread holds it.
        """
        self.job_state.__dict__["topology"] = topology  # (as _set may then)
        if dropped is not None:
            with self._lock:
                self._add_error_locked(dropped)

    def stop_signal(self) -> threading.Event:
        """The event set when the job halts (retry waits end on it)."""
        with self._lock:
            if self._stop_event is None:
                self._stop_event = threading.Event()
                if self._halted is not None:
                    self._stop_event.set()
            return self._stop_event

    def _retry_error(self, activation: Activation, exc: BaseException) -> None:
        """Record an error that is about to be retried."""
        raise NotImplementedError

    def record_hook_error(self, hook: str, exc: BaseException) -> None:
        """Record a failing hook; the job goes on.

        A Ctrl-C in the thread that runs a sequential job is raised again once
        the job is settled.
        """
        record = error_record("<hooks>", hook, exc, 1)
        with self._lock:
            self._add_error_locked(record)
        self._note_interrupt(exc)

    def _note_interrupt(self, exc: BaseException | None) -> None:
        """Keep a Ctrl-C met in the thread that runs a sequential job.

        The runner raises it again once the job is settled.
        """
        if (
            isinstance(exc, KeyboardInterrupt)
            and self._caller is not None
            and self._caller == threading.get_ident()
        ):
            self.interrupt = self.interrupt or exc

    def _handler_of(self, activation: Activation) -> ErrorHandler | None:
        """The error policy of an activation: its routine's own, else the flow's."""
        return activation.routine_spec.error_handler or self._flow_error_handler

    def _await_locked(self, activation: Activation) -> None:
        """``activation``'s handler goes on to the event loop (lock held)."""
        if self._awaiting is None:
            self._awaiting = set()
        self._awaiting.add(activation)

    def _admitted(self, activations: list[Activation]) -> list[Activation]:
        """The activations the flow's bound lets through now (all, without one).

        The bound holds the rest and hands them to the lane as room frees.
        """
        pressure = self._pressure
        if pressure is None:
            return activations
        for activation in activations:
            activation.counted = True
        return pressure.admit(activations, hold=not self.lane_blocks)

    def _hand(self, activations: list[Activation]) -> None:
        """Give counted activations to the lane, through the flow's bound if any.

        A lane that refuses one (its pool shut down, a strategy's bug) fails
        the job; what it did not take is dropped and counted, so no wait hangs.
        """
        submit = self.lane.submit  # type: ignore[union-attr]
        specs = self._specs
        admitted = self._admitted(activations)
        index = 0
        try:
            for index, activation in enumerate(admitted):  # noqa: B007 - read below
                cells = None if specs is None else activation.queued_cells()
                if cells is None:
                    submit(activation)
                else:  # a queued call need not be an object (see _queue_specs)
                    specs(cells)  # type: ignore[misc]  # not None: cells are
        except BaseException as exc:  # noqa: BLE001 - ends in the job
            self._refused(admitted[index:], exc)

    def _refused(self, activations: list[Activation], error: BaseException) -> None:
        """The lane refused ``activations`` (counted, queued): fail, drop them."""
        raise NotImplementedError

    def _uncount(self, activation: Activation) -> None:
        """An activation the flow's bound counted is finished: free its place."""
        if getattr(activation, "counted", False):
            activation.counted = False
            assert self._pressure is not None
            self._pressure.release()

    def slot_data(self, slot: Any) -> dict[str, Any]:
        """What ``slot`` keeps in this job (its merge strategy's data): a copy."""
        with self._lock:
            return dict(self._slot_data.get(slot) or {})

    def take_slot_data(self, slot: Any) -> dict[str, Any]:
        """What ``slot`` keeps in this job, removed in the same step."""
        with self._lock:
            return self._slot_data.pop(slot, None) or {}

    def _slot_data_locked(self) -> dict[Any, dict[str, Any]]:
        """The job's own slot data, to write to (lock held); made at the first write."""
        data = self._slot_data
        if data is _NO_SLOT_DATA:
            data = self._slot_data = {}
        return data

    def set_slot_data(self, slot: Any, data: dict[str, Any]) -> None:
        """Replace what ``slot`` keeps in this job (``{}``: start afresh)."""
        with self._lock:
            if data:
                self._slot_data_locked()[slot] = data
            else:
                self._slot_data.pop(slot, None)

    def inbox_fill(self) -> tuple[int, int]:
        """``(inboxes holding payloads, payloads held)`` in this job now."""
        with self._lock:
            inboxes = self._inboxes
            return (0, 0) if inboxes is None else inboxes.fill()

    def _finish(self, settled: int) -> None:
        """Count ``settled`` activations as done; complete or pause the job."""
        raise NotImplementedError

    def _count_locked(self, settled: int) -> int:
        """Count settled activations (lock held); what the job must do next."""
        raise NotImplementedError

    def _conclude(self, action: int) -> None:
        """Complete or pause the job, as :meth:`_count_locked` decided."""
        raise NotImplementedError

    def _release(
        self,
        activation: Activation,
        children: list[Activation] | None,
        settled: int = 0,
        queue: bool = False,
    ) -> bool:
        """Checkpoint a finished activation's step, then let its children run.

        True when the step was queued to a step writer, which then counts
        ``settled`` activations settled (the caller does otherwise).
        """
        raise NotImplementedError

    def _stored(self, activation: Activation) -> None:
        """``activation``'s step is committed: its held rows are in the store."""
        raise NotImplementedError
