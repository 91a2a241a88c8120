"""Execution strategies: where activations run.

``sequential`` runs a job FIFO in the calling thread; ``concurrent`` runs
activations on a thread pool; ``ray`` calls handlers on Ray actors (the
``ray`` extra). Register more with :func:`register_strategy`.
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
from .ray import RayStrategy
from .sequential import SequentialStrategy
from .threaded import ThreadedStrategy

register_strategy("sequential", SequentialStrategy)
register_strategy("concurrent", ThreadedStrategy)
register_strategy("threaded", ThreadedStrategy)
register_strategy("ray", RayStrategy)  # imports Ray only when one is made

__all__ = [
    "ExecutionStrategy",
    "JobLane",
    "RayStrategy",
    "SequentialStrategy",
    "StrategyState",
    "Task",
    "ThreadedStrategy",
    "create_strategy",
    "register_strategy",
    "registered_strategies",
]
