"""Backpressure: a bound on the activations a flow has handed to its strategies.

``Flow(max_pending=N)`` bounds how many activations of the flow are *pending*:
handed to a strategy (queued there, or running) and not yet finished. Work
entering from outside the pool (``execute``, ``resume``, ``replay``) waits for
room (``on_full="block"``) or is refused with :class:`~routilux.QueueFullError`
(``on_full="raise"``). An emit made by a handler never waits, so the pool cannot
deadlock on itself: what it emits beyond the bound is *held* here, counted as
its job's work but not handed to the strategy, and handed over in emission order
as pending activations finish.

A job the sequential strategy runs in its caller's thread is the exception: only
that thread can run its activations, so they are never held (holding them could
leave nothing to release them); they are counted, so new work from outside still
waits for them.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from ..checks import wait_limit
from ..exceptions import QueueFullError, StrategyShutdownError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .activation import Activation

__all__ = ["FlowPressure"]


class FlowPressure:
    """The pending count of one flow, its bound, and the activations held back.

    Args:
        flow_id: The flow's id (for messages).
        limit: The most activations pending at once.
        on_full: ``"block"`` or ``"raise"`` for work entering from outside.

    Thread-safe.
    """

    def __init__(self, flow_id: str, limit: int, on_full: str) -> None:
        self.flow_id = flow_id
        self.limit = limit
        self.on_full = on_full
        self._count = 0
        self._held: deque[Activation] = deque()
        self._closed = False
        self._lock = threading.Lock()  # guards all of the above and the figures
        self._room = threading.Condition(self._lock)
        #: The highest pending count seen.
        self.most = 0

    def admit(self, activations: Sequence[Activation], hold: bool) -> list[Activation]:
        """Count ``activations`` in; the ones to hand to the strategy now.

        With ``hold``, those over the bound (or behind ones already held) are
        held until room frees; without it all are handed over at once.
        """
        with self._lock:
            if not hold or (
                not self._held and self._count + len(activations) <= self.limit
            ):
                self._count += len(activations)
                self.most = max(self.most, self._count)
                return list(activations)
            now: list[Activation] = []
            for activation in activations:
                if self._count < self.limit and not self._held:
                    self._count += 1
                    now.append(activation)
                else:
                    self._held.append(activation)
            self.most = max(self.most, self._count)
            return now

    def release(self, _: Any = None) -> None:
        """One pending activation finished: hand held ones over as room allows.

        Also a future's done callback (an async handler that finished).
        """
        with self._lock:
            self._count -= 1
            ready: list[Activation] = []
            while self._held and self._count < self.limit:
                ready.append(self._held.popleft())
                self._count += 1
            if self._count < self.limit:
                self._room.notify_all()
        for activation in ready:
            lane = activation.job.lane
            assert lane is not None
            lane.submit(activation)

    def wait_for_room(self, timeout: float | None = None) -> None:
        """Block (or refuse) while the flow is full; for work from outside.

        Raises:
            QueueFullError: With ``on_full="raise"`` when the flow is full, or
                when ``timeout`` passed first.
            StrategyShutdownError: When the flow shut down while waiting.
        """
        with self._room:
            if self._count < self.limit and not self._held:
                return
            if self.on_full == "raise":
                raise self._full()
            if not self._room.wait_for(
                lambda: self._closed or (self._count < self.limit and not self._held),
                wait_limit(timeout),
            ):
                raise self._full()
            if self._closed:
                raise StrategyShutdownError(
                    f"flow {self.flow_id!r} shut down while waiting for room"
                )

    def close(self) -> None:
        """Wake every waiter: the flow is shutting down."""
        with self._room:
            self._closed = True
            self._room.notify_all()

    def _full(self) -> QueueFullError:
        return QueueFullError(
            f"flow {self.flow_id!r} is full: {self._count} activations pending "
            f"(max_pending={self.limit}), {len(self._held)} held"
        )

    def stats(self) -> dict[str, int]:
        """``pending``, ``held``, ``max_pending`` and the ``most`` pending seen."""
        with self._lock:
            return {
                "pending": self._count,
                "held": len(self._held),
                "max_pending": self.limit,
                "most": self.most,
            }
