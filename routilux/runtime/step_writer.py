"""The step writer: a flow's checkpoint steps, written together on one thread.

On the concurrent strategy (and any strategy whose lane does not run the job in
the calling thread) a settled activation's step is not written by the worker
that ran it: the worker queues it here and goes on with other work. One thread
takes whatever has queued up, from every job of the flow, writes it in one call
(:func:`routilux.persistence.steps.write_steps`: one transaction on a store that
batches) and then tells each step's job, in the order the steps were queued.
Only then does a job let the step's children run and count its activation as
settled, so "children are stored with their parent's completion" holds as
before, and a job ends only after its every step is written.

The thread is started by the first step and ends after ``LINGER`` seconds with
nothing queued (a flow left idle keeps no thread). ``StepWriter._lock`` guards
the queue and the thread; it is never held while the store is written or a job
is told.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..persistence.steps import write_steps

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..persistence.base import CheckpointStore
    from ..persistence.steps import Step

__all__ = ["BATCH_LIMIT", "LINGER", "StepOwner", "StepWriter"]

_log = logging.getLogger("routilux.runtime.step_writer")

#: Seconds the thread waits for more steps before it ends.
LINGER = 0.05
#: The most steps written in one call (a bound on how long children wait).
BATCH_LIMIT = 1024


class StepOwner(Protocol):
    """Whose steps a writer writes: told of them in batches."""

    def steps_written(
        self, written: Sequence[tuple[Any, BaseException | None]]
    ) -> None:
        """Its steps of a batch were written: ``(token, error)`` in queued order.

        ``token`` is what :meth:`StepWriter.submit` was given with the step;
        ``error`` None when the step was written. Runs on the writer's thread.
        """


class StepWriter:
    """Writes the queued steps of a flow's jobs to one store, in batches.

    Args:
        store: Where the steps go.
        name: The thread's name.

    Thread-safe.
    """

    def __init__(self, store: CheckpointStore, name: str) -> None:
        self.store = store
        self._name = name
        # Guards _queue, _thread and _busy.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the thread waits for steps
        self._idle = threading.Condition(self._lock)  # drain() waits for the thread
        self._queue: list[tuple[Step, StepOwner, Any]] = []
        self._thread: threading.Thread | None = None
        self._busy = False  # the thread is writing or telling a batch

    def submit(self, step: Step, owner: StepOwner, token: Any) -> None:
        """Queue ``step``; ``owner`` is told ``token`` once it is written or failed."""
        with self._lock:
            self._queue.append((step, owner, token))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=self._name, daemon=True
                )
                self._thread.start()
            elif not self._busy:
                self._wake.notify()

    def _take(self) -> list[tuple[Step, StepOwner, Any]]:
        """Wait (lock held) for queued steps; [] once idle for ``LINGER`` s."""
        self._busy = False
        if not self._queue:
            self._idle.notify_all()
        end = time.monotonic() + LINGER
        while not self._queue:
            left = end - time.monotonic()
            if left <= 0:
                return []
            self._wake.wait(left)
        self._busy = True
        batch = self._queue[:BATCH_LIMIT]
        del self._queue[:BATCH_LIMIT]
        return batch

    def _loop(self) -> None:
        while True:
            with self._lock:
                batch = self._take()
                if not batch:
                    self._thread = None
                    self._idle.notify_all()
                    return
            errors = write_steps(self.store, [step for step, _, _ in batch])
            told: dict[int, tuple[StepOwner, list[tuple[Any, BaseException | None]]]]
            told = {}
            for (_, owner, token), error in zip(batch, errors, strict=True):
                mine = told.get(id(owner))
                if mine is None:
                    mine = told[id(owner)] = (owner, [])
                mine[1].append((token, error))
            for owner, written in told.values():
                _tell(owner, written)

    def drain(self, timeout: float | None) -> bool:
        """Wait until every queued step is written and told; False on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._thread is threading.current_thread():
                return not self._queue
            while self._queue or self._busy:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
            return True


def _tell(owner: StepOwner, written: list[tuple[Any, BaseException | None]]) -> None:
    """Tell an owner of its steps; what that raises must not stop the others."""
    try:
        owner.steps_written(written)
    except BaseException:  # noqa: BLE001 - logged: the job records its own errors
        _log.exception("telling a job its checkpoint steps were written")
