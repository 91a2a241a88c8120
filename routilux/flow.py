"""Flow: routines wired by connections, and the face of execution.

The flow holds its routines and connections in a ``networkx.MultiDiGraph`` (nodes are
routine ids, edges connections keyed by ``(event, slot)``) and delegates running to
the runtime and an execution strategy. Every method that changes the structure checks
all of its input first, so a failure leaves the flow as it was.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Any, Literal

from . import graph as graph_text
from .checks import instance_of, optional_positive_int, optional_seconds
from .exceptions import (
    ConfigurationError,
)
from .flow_dead_letters import FlowDeadLetters
from .flow_documents import FlowDocuments
from .flow_jobs import FlowJobs
from .runtime.runner import FlowRunner
from .runtime.sessions import DEFAULT_SESSION_TTL, SessionStates
from .strategies.base import ExecutionStrategy, check_max_workers, registered_strategies
from .wiring import Wiring

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    import networkx as nx

    from .connection import Connection
    from .graph import Finding
    from .hooks import FlowHooks
    from .persistence.base import CheckpointStore
    from .pool_stats import PoolStats
    from .resilience import ErrorHandler
    from .routine import Routine
    from .tracking import ExecutionTracker

__all__ = ["Flow"]

_DEFAULT_CONCURRENT_WORKERS = 5


class Flow(FlowJobs, FlowDocuments, FlowDeadLetters):
    """Routines, the connections between them, and how they run.

    Args:
        flow_id: The flow's id; a uuid4 string when omitted.
        execution_strategy: ``"sequential"``, ``"concurrent"``, another registered
            name, or an :class:`~routilux.strategies.ExecutionStrategy` object.
        max_workers: Worker threads for concurrent strategies (1 for sequential).
        error_handler: The flow-wide error policy (a routine's own one wins).
        history_limit: Keep at most this many history records per job (None: all).
        default_timeout: Seconds an activation may run when its routine sets no
            timeout of its own (None: no limit; at most one year).
        checkpoint_store: Persist every job as its activations complete, so that
            ``resume(job_id)`` can finish it after a crash: a
            :class:`~routilux.persistence.CheckpointStore`, or a path (str or
            ``os.PathLike``) for the default SQLite store.
        max_pending: Backpressure: at most this many activations pending
            (handed to the strategy, not yet finished) at once; None: no bound.
            Work from outside the pool (``execute``, ``resume``, ``replay``)
            waits for room; what handlers emit over the bound is held, in
            order, and never blocks them (see :mod:`routilux.runtime.pressure`).
        on_full: With ``max_pending``: ``"block"`` (wait for room) or ``"raise"``
            (refuse with :class:`~routilux.QueueFullError`).
        session_ttl: Seconds a routine's idle ``session_state`` is kept when the
            routine sets no TTL of its own (0: dropped as soon as it idles; None:
            kept as long as the flow). See :doc:`/guide/sessions`.
        session_clock: The monotonic clock session expiry reads
            (``time.monotonic``; give a fake one in tests).

    Raises:
        ConfigurationError: For a setting of the wrong type or out of range (a
            bool is not an int; seconds above :data:`routilux.checks.MAX_SECONDS`,
            one year, are refused), naming the setting and the value.
        UnknownStrategyError: For an unregistered strategy name.
        CheckpointError: When the store at ``checkpoint_store`` cannot be opened.

    Attributes:
        flow_id: The flow's id.
        error_handler: The flow-wide error policy, or None (STOP).

    The structure methods (``add_routine``, ``connect``...) are not thread-safe: build
    the flow first, then run it. ``execute``, ``wait_for_completion`` and
    ``shutdown`` are thread-safe.
    """

    def __init__(
        self,
        flow_id: str | None = None,
        execution_strategy: str | ExecutionStrategy = "sequential",
        max_workers: int = _DEFAULT_CONCURRENT_WORKERS,
        *,
        error_handler: ErrorHandler | None = None,
        history_limit: int | None = None,
        default_timeout: float | None = None,
        checkpoint_store: CheckpointStore | str | Path | None = None,
        max_pending: int | None = None,
        on_full: Literal["block", "raise"] = "block",
        session_ttl: float | None = DEFAULT_SESSION_TTL,
        session_clock: Callable[[], float] | None = None,
    ) -> None:
        check_max_workers(max_workers)
        history_limit = optional_positive_int(history_limit, "history_limit")
        #: The most activations pending at once (None: no bound); see
        #: :mod:`routilux.runtime.pressure`. Set when the flow is made.
        self.max_pending = optional_positive_int(max_pending, "max_pending")
        if on_full not in ("block", "raise"):
            raise ConfigurationError(
                f"on_full must be 'block' or 'raise', got {on_full!r}"
            )
        self.on_full = on_full
        timeout = optional_seconds(default_timeout, "default_timeout")
        sessions = SessionStates.checked(session_ttl, session_clock)
        _check_arguments(flow_id, error_handler, checkpoint_store)
        self.flow_id: str = flow_id or str(uuid.uuid4())
        self.error_handler: ErrorHandler | None = error_handler
        self.history_limit = history_limit
        self.default_timeout = timeout
        self.checkpoint_store: CheckpointStore | None = None
        self._owns_store = False
        self._wiring = Wiring(self)
        self._runner = FlowRunner(self, self._wiring)
        self._runner.sessions = sessions
        self._strategy_name = "sequential"
        self._max_workers = 1
        self._requested_workers = max_workers
        self.set_execution_strategy(execution_strategy, max_workers)
        # The store last: a refused setting leaves no file made; a store that
        # cannot open leaves no workers running.
        try:
            self.checkpoint_store = _open_store(checkpoint_store)
        except BaseException:
            self._runner.shutdown(False, 0)
            raise
        # A store opened here from a path is closed by shutdown(); one passed in
        # belongs to the caller.
        self._owns_store = isinstance(checkpoint_store, (str, os.PathLike))

    # -- structure -----------------------------------------------------------------

    @property
    def routines(self) -> Mapping[str, Routine]:
        """Routine id -> routine (read-only view)."""
        return self._wiring.routines

    @property
    def connections(self) -> list[Connection]:
        """The connections, in the order they were made (a copy)."""
        return self._wiring.connections

    @property
    def graph(self) -> nx.MultiDiGraph:
        """A read-only view of the wiring graph."""
        return self._wiring.graph.copy(as_view=True)

    def add_routine(self, routine: Routine, routine_id: str | None = None) -> str:
        """Add ``routine`` under ``routine_id`` (its default id when None).

        Returns:
            The id used.

        Raises:
            ConfigurationError: When ``routine`` is not a Routine.
            DuplicateNameError: When the id is taken or the object is already here.
        """
        rid = self._wiring.add_routine(routine, routine_id)
        return rid

    def remove_routine(self, routine_id: str) -> Routine:
        """Remove a routine and every connection to or from it.

        Raises:
            UnknownRoutineError: When no routine has that id.
        """
        routine = self._wiring.remove_routine(routine_id)
        return routine

    def connect(
        self,
        source_routine_id: str,
        source_event: str,
        target_routine_id: str,
        target_slot: str,
        param_mapping: dict[str, str] | None = None,
        *,
        lane_key: str | None = None,
    ) -> Connection:
        """Wire an event of one routine to a slot of another (or the same).

        Fan-in, fan-out and self-loops are allowed. With ``lane_key``, what goes
        through is in the session lane that key of its (renamed) payload names,
        a str or an int (see :doc:`/guide/sessions`).

        .. versionadded:: 1.0
           ``lane_key``.

        Raises:
            UnknownRoutineError, UnknownEventError, UnknownSlotError: Naming what is
                missing.
            DuplicateNameError: When exactly this connection exists.
            ConfigurationError: For a ``param_mapping`` that is not a str -> str
                dict, or a ``lane_key`` that is not a non-empty str into an
                ``each`` slot.
        """
        connection = self._wiring.connect(
            source_routine_id,
            source_event,
            target_routine_id,
            target_slot,
            param_mapping,
            lane_key=lane_key,
        )
        return connection

    def disconnect(
        self,
        source_routine_id: str,
        source_event: str,
        target_routine_id: str,
        target_slot: str,
    ) -> None:
        """Remove one connection.

        Raises:
            ConfigurationError: When no such connection exists.
        """
        self._wiring.disconnect(
            source_routine_id, source_event, target_routine_id, target_slot
        )

    # -- strategy and errors -------------------------------------------------------

    @property
    def execution_tracker(self) -> ExecutionTracker | None:
        """The :class:`~routilux.ExecutionTracker` of the job started last, or None.

        Made when first read (a job that nobody asks about never makes one).
        Assigning one keeps it until the next job starts.
        """
        return self._runner.tracker

    @execution_tracker.setter
    def execution_tracker(self, tracker: ExecutionTracker | None) -> None:
        self._runner.tracker = tracker

    @property
    def execution_strategy(self) -> str:
        """The name of the strategy ``execute`` uses by default."""
        return self._strategy_name

    @property
    def max_workers(self) -> int:
        """Worker threads of the default strategy (1 for sequential)."""
        return self._max_workers

    def set_execution_strategy(
        self, strategy: str | ExecutionStrategy, max_workers: int | None = None
    ) -> None:
        """Choose how ``execute`` runs jobs from now on (running jobs are unaffected).

        Args:
            strategy: A registered name or an ExecutionStrategy object.
            max_workers: Workers for concurrent strategies: given, else 5
                (``sequential`` always has 1).

        Raises:
            UnknownStrategyError: For an unregistered name.
            ConfigurationError: When ``max_workers`` is not an int >= 1.
        """
        if isinstance(strategy, str):
            workers = check_max_workers(
                max_workers if max_workers is not None else _DEFAULT_CONCURRENT_WORKERS
            )
            self._runner.strategy(strategy, workers)  # builds it: checks the name
            self._strategy_name = strategy
            self._requested_workers = workers
            self._max_workers = 1 if strategy == "sequential" else workers
            return
        if not isinstance(strategy, ExecutionStrategy):
            raise ConfigurationError(
                f"execution_strategy must be a name {registered_strategies()} or an "
                f"ExecutionStrategy, got {type(strategy).__name__}"
            )
        self._runner.adopt(strategy)
        self._strategy_name = strategy.name
        self._max_workers = strategy.max_workers

    def add_hooks(self, hooks: FlowHooks) -> None:
        """Call ``hooks`` for every job this flow starts from now on.

        Hooks are told of job start and end and of every activation's start, end
        and error (see :class:`~routilux.FlowHooks`). A hook that raises is
        recorded in the job's errors and never stops the job. Not thread-safe: add
        hooks before running jobs.

        Raises:
            ConfigurationError: When ``hooks`` is not a FlowHooks.
        """
        from .hooks import FlowHooks

        if not isinstance(hooks, FlowHooks):
            raise ConfigurationError(
                f"add_hooks expects a FlowHooks instance, got {type(hooks).__name__}"
            )
        self._runner.hooks.append(hooks)

    def set_error_handler(self, error_handler: ErrorHandler | None) -> None:
        """Use ``error_handler`` for routines without their own."""
        self.error_handler = error_handler

    # -- running -------------------------------------------------------------------

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop accepting jobs and release the workers. Idempotent; thread-safe.

        Args:
            wait: Drain running and queued work first (False drops what has not
                started; those jobs end ``cancelled``).
            timeout: With ``wait``, the longest time to wait for the drain.

        A checkpoint store the flow opened from a path is closed too.
        """
        self._runner.shutdown(wait, timeout)
        if self._owns_store and self.checkpoint_store is not None:
            self.checkpoint_store.close()

    def __enter__(self) -> Flow:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)

    def _deliver_now(
        self, routine: Routine, event_name: str, data: dict[str, Any]
    ) -> None:
        """Deliver an emit made outside any job, in this thread, via the connections."""
        self._runner.deliver_now(routine, event_name, data)

    # -- looking at it -------------------------------------------------------------

    def validate(self) -> list[Finding]:
        """Check the wiring; return findings, errors first.

        Reported: unknown or unconnected slots, mapped parameters the event does not
        declare, routines no entry reaches, cycles (reported, not forbidden).
        """
        return graph_text.find_problems(self._wiring.graph, self._wiring.routines)

    def to_mermaid(self, direction: str = "LR") -> str:
        """The flow as a mermaid flowchart."""
        return graph_text.to_mermaid(self._wiring.graph, direction)

    def to_dot(self) -> str:
        """The flow as Graphviz DOT text."""
        return graph_text.to_dot(self._wiring.graph, self.flow_id)

    def get_stats(self) -> PoolStats:
        """Pool statistics: a :class:`~routilux.PoolStats` snapshot. Thread-safe.

        Typed and also readable as a mapping (``stats.busy`` or
        ``stats["busy"]``): the pool figures summed over the flow's strategies
        (``workers``, ``busy``, ``awaiting``, ``queued``, ``completed``,
        ``failed``, ``dropped``) and each strategy's own (``strategies``);
        ``jobs`` counts the flow's finished jobs by status; ``routines`` has, per
        routine id, a :class:`~routilux.RoutineStats` with counts, failures, the
        mean and the p50/p95 durations over every job the flow ran (percentiles
        over the latest 4,096 durations of each routine); ``active_jobs`` and
        ``paused_jobs`` count jobs now; ``inboxes`` the slot inboxes holding
        payloads and how many; ``dead_letters`` counts the dead letters held in
        memory and not replayed (see :meth:`dead_letters`); ``sessions`` counts
        session lanes with work and session states kept
        (:doc:`/guide/sessions`); ``pressure`` has the backpressure figures
        (None without ``max_pending``); ``circuit_breakers`` each breaker's.

        .. versionchanged:: 1.0
           A :class:`~routilux.PoolStats` (a mapping) instead of a dict.
        """
        return self._runner.stats()

    def __repr__(self) -> str:
        return (
            f"Flow({self.flow_id!r}, strategy={self._strategy_name!r}, "
            f"routines={len(self._wiring.routines)}, "
            f"connections={self._wiring.graph.number_of_edges()})"
        )


def _check_arguments(flow_id: object, handler: object, store: object) -> None:
    """Refuse what ``Flow.__init__`` cannot take, before it changes anything."""
    from .persistence import CheckpointStore
    from .resilience import ErrorHandler

    none = type(None)
    instance_of(flow_id, (str, none), "flow_id", "None or a str")
    instance_of(
        handler, (ErrorHandler, none), "error_handler", "None or an ErrorHandler"
    )
    instance_of(
        store,
        (str, os.PathLike, CheckpointStore, none),
        "checkpoint_store",
        "None, a path (str or os.PathLike) or a CheckpointStore",
    )


def _open_store(store: CheckpointStore | str | Path | None) -> CheckpointStore | None:
    if store is None or not isinstance(store, (str, os.PathLike)):
        return store
    from .persistence import SQLiteCheckpointStore

    return SQLiteCheckpointStore(store)
