"""Latch: a job's done signal, a ``threading.Event`` built from one lock.

Every job needs a done signal, and a service may run thousands of small jobs a
second. ``threading.Event()`` builds a Condition around a Lock (a few microseconds,
a sizeable share of a small job); a Latch is a flag and, once somebody waits, one
lock (the *gate*), held while the latch is closed. A waiter takes the gate
(blocking until it is released) and hands it back at once, so every waiter gets
through once the latch opens. Most jobs are never waited on one by one (a
service waits for the flow, or reads a sink): their latch makes no lock at all,
one object fewer for the garbage collector per job in a backlog.

The flag, not the gate, answers :meth:`is_set`: a waiter holds the gate for a
moment on its way through, and must not make the latch look closed meanwhile.

The first waiter makes the gate, then reads the flag again; :meth:`set` writes
the flag, then reads the gate. Whichever comes second sees the other's write (the
GIL orders them), so a waiter either finds the latch open or a gate that
:meth:`set` releases. Once a gate exists, :meth:`set` releases it and
:meth:`clear` drops it under ``_MAKING``, the lock the gate is made under: a
resume landing between ``set`` writing the flag and reading the gate would
otherwise leave the waiters of the dropped gate blocked for good (``clear`` opens
the gate it drops), and let ``set`` open the next waiter's gate on a closed latch.
"""

from __future__ import annotations

import contextlib
import threading

from ._locks import take

__all__ = ["OPEN", "Latch"]


class Latch:
    """``set``/``clear``/``is_set``/``wait`` as :class:`threading.Event` has them.

    Starts closed. Thread-safe.
    """

    __slots__ = ("_flag", "_gate")

    def __init__(self) -> None:
        self._flag = False
        self._gate: threading.Lock | None = None  # made by the first waiter

    def is_set(self) -> bool:
        """True while the latch is open."""
        return self._flag

    def set(self) -> None:
        """Open the latch: wake every waiter, and let later waits through."""
        if self._flag:
            return
        self._flag = True
        if self._gate is None:
            return  # a waiter making a gate now finds the flag set
        # Under the gate maker's lock: a resume (clear) that landed after the
        # flag was written has opened the gate it dropped, and the gate now
        # there (a later waiter's) must stay closed unless the latch is open.
        take(_MAKING)  # every job a caller waits on ends here: no convoy
        try:
            gate = self._gate
            if gate is not None and self._flag:
                _open(gate)
        finally:
            _MAKING.release()

    def clear(self) -> None:
        """Close the latch again (a paused job that resumes)."""
        if not self._flag:
            return
        with _MAKING:
            if not self.is_set():  # another clear came first
                return
            gate, self._gate = self._gate, None
            self._flag = False
        # Later waiters make a new gate. The old one is opened here: a set()
        # that wrote the flag before this clear may read the new gate, not it,
        # and its waiters saw the latch open (they return True).
        if gate is not None:
            _open(gate)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the latch is open, or ``timeout`` seconds have passed.

        Returns:
            True when the latch is open, False on a timeout.
        """
        if self._flag:
            return True
        gate = self._gate
        if gate is None:
            with _MAKING:  # two first waiters must not each make one
                gate = self._gate
                if gate is None:
                    gate = threading.Lock()
                    gate.acquire()
                    self._gate = gate
        if self.is_set():  # set() ran before it could see the gate
            return True
        if gate.acquire(timeout=-1 if timeout is None else timeout):
            _open(gate)  # on to the next waiter
            return True
        return self._flag

    def __repr__(self) -> str:
        return f"<Latch {'open' if self._flag else 'closed'}>"


def _open(gate: threading.Lock) -> None:
    # Two openers may race (a second set, or a waiter passing through as the
    # latch opens): the gate is open either way once one release happened.
    with contextlib.suppress(RuntimeError):
        gate.release()


#: Guards the making of gates, and a gate's change by set() or clear() (only
#: when somebody waited: most latches never take it).
_MAKING = threading.Lock()


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
#: latch of its own, so the garbage collector has fewer objects to walk per
#: finished job a program keeps.
OPEN: Latch = _OpenLatch()
