"""Latch: a job's done signal, a ``threading.Event`` built from one lock.

Every job needs a done signal, and a service may run thousands of small jobs a
second. ``threading.Event()`` builds a Condition around a Lock (a few microseconds,
a sizeable share of a small job); a Latch is one lock, held while the latch is
closed. A waiter takes the lock (blocking until it is released) and hands it back
at once, so every waiter gets through once the latch opens.

The flag, not the lock, answers :meth:`is_set`: a waiter holds the lock for a
moment on its way through, and must not make the latch look closed meanwhile.
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["OPEN", "Latch"]


class Latch:
    """``set``/``clear``/``is_set``/``wait`` as :class:`threading.Event` has them.

    Starts closed. Thread-safe.
    """

    __slots__ = ("_flag", "_gate")

    def __init__(self) -> None:
        self._flag = False
        self._gate = threading.Lock()
        self._gate.acquire()

    def is_set(self) -> bool:
        """True while the latch is open."""
        return self._flag

    def set(self) -> None:
        """Open the latch: wake every waiter, and let later waits through."""
        if self._flag:
            return
        self._flag = True
        self._open_gate()

    def clear(self) -> None:
        """Close the latch again (a paused job that resumes)."""
        if not self._flag:
            return
        self._flag = False
        self._gate.acquire()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the latch is open, or ``timeout`` seconds have passed.

        Returns:
            True when the latch is open, False on a timeout.
        """
        if self._flag:
            return True
        if self._gate.acquire(timeout=-1 if timeout is None else timeout):
            self._open_gate()
            return True
        return self._flag

    def _open_gate(self) -> None:
        # Two openers may race (a second set, or a waiter passing through as the
        # latch opens): the gate is open either way once one release happened.
        with contextlib.suppress(RuntimeError):
            self._gate.release()

    def __repr__(self) -> str:
        return f"<Latch {'open' if self._flag else 'closed'}>"


class _OpenLatch(Latch):
    """A latch that is open for good: the one every finished job shares."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()
        self.set()

    def clear(self) -> None:
        """Refused: only a paused job's latch closes again, and it has its own."""
        raise RuntimeError("the latch of a finished job never closes again")


#: The done latch of every job with a final status: a finished job keeps no
#: lock of its own, so the garbage collector has two objects fewer to walk per
#: finished job a program keeps.
OPEN: Latch = _OpenLatch()
