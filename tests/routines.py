"""Small routines shared by the tests."""

from __future__ import annotations

import threading
from typing import Any

from routilux import Routine


class Source(Routine):
    """Emits ``count`` items (config) on ``output`` when triggered."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(count=1, tag="s")
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value", "tag"])

    def fire(self, **params: Any) -> None:
        tag = params.get("tag", self.get_config("tag"))
        for i in range(self.get_config("count")):
            self.emit("output", value=i, tag=tag)


class Relay(Routine):
    """Passes ``value`` on, adding ``add`` (config)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(add=0)
        self.define_slot("input", handler=self.relay)
        self.define_event("output", ["value", "tag"])

    def relay(self, value: Any = None, tag: Any = None) -> None:
        self.emit("output", value=value + self.get_config("add"), tag=tag)


class Collector(Routine):
    """Records every payload it receives (thread-safe)."""

    def __init__(self, merge_strategy: str = "override") -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self._guard = threading.Lock()
        self.define_slot("input", handler=self.collect, merge_strategy=merge_strategy)

    def collect(self, **data: Any) -> None:
        with self._guard:
            self.received.append(data)
        self.increment_stat("calls")


class Boom(Routine):
    """Raises on every call, counting calls."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.explode)
        self.define_slot("input", handler=self.explode)
        self.define_event("output", ["value"])

    def explode(self, **data: Any) -> None:
        self.increment_stat("calls")
        raise RuntimeError("boom")
