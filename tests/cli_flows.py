"""Flows the command-line tests name as TARGET (``tests/cli_flows.py:make_...``)."""

from __future__ import annotations

import threading

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine


class Numbers(Routine):
    """Emits 0 .. count-1."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("value", ["value"])

    def fire(self, **params: int) -> None:
        for n in range(params.get("count", 5)):
            self.emit("value", value=n)


class Double(Routine):
    """Emits twice what it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.double)
        self.define_event("value", ["value"])

    def double(self, value: int) -> None:
        self.emit("value", value=value * 2)


class Total(Routine):
    """Returns the running total of what it got (the job's result)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.add)
        self.lock = threading.Lock()
        self.total = 0

    def add(self, value: int) -> int:
        with self.lock:
            self.total += value
            return self.total


class FirstCallFails(Routine):
    """Fails its first call, then passes values on."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.relay)
        self.define_event("value", ["value"])
        self.lock = threading.Lock()
        self.calls = 0

    def relay(self, value: int) -> None:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            raise ConnectionError("first call fails")
        self.emit("value", value=value)


class Broken(Routine):
    """Fails every call."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.parse)

    def parse(self, value: int) -> None:
        raise ValueError(f"cannot parse {value}")


class Gate(Routine):
    """Passes values on; while ``closed`` is set by a test, waits for ``opened``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.relay)
        self.define_event("value", ["value"])
        self.closed = False
        self.reached = threading.Event()
        self.opened = threading.Event()

    def relay(self, value: int) -> None:
        if self.closed:
            self.reached.set()
            self.opened.wait(10)
        self.emit("value", value=value)


def make_counting() -> Flow:
    """numbers -> double -> total: 1 + 5 + 5 activations with count=5."""
    flow = Flow("cli-counting")
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Double(), "double")
    flow.add_routine(Total(), "total")
    flow.connect("numbers", "value", "double", "input")
    flow.connect("double", "value", "total", "input")
    return flow


def make_retrying() -> Flow:
    """numbers -> flaky (retried) -> total; the flaky routine's first call fails."""
    flow = Flow("cli-retrying")
    flaky = FirstCallFails()
    flaky.set_error_handler(
        ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.0)
    )
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(flaky, "flaky")
    flow.add_routine(Total(), "total")
    flow.connect("numbers", "value", "flaky", "input")
    flow.connect("flaky", "value", "total", "input")
    return flow


def make_failing() -> Flow:
    """numbers -> broken (STOP): the job fails at broken's first call."""
    flow = Flow("cli-failing")
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Broken(), "broken")
    flow.connect("numbers", "value", "broken", "input")
    return flow


def make_continuing() -> Flow:
    """numbers -> broken (CONTINUE): every call fails, the job completes."""
    flow = Flow("cli-continuing")
    broken = Broken()
    broken.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(broken, "broken")
    flow.connect("numbers", "value", "broken", "input")
    return flow


def make_gated() -> Flow:
    """numbers -> gate -> total, on a pool of 2 workers."""
    flow = Flow("cli-gated", execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Gate(), "gate")
    flow.add_routine(Total(), "total")
    flow.connect("numbers", "value", "gate", "input")
    flow.connect("gate", "value", "total", "input")
    return flow


class Slow(Routine):
    """Takes a while per value."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.work)

    def work(self, value: int) -> None:
        threading.Event().wait(0.05)


def make_slow() -> Flow:
    """numbers -> slow on 2 workers: 0.05 s per value."""
    flow = Flow("cli-slow", execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Slow(), "slow")
    flow.connect("numbers", "value", "slow", "input")
    return flow


def make_gated_without_total() -> Flow:
    """make_gated's flow id, without its total routine: another shape."""
    flow = Flow("cli-gated", execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Gate(), "gate")
    flow.connect("numbers", "value", "gate", "input")
    return flow


def make_two_entries() -> Flow:
    """Two routines that can start a job: --entry must choose."""
    flow = Flow("cli-two-entries")
    flow.add_routine(Numbers(), "first")
    flow.add_routine(Numbers(), "second")
    return flow


def make_no_entry() -> Flow:
    """double -> total: nothing can start a job (an error finding)."""
    flow = Flow("cli-no-entry")
    flow.add_routine(Double(), "double")
    flow.add_routine(Total(), "total")
    flow.connect("double", "value", "total", "input")
    return flow


not_a_flow = 42


def make_nothing() -> None:
    """Returns no flow."""


def make_raising() -> Flow:
    """Raises while building."""
    raise RuntimeError("cannot build the flow")
