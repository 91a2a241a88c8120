"""FakeClock: time that moves only when a test says so.

Give it where routilux takes a clock or a sleep: ``Window(seconds, clock=clock)``,
``ErrorHandler(sleep=clock.sleep)`` (retries then back off in no real time, and
the waits are recorded), a built-in's ``clock`` setting, or your own routines.
"""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A clock for tests: ``clock()`` reads it, :meth:`advance` moves it.

    Args:
        start: The time it starts at (seconds, any origin).

    Thread-safe.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()  # guards _now and slept
        #: Every wait asked of :meth:`sleep`, in order.
        self.slept: list[float] = []

    def __call__(self) -> float:
        """The current time."""
        return self.now

    @property
    def now(self) -> float:
        """The current time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock on by ``seconds`` (>= 0); returns the new time.

        Raises:
            ValueError: For a negative step (time does not go back).
        """
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds!r} seconds)")
        with self._lock:
            self._now += seconds
            return self._now

    def sleep(self, seconds: float) -> None:
        """Record the wait and advance by it at once (a drop-in for time.sleep)."""
        with self._lock:
            self.slept.append(seconds)
            self._now += max(0.0, seconds)

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now:g})"
