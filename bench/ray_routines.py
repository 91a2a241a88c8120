"""Routines of the ``ray`` case, in a module Ray workers import (bench/ is on
their PYTHONPATH). Settings live in config, as remote routines need."""

from __future__ import annotations

import time
from typing import Any

from routilux import Routine


def spin(rounds: int) -> int:
    """Pure-Python work the GIL serializes."""
    total = 0
    for i in range(rounds):
        total += i * i % 7
    return total


class Fan(Routine):
    """Emits ``count`` values on ``out``."""

    def __init__(self, count: int = 1) -> None:
        super().__init__()
        self.set_config(count=count)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, **_: Any) -> None:
        for value in range(self.get_config("count", 1)):
            self.emit("out", value=value)


class Spin(Routine):
    """CPU-bound: ``rounds`` (config) of pure-Python arithmetic per call."""

    def __init__(self, rounds: int = 0) -> None:
        super().__init__()
        self.set_config(rounds=rounds)
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: Any = None) -> None:
        self.emit("out", value=spin(self.get_config("rounds", 0)))


class Nap(Routine):
    """I/O-bound: sleeps ``seconds`` (config) per call, then emits."""

    def __init__(self, seconds: float = 0.05) -> None:
        super().__init__()
        self.set_config(seconds=seconds)
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: Any = None) -> None:
        time.sleep(self.get_config("seconds", 0.05))
        self.emit("out", value=value)


class Noop(Routine):
    """Does nothing but count its calls (stats ``calls``)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None) -> None:
        self.increment_stat("calls")


class Tally(Routine):
    """Counts what arrives (stats ``calls``)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None) -> None:
        self.increment_stat("calls")


class BareHost:
    """The baseline actor: one method with the strategy's call arguments."""

    def call(
        self, key: str, rid: str, slot: str, payload: dict[str, Any], lane: Any
    ) -> tuple[str, None, list[Any]]:
        return ("done", None, [])


class Hop(Routine):
    """Passes ``value + 1`` back to itself until ``hops`` (config), counting."""

    def __init__(self, hops: int = 1) -> None:
        super().__init__()
        self.set_config(hops=hops)
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: int = 0) -> None:
        self.increment_stat("calls")
        if value + 1 < self.get_config("hops", 1):
            self.emit("out", value=value + 1)
