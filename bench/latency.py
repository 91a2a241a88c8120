"""Cases ``fanout`` and ``step2``: wall time of flows whose handlers sleep.

fanout: one source emits once to FAN_OUT routines that each sleep FAN_SLEEP, on
    FAN_WORKERS workers. Compared with the ideal ceil(FAN_OUT/FAN_WORKERS) x
    FAN_SLEEP and with a bare ThreadPoolExecutor(FAN_WORKERS) doing the same
    sleeps (one task submitting them all).
step2: seed 004 step 2: three ``execute`` calls of routines sleeping 0.2 s on a
    3-worker concurrent flow, then ``wait_for_completion``; wall time / 0.2 s.

Both are timed from the first ``execute`` to ``wait_for_completion()`` returning
True; every run checks that every sleeper ran and every job completed. Their
targets come from issue 3 (issue 8 only asks that nothing gets slower).
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import (
    BenchFailure,
    Options,
    Row,
    check,
    median,
    repeat,
    repeat_pair,
    say,
    verdict_at_most,
    wait,
)

from routilux import Flow, Routine

FAN_OUT = 100
FAN_WORKERS = 20
FAN_SLEEP = 0.010
STEP2_DELAY = 0.2
STEP2_ROUTINES = 3

TARGET_FAN_RATIO = 1.2  # issue 3
TARGET_STEP2_RATIO = 1.15  # issue 3


class FanSource(Routine):
    """Emits one event to every connected sleeper."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, **kwargs: Any) -> None:
        self.emit("output", value=1)


class Sleeper(Routine):
    """Sleeps FAN_SLEEP seconds per activation, then counts on a shared counter."""

    def __init__(self, counter: list[int], lock: threading.Lock) -> None:
        super().__init__()
        self.define_slot("input", handler=self.work)
        self.counter = counter
        self.counter_lock = lock

    def work(self, **kwargs: Any) -> None:
        time.sleep(FAN_SLEEP)
        with self.counter_lock:
            self.counter[0] += 1


class SlowOperation(Routine):
    """Seed 004 step 2's SlowIOOperation, counting its runs."""

    def __init__(self, counter: list[int], lock: threading.Lock) -> None:
        super().__init__()
        self.set_config(delay=STEP2_DELAY)
        self.define_slot("trigger", handler=self.operate)
        self.define_event("output", ["result"])
        self.counter = counter
        self.counter_lock = lock

    def operate(self, **kwargs: Any) -> None:
        time.sleep(self.get_config("delay", STEP2_DELAY))
        with self.counter_lock:
            self.counter[0] += 1
        self.emit("output", result="done")


def routilux_fan_out() -> float:
    flow = Flow(
        flow_id="bench-fan-out",
        execution_strategy="concurrent",
        max_workers=FAN_WORKERS,
    )
    counter, lock = [0], threading.Lock()
    flow.add_routine(FanSource(), "source")
    for i in range(FAN_OUT):
        flow.add_routine(Sleeper(counter, lock), f"sleeper{i}")
        flow.connect("source", "output", f"sleeper{i}", "input")
    try:
        start = time.perf_counter()
        job = flow.execute("source")
        wait(flow, "fan-out")
        elapsed = time.perf_counter() - start
        check("fan-out", counter[0], FAN_OUT, job)
    finally:
        flow.shutdown(wait=True)
    return elapsed


def bare_fan_out() -> float:
    executor = ThreadPoolExecutor(FAN_WORKERS, thread_name_prefix="bench-bare")
    lock = threading.Lock()
    done = threading.Event()
    counter = [0]

    def sleeper() -> None:
        time.sleep(FAN_SLEEP)
        with lock:
            counter[0] += 1
            if counter[0] == FAN_OUT:
                done.set()

    def source() -> None:
        for _ in range(FAN_OUT):
            executor.submit(sleeper)

    try:
        start = time.perf_counter()
        executor.submit(source)
        if not done.wait(60):
            raise BenchFailure("bare fan-out did not finish in 60 s")
        elapsed = time.perf_counter() - start
    finally:
        executor.shutdown(wait=True)
    check("bare fan-out", counter[0], FAN_OUT)
    return elapsed


def routilux_step2() -> float:
    flow = Flow(
        flow_id="bench-step2",
        execution_strategy="concurrent",
        max_workers=STEP2_ROUTINES,
    )
    counter, lock = [0], threading.Lock()
    ids = [
        flow.add_routine(SlowOperation(counter, lock), f"op{i}")
        for i in range(1, STEP2_ROUTINES + 1)
    ]
    try:
        start = time.perf_counter()
        jobs = [flow.execute(routine_id) for routine_id in ids]
        wait(flow, "seed 004 step 2", timeout=30)
        elapsed = time.perf_counter() - start
        for job in jobs:
            check("seed 004 step 2", counter[0], STEP2_ROUTINES, job)
    finally:
        flow.shutdown(wait=True)
    return elapsed


def case_fanout(opts: Options) -> list[Row]:
    fan, bare = repeat_pair(
        routilux_fan_out, bare_fan_out, opts.repeats + 2, opts.budget
    )
    fan_ms, bare_ms = median(fan) * 1e3, median(bare) * 1e3
    ideal_ms = math.ceil(FAN_OUT / FAN_WORKERS) * FAN_SLEEP * 1e3
    ratio = fan_ms / ideal_ms
    say(
        f"fan-out {FAN_OUT}x{FAN_SLEEP * 1e3:.0f} ms on {FAN_WORKERS} workers: "
        f"{fan_ms:.1f} ms (bare executor {bare_ms:.1f} ms, ideal {ideal_ms:.0f} ms; "
        f"{len(fan)}+{len(bare)} runs)"
    )
    return [
        Row(
            f"fan-out {FAN_OUT}x{FAN_SLEEP * 1e3:.0f} ms, {FAN_WORKERS} workers",
            f"{fan_ms:.1f} ms",
            f"{bare_ms:.1f} ms bare",
            f"{ratio:.2f}x ideal, {fan_ms / bare_ms:.2f}x bare",
            f"<= {TARGET_FAN_RATIO}x ideal (#3)",
            verdict_at_most(ratio, TARGET_FAN_RATIO),
        )
    ]


def case_step2(opts: Options) -> list[Row]:
    step2 = repeat(routilux_step2, opts.repeats, opts.budget)
    seconds = median(step2)
    ratio = seconds / STEP2_DELAY
    say(
        f"seed 004 step 2 ({STEP2_ROUTINES}x{STEP2_DELAY} s): {seconds:.3f} s "
        f"({len(step2)} runs)"
    )
    return [
        Row(
            f"seed 004 step 2 ({STEP2_ROUTINES}x{STEP2_DELAY} s)",
            f"{seconds:.3f} s",
            f"{STEP2_DELAY} s one delay",
            f"{ratio:.3f}x one delay",
            f"<= {TARGET_STEP2_RATIO}x (#3)",
            verdict_at_most(ratio, TARGET_STEP2_RATIO),
        )
    ]
