"""``make bench``: routilux's cost per hop and its concurrency, beside plain Python.

Four measurements, each the median of several repeats, each next to a baseline
measured in the same run (issue 3 targets printed beside them; never asserted):

(a) chain, sequential: one ``execute`` whose source emits EVENTS events in a loop
    down a chain of 10 routines (so EVENTS x 10 hops, job overhead amortised).
    Baseline: 10 direct Python calls per event.
(b) the same chain on the concurrent strategy (WORKERS threads), timed from
    ``execute`` to ``wait_for_completion``. Baseline: a bare ThreadPoolExecutor
    with one ``submit`` per hop, each hop's task submitting the next.
(c) fan-out: one source emits once to 100 routines that each sleep 10 ms, on 20
    workers. Compared with the ideal ceil(100/20) x 10 ms and a bare
    ThreadPoolExecutor(20) doing the same 100 sleeps.
(d) seed 004 step 2: three ``execute`` calls of routines sleeping 0.2 s on a
    3-worker concurrent flow, then ``wait_for_completion``; wall time / 0.2 s.

Every repeat checks that every event arrived: a benchmark that loses events
measures nothing. A lost event or a job that does not complete exits non-zero.
Flows and executors are built fresh for each repeat, outside the timed part (the
timed part includes any lazy thread start-up, for routilux and baseline alike).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from chain import ChainSource, CountingSink, Relay
from durability import DurabilityBenchFailure
from durability import report as durability_report

from routilux import Flow, Routine

if TYPE_CHECKING:
    from collections.abc import Callable

STAGES = 10  # routines after the source: one hop each
CHAIN_WORKERS = 4
FAN_OUT = 100
FAN_WORKERS = 20
FAN_SLEEP = 0.010
STEP2_DELAY = 0.2
STEP2_ROUTINES = 3

TARGET_SEQ_US = 20.0
TARGET_CONC_RATIO = 4.0
TARGET_FAN_RATIO = 1.2
TARGET_STEP2_RATIO = 1.15


class BenchFailure(Exception):
    """Events were lost or a job did not complete."""


# ---------------------------------------------------------------- routines


class FanSource(Routine):
    """Emits one event to every connected sleeper."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, **kwargs: Any) -> None:
        self.emit("output", value=1)


class Sleeper(Routine):
    """Sleeps ``delay`` seconds per activation, then counts on a shared counter."""

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


# ---------------------------------------------------------------- helpers


def _status(job: Any) -> str:
    status = getattr(job, "status", None)
    return str(getattr(status, "value", status))


def _check(what: str, got: int, want: int, job: Any = None) -> None:
    if got != want:
        raise BenchFailure(f"{what}: {got} of {want} arrived (events lost)")
    if job is not None and _status(job) != "completed":
        raise BenchFailure(f"{what}: job ended {_status(job)!r}, not 'completed'")


def _wait(flow: Flow, what: str, timeout: float = 300.0) -> None:
    if not flow.wait_for_completion(timeout=timeout):
        raise BenchFailure(f"{what}: wait_for_completion timed out after {timeout}s")


def build_chain(strategy: str, workers: int) -> tuple[Flow, CountingSink]:
    flow = Flow(
        flow_id=f"bench-chain-{strategy}",
        execution_strategy=strategy,
        max_workers=workers,
    )
    flow.add_routine(ChainSource(), "source")
    previous = "source"
    for stage in range(1, STAGES):
        flow.add_routine(Relay(), f"stage{stage}")
        flow.connect(previous, "output", f"stage{stage}", "input")
        previous = f"stage{stage}"
    sink = CountingSink()
    flow.add_routine(sink, f"stage{STAGES}")
    flow.connect(previous, "output", f"stage{STAGES}", "input")
    return flow, sink


def repeat(fn: Callable[[], float], repeats: int, budget: float) -> list[float]:
    """Run ``fn`` (it returns its own timed seconds) up to ``repeats`` times.

    Stops early once ``budget`` seconds are spent and three runs are in.
    """
    times: list[float] = []
    spent = time.perf_counter()
    while len(times) < repeats:
        gc.collect()
        times.append(fn())
        if len(times) >= 3 and time.perf_counter() - spent > budget:
            break
    return times


# ------------------------------------------------------------- (a) sequential


