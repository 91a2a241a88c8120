"""Routines the Ray tests run: importable by workers, settings in config.

Ray workers rebuild these from the flow document, so they follow the remote
rules: every setting is in ``config``, and what they see is in their stats or
their emits (the driver's instance never runs a handler).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from routilux import Routine


class Source(Routine):
    """Emits ``count`` numbers on ``out``."""

    def __init__(self, count: int = 0) -> None:
        super().__init__()
        self.set_config(count=count)
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, **_: Any) -> None:
        for value in range(self.get_config("count", 0)):
            self.emit("out", value=value)


class Square(Routine):
    """Emits the square of what arrives, and counts its calls in stats."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: int = 0) -> None:
        self.increment_stat("calls")
        self.emit("out", value=value * value)


class Collect(Routine):
    """Keeps what arrives (stats ``seen``) and returns it."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None) -> Any:
        self._track_operation("seen", value=value)
        return value


class Pid(Routine):
    """Returns the process id it runs in."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)

    def fire(self, **_: Any) -> int:
        return os.getpid()


class Boom(Routine):
    """Raises the error its config names: ``plain`` or ``unpicklable``."""

    def __init__(self, kind: str = "plain") -> None:
        super().__init__()
        self.set_config(kind=kind)
        self.define_slot("trigger", handler=self.fire)

    def fire(self, **_: Any) -> None:
        if self.get_config("kind") == "unpicklable":
            raise Unpicklable("cannot travel", lambda: None)
        raise ValueError("boom on the worker")


class Unpicklable(Exception):
    """An error that pickles but cannot be read back (two required arguments)."""

    def __init__(self, message: str, hook: Any) -> None:
        super().__init__(message)
        self.hook = hook


class Stall(Routine):
    """Blocks the first call until killed; later calls return at once.

    The first call creates the file named in config ``marker`` and then waits
    (up to ``hold`` seconds); the test kills the actor meanwhile. A call that
    finds the marker (a retry on the restarted actor) returns ``"done"``.
    """

    def __init__(self, marker: str = "", hold: float = 60.0) -> None:
        super().__init__()
        self.set_config(marker=marker, hold=hold)
        self.define_slot("trigger", handler=self.fire)

    def fire(self, **_: Any) -> str:
        marker = Path(self.get_config("marker"))
        if marker.exists():
            return "done"
        marker.write_text(str(os.getpid()))
        deadline = time.monotonic() + float(self.get_config("hold"))
        while time.monotonic() < deadline:  # killed long before this ends
            time.sleep(0.05)
        return "not killed"


class Sleeper(Routine):
    """Sleeps ``seconds`` (config) per call: an I/O-bound handler."""

    def __init__(self, seconds: float = 0.05) -> None:
        super().__init__()
        self.set_config(seconds=seconds)
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None) -> None:
        time.sleep(float(self.get_config("seconds")))
        self.increment_stat("calls")


class Overlap(Routine):
    """Records in stats the most calls it saw running at once (``most``)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self._guard = threading.Lock()
        self._running = 0

    def take(self, value: Any = None) -> None:
        with self._guard:
            self._running += 1
            if self._running > self.get_stat("most", 0):
                self.set_stat("most", self._running)
        time.sleep(0.005)  # a little time in which an overlap would show
        with self._guard:
            self._running -= 1
        self.increment_stat("calls")


class Counted(Routine):
    """Counts its calls per session in ``session_state`` and returns the count."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)

    def fire(self, **_: Any) -> int:
        state = self.session_state
        state["calls"] = state.get("calls", 0) + 1
        return int(state["calls"])


class AsyncDouble(Routine):
    """An ``async def`` handler: the worker runs it to its end on an event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    async def take(self, value: int = 0) -> None:
        await asyncio.sleep(0.001)
        self.emit("out", value=value * 2)


class Unsendable(Routine):
    """Returns a value Ray cannot pickle (a lock)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)

    def fire(self, **_: Any) -> Any:
        return threading.Lock()
