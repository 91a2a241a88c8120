"""A source, a relay and a chain builder, shared by the chain tests of issue 8."""

from __future__ import annotations

from typing import Any

from routilux import Flow, Routine


class CountSource(Routine):
    """Emits ``value`` 0 .. count-1 on ``output`` when triggered."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, count: int) -> None:
        for value in range(count):
            self.emit("output", value=value)


class PassOn(Routine):
    """Emits what it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.relay)
        self.define_event("output", ["value"])

    def relay(self, value: int) -> None:
        self.emit("output", value=value)


def chain(sink: Routine, relays: int, **flow_options: Any) -> Flow:
    """``source`` -> ``relay0`` .. ``relay<relays-1>`` -> ``sink`` (its ``input``)."""
    flow = Flow(**flow_options)
    flow.add_routine(CountSource(), "source")
    previous = "source"
    for index in range(relays):
        flow.add_routine(PassOn(), f"relay{index}")
        flow.connect(previous, "output", f"relay{index}", "input")
        previous = f"relay{index}"
    flow.add_routine(sink, "sink")
    flow.connect(previous, "output", "sink", "input")
    return flow