def routilux_chain_sequential(events: int) -> float:
    flow, sink = build_chain("sequential", 1)
    start = time.perf_counter()
    job = flow.execute("source", entry_params={"count": events})
    elapsed = time.perf_counter() - start
    _check("sequential chain", sink.arrived, events, job)
    flow.shutdown(wait=True)
    return elapsed


class _PlainStage:
    __slots__ = ("next",)

    def __init__(self, nxt: Any) -> None:
        self.next = nxt

    def input(self, value: int) -> None:
        self.next.input(value=value)


class _PlainSink:
    def __init__(self) -> None:
        self.arrived = 0
        self.lock = threading.Lock()

    def input(self, value: int) -> None:
        with self.lock:
            self.arrived += 1


def plain_chain(events: int) -> float:
    sink = _PlainSink()
    first: Any = sink
    for _ in range(STAGES - 1):
        first = _PlainStage(first)
    start = time.perf_counter()
    for i in range(events):
        first.input(value=i)  # 10 calls per event: 9 stages + the sink
    elapsed = time.perf_counter() - start
    _check("plain chain", sink.arrived, events)
    return elapsed


# ------------------------------------------------------------- (b) concurrent


def routilux_chain_concurrent(events: int) -> float:
    flow, sink = build_chain("concurrent", CHAIN_WORKERS)
    start = time.perf_counter()
    job = flow.execute("source", entry_params={"count": events})
    _wait(flow, "concurrent chain")
    elapsed = time.perf_counter() - start
    _check("concurrent chain", sink.arrived, events, job)
    flow.shutdown(wait=True)
    return elapsed


def bare_executor_chain(events: int) -> float:
    """One submit per hop; a hop's task submits the next hop, like a flow does."""
    executor = ThreadPoolExecutor(CHAIN_WORKERS, thread_name_prefix="bench-bare")
    lock = threading.Lock()
    done = threading.Event()
    arrived = [0]

    def hop(stage: int, value: int) -> None:
        if stage < STAGES:
            executor.submit(hop, stage + 1, value)
            return
        with lock:
            arrived[0] += 1
            if arrived[0] == events:
                done.set()

    def source(count: int) -> None:
        for i in range(count):
            executor.submit(hop, 1, i)

    start = time.perf_counter()
    executor.submit(source, events)
    if not done.wait(300):
        raise BenchFailure("bare executor chain did not finish")
    elapsed = time.perf_counter() - start
    executor.shutdown(wait=True)
    _check("bare executor chain", arrived[0], events)
    return elapsed


# ---------------------------------------------------------------- (c) fan-out


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
    start = time.perf_counter()
    job = flow.execute("source")
    _wait(flow, "fan-out")
    elapsed = time.perf_counter() - start
    _check("fan-out", counter[0], FAN_OUT, job)
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

    start = time.perf_counter()
    executor.submit(source)
    if not done.wait(60):
        raise BenchFailure("bare fan-out did not finish")
    elapsed = time.perf_counter() - start
    executor.shutdown(wait=True)
    _check("bare fan-out", counter[0], FAN_OUT)
    return elapsed


# ------------------------------------------------------------ (d) seed step 2


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
    start = time.perf_counter()
    jobs = [flow.execute(routine_id) for routine_id in ids]
    _wait(flow, "seed 004 step 2", timeout=30)
    elapsed = time.perf_counter() - start
    for job in jobs:
        _check("seed 004 step 2", counter[0], STEP2_ROUTINES, job)
    flow.shutdown(wait=True)
    return elapsed


# ------------------------------------------------------------------ report


def _verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"


