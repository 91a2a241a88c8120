"""routilux: flows of routines with slots and events, run sequentially or on threads.

Everything public is importable from here; ``__all__`` is the whole public API.
"""

from __future__ import annotations

import logging

from .builtin import (
    ConditionalRouter,
    DataFlattener,
    DataTransformer,
    DataValidator,
    ResultExtractor,
    TextClipper,
    TextRenderer,
    TimeProvider,
)
from .connection import Connection
from .dead_letter import DeadLetter
from .event import Event
from .exceptions import (
    CheckpointError,
    CircuitOpenError,
    ConfigurationError,
    DuplicateNameError,
    EntryPointError,
    ExtraNotInstalledError,
    ForeignJobError,
    JobCancelledError,
    JobFailedError,
    JobOwnedError,
    JobStateError,
    JobTimeoutError,
    JoinIncompleteError,
    QueueFullError,
    ReentrantCallError,
    RemoteHandlerError,
    RoutiluxError,
    RoutineTimeoutError,
    SerializationError,
    SessionError,
    StrategyShutdownError,
    TopologyChangedError,
    UnknownEventError,
    UnknownMergeStrategyError,
    UnknownRoutineError,
    UnknownSlotError,
    UnknownStrategyError,
    WorkerLostError,
)
from .flow import Flow
from .graph import Finding
from .hooks import ActivationInfo, FlowHooks, Outcome
from .job_state import JobState, JobStatus
from .merge import AppendView, register_merge_strategy
from .policies import AllSources, Batch, Inbox, SlotPolicy, Window
from .pool_stats import InboxStats, PoolStats, RoutineStats
from .records import ErrorRecord, ExecutionRecord, RoutineState, RoutineStatus
from .resilience import CircuitBreaker, CircuitState, ErrorHandler, ErrorStrategy
from .routine import Routine
from .runtime.context import ExecutionContext
from .slot import HandlerBinding, Slot
from .spec import EventSpec, RoutineSpec, SlotSpec
from .strategies import (
    ExecutionStrategy,
    SequentialStrategy,
    StrategyState,
    ThreadedStrategy,
    register_strategy,
)
from .topology import FlowTopology, TopologyChanges
from .tracking import ExecutionTracker

__version__ = "1.0.0.dev0"

# A library never configures logging: without this, Python's last-resort handler
# would print our warnings to stderr in programs that set up no logging.
logging.getLogger("routilux").addHandler(logging.NullHandler())

__all__ = [
    "ActivationInfo",
    "AllSources",
    "AppendView",
    "Batch",
    "CheckpointError",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ConditionalRouter",
    "ConfigurationError",
    "Connection",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "DeadLetter",
    "DuplicateNameError",
    "EntryPointError",
    "ErrorHandler",
    "ErrorRecord",
    "ErrorStrategy",
    "Event",
    "EventSpec",
    "ExecutionContext",
    "ExecutionRecord",
    "ExecutionStrategy",
    "ExecutionTracker",
    "ExtraNotInstalledError",
    "Finding",
    "Flow",
    "FlowHooks",
    "FlowTopology",
    "ForeignJobError",
    "HandlerBinding",
    "Inbox",
    "InboxStats",
    "JobCancelledError",
    "JobFailedError",
    "JobOwnedError",
    "JobState",
    "JobStateError",
    "JobStatus",
    "JobTimeoutError",
    "JoinIncompleteError",
    "Outcome",
    "PoolStats",
    "QueueFullError",
    "ReentrantCallError",
    "RemoteHandlerError",
    "ResultExtractor",
    "RoutiluxError",
    "Routine",
    "RoutineSpec",
    "RoutineState",
    "RoutineStats",
    "RoutineStatus",
    "RoutineTimeoutError",
    "SequentialStrategy",
    "SerializationError",
    "SessionError",
    "Slot",
    "SlotPolicy",
    "SlotSpec",
    "StrategyShutdownError",
    "StrategyState",
    "TextClipper",
    "TextRenderer",
    "ThreadedStrategy",
    "TimeProvider",
    "TopologyChangedError",
    "TopologyChanges",
    "UnknownEventError",
    "UnknownMergeStrategyError",
    "UnknownRoutineError",
    "UnknownSlotError",
    "UnknownStrategyError",
    "Window",
    "WorkerLostError",
    "__version__",
    "register_merge_strategy",
    "register_strategy",
]
