"""Execution strategies: where activations run.

``sequential`` runs a job FIFO in the calling thread; ``concurrent`` runs
activations on a thread pool. Register more with :func:`register_strategy`.
"""

from __future__ import annotations

from .base import (
    ExecutionStrategy,
    JobLane,
    StrategyState,
    Task,
    create_strategy,
    register_strategy,
    registered_strategies,
)
from .sequential import SequentialStrategy
from .threaded import ThreadedStrategy

register_strategy("sequential", SequentialStrategy)
register_strategy("concurrent", ThreadedStrategy)
register_strategy("threaded", ThreadedStrategy)

__all__ = [
    "ExecutionStrategy",
    "JobLane",
    "SequentialStrategy",
    "StrategyState",
    "Task",
    "ThreadedStrategy",
    "create_strategy",
    "register_strategy",
    "registered_strategies",
]