def _row(*cells: str) -> str:
    widths = (34, 14, 14, 22, 16, 6)
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="routilux benchmarks (make bench)")
    parser.add_argument("--events", type=int, default=10_000, help="chain events")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per case")
    parser.add_argument(
        "--budget", type=float, default=15.0, help="seconds per case before cutting"
    )
    args = parser.parse_args(argv)
    events, reps, budget = args.events, args.repeats, args.budget
    hops = events * STAGES

    print(
        f"routilux bench: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {os.cpu_count()} CPUs; "
        f"median of up to {reps} repeats per case"
    )
    sys.stdout.flush()

    # warm up both code paths once (small) so the first repeat is not special
    routilux_chain_sequential(200)
    routilux_chain_concurrent(200)

    seq = repeat(lambda: routilux_chain_sequential(events), reps, budget)
    plain = repeat(lambda: plain_chain(events), reps, budget)
    conc = repeat(lambda: routilux_chain_concurrent(events), reps, budget)
    bare = repeat(lambda: bare_executor_chain(events), reps, budget)
    fan = repeat(routilux_fan_out, reps + 2, budget)
    bare_fan = repeat(bare_fan_out, reps + 2, budget)
    step2 = repeat(routilux_step2, reps, budget)

    seq_us = statistics.median(seq) / hops * 1e6
    plain_us = statistics.median(plain) / hops * 1e6
    conc_us = statistics.median(conc) / hops * 1e6
    bare_us = statistics.median(bare) / hops * 1e6
    fan_ms = statistics.median(fan) * 1e3
    bare_fan_ms = statistics.median(bare_fan) * 1e3
    ideal_ms = math.ceil(FAN_OUT / FAN_WORKERS) * FAN_SLEEP * 1e3
    step2_s = statistics.median(step2)
    conc_ratio = conc_us / bare_us
    fan_ratio = fan_ms / ideal_ms
    step2_ratio = step2_s / STEP2_DELAY

    print()
    print(_row("case", "routilux", "baseline", "ratio", "issue 3 target", ""))
    print(_row("-" * 34, "-" * 14, "-" * 14, "-" * 22, "-" * 16, "-" * 6))
    print(
        _row(
            f"(a) chain {STAGES}x{events:,} sequential",
            f"{seq_us:.2f} us/hop",
            f"{plain_us:.3f} us/hop",
            f"{seq_us / plain_us:.0f}x direct calls",
            f"<= {TARGET_SEQ_US:.0f} us/hop",
            _verdict(seq_us, TARGET_SEQ_US),
        )
    )
    print(
        _row(
            f"(b) chain {STAGES}x{events:,} concurrent({CHAIN_WORKERS})",
            f"{conc_us:.2f} us/hop",
            f"{bare_us:.2f} us/hop",
            f"{conc_ratio:.2f}x bare submit",
            f"<= {TARGET_CONC_RATIO:.0f}x bare",
            _verdict(conc_ratio, TARGET_CONC_RATIO),
        )
    )
    print(
        _row(
            f"(c) fan-out {FAN_OUT}x{FAN_SLEEP * 1e3:.0f} ms, {FAN_WORKERS} workers",
            f"{fan_ms:.1f} ms",
            f"{bare_fan_ms:.1f} ms bare",
            f"{fan_ratio:.2f}x ideal {ideal_ms:.0f} ms",
            f"<= {TARGET_FAN_RATIO}x ideal",
            _verdict(fan_ratio, TARGET_FAN_RATIO),
        )
    )
    print(
        _row(
            "",
            "",
            "",
            f"{fan_ms / bare_fan_ms:.2f}x bare executor",
            "",
            "",
        )
    )
    print(
        _row(
            f"(d) seed 004 step 2 ({STEP2_ROUTINES}x{STEP2_DELAY} s)",
            f"{step2_s:.3f} s",
            f"{STEP2_DELAY} s delay",
            f"{step2_ratio:.3f}x one delay",
            f"<= {TARGET_STEP2_RATIO}x",
            _verdict(step2_ratio, TARGET_STEP2_RATIO),
        )
    )
    print()
    print(
        f"runs: (a) {len(seq)}+{len(plain)}, (b) {len(conc)}+{len(bare)}, "
        f"(c) {len(fan)}+{len(bare_fan)}, (d) {len(step2)} "
        "(routilux + baseline); all events arrived in every run."
    )
    print(
        f"(a)/(b): one execute; the source emits {events:,} events in a loop, each "
        f"crosses {STAGES} routines = {hops:,} hops; job set-up is amortised.\n"
        "(a) baseline: 10 direct method calls per event. (b) baseline: a bare "
        f"ThreadPoolExecutor({CHAIN_WORKERS}), one submit per hop, chained.\n"
        "(c)/(d): wall time from the first execute to wait_for_completion() "
        "returning True."
    )
    durability_report()  # (e) flow documents, (f) checkpointing: bench/durability.py
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchFailure, DurabilityBenchFailure) as failure:
        print(f"\nBENCH FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
