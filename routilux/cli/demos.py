"""The flows the bundled demos run: fetchers into a collector, and a session desk.

Kept apart from :mod:`routilux.cli.demo` (which runs and explains them) so the
routines can be read on their own. The fetchers only sleep: no network needed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..flow import Flow
from ..resilience import ErrorHandler, ErrorStrategy
from ..routine import Routine

__all__ = ["SOURCES", "SessionDesk", "fetch_flow", "session_flow"]

SOURCES = ("orders", "customers", "inventory", "prices")


class Fanout(Routine):
    """Starts the job: asks every connected fetcher for ``request``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("go", ["request"])

    def start(self, request: str = "daily") -> None:
        """Ask the fetchers."""
        self.emit("go", request=request)


class Fetcher(Routine):
    """Waits ``delay`` seconds as if on the network, then emits its rows.

    Config: ``source``, ``delay``, ``fail_first`` (calls that raise before one
    succeeds; -1: every call raises).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(source="source", delay=0.05, fail_first=0)
        self.define_slot("trigger", handler=self.fetch)
        self.define_event("output", ["rows", "source"])
        self.calls = 0
        self.calls_lock = threading.Lock()

    def fetch(self, request: str) -> None:
        source = self.get_config("source")
        time.sleep(self.get_config("delay"))
        with self.calls_lock:
            self.calls += 1
            calls = self.calls
        failing = self.get_config("fail_first")
        if failing < 0 or calls <= failing:
            raise ConnectionError(f"{source}: no answer (call {calls})")
        self.emit("output", rows=f"{request} {source} rows", source=source)


class Collector(Routine):
    """Gathers what the fetchers send (an ``append`` slot)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.collect, merge_strategy="append")
        self.lock = threading.Lock()
        self.sources: set[str] = set()

    def collect(self, rows: Any, source: Any) -> None:
        with self.lock:
            self.sources.update(source if isinstance(source, list) else [source])


def fetch_flow(
    flow_id: str,
    strategy: str = "concurrent",
    *,
    delay: float = 0.05,
    flaky: dict[str, int] | None = None,
) -> Flow:
    """A flow: fanout -> one fetcher per source -> collector.

    ``flaky`` maps a source to its ``fail_first`` setting; a fetcher that fails
    only at first retries (twice), one that always fails lets the job continue.
    """
    flow = Flow(flow_id, execution_strategy=strategy, max_workers=len(SOURCES))
    flow.add_routine(Fanout(), "fanout")
    flow.add_routine(Collector(), "collector")
    for source in SOURCES:
        fetcher = Fetcher()
        failing = (flaky or {}).get(source, 0)
        fetcher.set_config(source=source, delay=delay, fail_first=failing)
        if failing > 0:
            fetcher.set_error_handler(
                ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.0)
            )
        elif failing < 0:
            fetcher.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
        flow.add_routine(fetcher, f"fetch_{source}")
        flow.connect("fanout", "go", f"fetch_{source}", "trigger")
        flow.connect(f"fetch_{source}", "output", "collector", "input")
    return flow


class Client(Routine):
    """Sends a session's questions one after another."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.send)
        self.define_event("ask", ["question"])

    def send(self, questions: list[str]) -> None:
        for question in questions:
            self.emit("ask", question=question)


class SessionDesk(Routine):
    """Answers questions; remembers, per session, what that session asked."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.answer)
        self.lock = threading.Lock()
        self.memory: dict[str, list[str]] = {}

    def answer(self, question: str) -> str:
        """Remember ``question`` for its session; say how many it asked."""
        # One activation of a session at a time: its state needs no lock.
        asked = self.session_state.setdefault("asked", [])
        asked.append(question)
        with self.lock:
            self.memory[str(self.get_session())] = list(asked)
        return f"{question} (question {len(asked)} of this session)"


def session_flow(flow_id: str) -> Flow:
    """A flow: client -> desk, on a pool of 3 workers."""
    flow = Flow(flow_id, execution_strategy="concurrent", max_workers=3)
    flow.add_routine(Client(), "client")
    flow.add_routine(SessionDesk(), "desk")
    flow.connect("client", "ask", "desk", "input")
    return flow
