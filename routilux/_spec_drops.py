"""A process-wide count of dropped routine specs, for caches built from specs.

A routine keeps its :class:`~routilux.spec.RoutineSpec` until a setting, slot or
event changes, when it drops it (the next ``get_spec`` builds a new one). A
cache built from specs (a flow's topology, checked at every job start) compares
:data:`drops` with the value it saw, and compares its specs one by one only when
it moved. In the base layer: the model drops specs, the state layer reads them.
"""

from __future__ import annotations

import threading

__all__ = ["count_drop", "drops"]

#: How many times a routine in this process dropped its spec.
drops = 0
_LOCK = threading.Lock()


def count_drop() -> None:
    """Count a dropped spec. Call it after the drop.

    A reader that reads :data:`drops` before looking at the specs then either
    sees the drop among them, or finds :data:`drops` moved the next time.
    """
    global drops
    with _LOCK:
        drops += 1
