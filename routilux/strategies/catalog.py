"""The strategy instances one flow uses, made on first use and shut down together."""

from __future__ import annotations

import threading
from typing import Any

from ..checks import Deadline
from .base import ExecutionStrategy, create_strategy

__all__ = ["StrategyCatalog"]


class StrategyCatalog:
    """Strategies of one flow by name; replaced ones are kept until shutdown.

    Args:
        name_prefix: Prefix for the worker threads of the strategies made here.

    Thread-safe.
    """

    def __init__(self, name_prefix: str) -> None:
        self._prefix = name_prefix
        # Guards _current and _retired.
        self._lock = threading.Lock()
        self._current: dict[str, ExecutionStrategy] = {}
        self._retired: list[ExecutionStrategy] = []

    def get(self, name: str, max_workers: int) -> ExecutionStrategy:
        """The strategy ``name`` with ``max_workers``, made if needed.

        A strategy of that name with another worker count is retired (it finishes
        its jobs and is shut down with the flow).
        """
        # Every job asks: the common answer is read without the lock (a dict read
        # is atomic, and an entry is only ever replaced whole, under it).
        found = self._current.get(name)
        if found is not None and found.max_workers == max_workers:
            return found
        # Factories may be user code: build outside the lock, then publish unless
        # another thread got there first.
        made = create_strategy(name, max_workers, self._prefix)
        with self._lock:
            found = self._current.get(name)
            if found is not None and found.max_workers == max_workers:
                winner = found
            else:
                if found is not None:
                    self._retired.append(found)
                self._current[name] = winner = made
        if winner is not made:
            made.shutdown(wait=False)
        return winner

    def put(self, strategy: ExecutionStrategy) -> None:
        """Use ``strategy`` (an object given by the user) under its own name."""
        with self._lock:
            old = self._current.get(strategy.name)
            if old is not None and old is not strategy:
                self._retired.append(old)
            self._current[strategy.name] = strategy

    def all(self) -> list[ExecutionStrategy]:
        """Every strategy made so far, current and retired."""
        with self._lock:
            return [*self._current.values(), *self._retired]

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Shut every strategy down (idempotent); ``timeout`` bounds the whole call."""
        deadline = Deadline(timeout)
        for strategy in self.all():
            strategy.shutdown(wait=wait, timeout=deadline.left())

    def stats(self) -> dict[str, Any]:
        """Statistics of every current strategy, by name."""
        with self._lock:
            current = dict(self._current)
        return {name: strategy.stats() for name, strategy in current.items()}
