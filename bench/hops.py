"""Case ``chain``: the cost of one hop down a chain of 10 routines, and its flatness.

One ``execute`` whose source emits EVENTS events in a loop down a chain of STAGES
routines (so EVENTS x STAGES hops; the job's own set-up is amortised).

- sequential, at 1,000, 10,000 (``--events``) and 50,000 events: microseconds
  per hop. Baseline: STAGES direct Python method calls per event (9 relaying
  stages and a sink that counts under a lock), measured at the same sizes.
  The 50k/1k ratio of each shows whether the cost per hop grows with the number
  of events already handled in the job (records kept for the garbage collector
  to walk); a flat engine stays near 1.0, as the plain calls do.
- concurrent (CHAIN_WORKERS threads), 10,000 events, timed from ``execute`` to
  ``wait_for_completion``. Baseline: a bare ``ThreadPoolExecutor(CHAIN_WORKERS)``
  with one ``submit`` per hop, each hop's task submitting the next.

Every run checks that every event reached the sink and that the job completed.
Flows and executors are built fresh for each run, outside the timed part (the
timed part includes any lazy thread start-up, for routilux and baseline alike).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chain import ChainSource, CountingSink, Relay
from common import (
    BenchFailure,
    Options,
    Row,
    check,
    median,
    repeat_pair,
    say,
    verdict_at_most,
    wait,
)

from routilux import Flow

STAGES = 10  # routines after the source: one hop each
CHAIN_WORKERS = 4
SMALL, LARGE = 1_000, 50_000

TARGET_SEQ_US = 8.0  # issue 8: <= 8 us per hop sequentially, 10,000 events
TARGET_FLAT = 1.15  # issue 8: "flat from 1k to 50k"; ~1.0, 15 % allowed for noise
TARGET_CONC_RATIO = 1.3  # issue 8: concurrent <= 1.3x the bare executor


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


def routilux_sequential(events: int) -> float:
    flow, sink = build_chain("sequential", 1)
    try:
        start = time.perf_counter()
        job = flow.execute("source", entry_params={"count": events})
        elapsed = time.perf_counter() - start
        check(f"sequential chain x{events:,}", sink.arrived, events, job)
    finally:
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
    check(f"plain chain x{events:,}", sink.arrived, events)
    return elapsed


def routilux_concurrent(events: int) -> float:
    flow, sink = build_chain("concurrent", CHAIN_WORKERS)
    try:
        start = time.perf_counter()
        job = flow.execute("source", entry_params={"count": events})
        wait(flow, "concurrent chain")
        elapsed = time.perf_counter() - start
        check(f"concurrent chain x{events:,}", sink.arrived, events, job)
    finally:
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

    try:
        start = time.perf_counter()
        executor.submit(source, events)
        if not done.wait(300):
            raise BenchFailure("bare executor chain did not finish in 300 s")
        elapsed = time.perf_counter() - start
    finally:
        executor.shutdown(wait=True)
    check("bare executor chain", arrived[0], events)
    return elapsed


def _us_per_hop(times: list[float], events: int) -> float:
    return median(times) / (events * STAGES) * 1e6


def case_chain(opts: Options) -> list[Row]:
    reps, budget, events = opts.repeats, opts.budget, opts.events
    routilux_sequential(200)  # warm both code paths up, so run 1 is not special
    routilux_concurrent(200)

    sizes = sorted({SMALL, events, LARGE})
    seq: dict[int, float] = {}
    plain: dict[int, float] = {}
    rows: list[Row] = []
    for size in sizes:
        # small sizes are quick and noisy: give them more runs
        n = reps * 2 if size <= SMALL else reps
        times, base = repeat_pair(
            lambda s=size: routilux_sequential(s),
            lambda s=size: plain_chain(s),
            n,
            budget,
        )
        seq[size], plain[size] = _us_per_hop(times, size), _us_per_hop(base, size)
        say(
            f"chain {STAGES}x{size:,} sequential: {seq[size]:.2f} us/hop "
            f"(plain calls {plain[size]:.3f} us/hop; {len(times)}+{len(base)} runs)"
        )
        rows.append(
            Row(
                f"chain {STAGES}x{size:,} sequential",
                f"{seq[size]:.2f} us/hop",
                f"{plain[size]:.3f} us/hop",
                f"{seq[size] / plain[size]:.0f}x direct calls",
                f"<= {TARGET_SEQ_US:.0f} us/hop (#8)",
                verdict_at_most(seq[size], TARGET_SEQ_US),
            )
        )
    flat, plain_flat = seq[LARGE] / seq[SMALL], plain[LARGE] / plain[SMALL]
    rows.append(
        Row(
            f"chain flatness {LARGE // 1000}k/{SMALL // 1000}k sequential",
            f"{flat:.2f}x",
            f"{plain_flat:.2f}x plain",
            f"{seq[LARGE] - seq[SMALL]:+.2f} us/hop",
            f"~1.0 (<= {TARGET_FLAT}) (#8)",
            verdict_at_most(flat, TARGET_FLAT),
        )
    )

    conc, bare = repeat_pair(
        lambda: routilux_concurrent(events),
        lambda: bare_executor_chain(events),
        reps,
        budget,
    )
    conc_us, bare_us = _us_per_hop(conc, events), _us_per_hop(bare, events)
    ratio = conc_us / bare_us
    say(
        f"chain {STAGES}x{events:,} concurrent({CHAIN_WORKERS}): {conc_us:.2f} us/hop "
        f"(bare executor {bare_us:.2f} us/hop; {len(conc)}+{len(bare)} runs)"
    )
    rows.append(
        Row(
            f"chain {STAGES}x{events:,} concurrent({CHAIN_WORKERS})",
            f"{conc_us:.2f} us/hop",
            f"{bare_us:.2f} us/hop bare",
            f"{ratio:.2f}x bare submits",
            f"<= {TARGET_CONC_RATIO}x bare (#8)",
            verdict_at_most(ratio, TARGET_CONC_RATIO),
        )
    )
    return rows
