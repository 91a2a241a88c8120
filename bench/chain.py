"""Routines the benchmark cases share (jobs, chain, validate, connect, checkpoint)."""

from __future__ import annotations

import threading

from routilux import Routine


class ChainSource(Routine):
    """Emits ``count`` events, one per loop turn, from one activation."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, count: int) -> None:
        emit = self.emit
        for i in range(count):
            emit("output", value=i)


class Relay(Routine):
    """One chain stage: passes the value on."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.relay)
        self.define_event("output", ["value"])

    def relay(self, value: int) -> None:
        self.emit("output", value=value)


class CountingSink(Routine):
    """Last chain stage: counts arrivals (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.arrive)
        self.define_event("output", ["value"])
        self.arrived = 0
        self.arrivals_lock = threading.Lock()

    def arrive(self, value: int) -> None:
        with self.arrivals_lock:
            self.arrived += 1
