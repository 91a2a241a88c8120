"""The three-routine flow the review-2 resume tests pause and resume.

``start`` -> ``held`` -> ``last``: ``held`` waits at its gate, so a pause asked
for meanwhile settles with one task held for ``last`` once the gate opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routilux import Flow, Routine

if TYPE_CHECKING:
    import threading

WAIT = 20.0


class Start(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, value: int = 0) -> None:
        self.emit("out", value=value)


class Held(Routine):
    """Waits for ``gate``, then emits: the pause settles with one task held."""

    def __init__(self, entered: threading.Event, gate: threading.Event) -> None:
        super().__init__()
        self.entered, self.gate = entered, gate
        self.define_slot("inp", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: int) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT)
        self.emit("out", value=value)


class Last(Routine):
    """Notes each value it gets; with a gate, says it entered and waits there."""

    def __init__(
        self,
        entered: threading.Event | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        super().__init__()
        self.entered, self.gate = entered, gate
        self.runs: list[int] = []
        self.define_slot("inp", handler=self.take)

    def take(self, value: int) -> None:
        self.runs.append(value)  # list.append: atomic
        if self.entered is not None:
            self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT)


def wire(flow: Flow, held: Held, last: Last) -> None:
    """Add ``start``, ``held`` and ``last`` to ``flow``, in a chain."""
    flow.add_routine(Start(), "start")
    flow.add_routine(held, "held")
    flow.add_routine(last, "last")
    flow.connect("start", "out", "held", "inp")
    flow.connect("held", "out", "last", "inp")
