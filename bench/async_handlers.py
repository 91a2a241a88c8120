"""Case ``async``: ``async def`` handlers awaiting at once, if this build runs them.

Guard first: a 2-routine flow (ChainSource -> AsyncSink, whose handler is ``async
def``) on the concurrent strategy runs one job. If building or running it raises,
the job does not complete, or the handler body never ran (a build without async
support calls the handler, gets a coroutine and drops it), the case prints
"async: not supported by this build" with the reason and is skipped (not failed).

Measured otherwise: one job whose source emits HANDLERS values to the AsyncSink,
whose handler does ``await asyncio.sleep(SLEEP)`` and counts; concurrent strategy
with WORKERS workers; timed from ``execute`` to ``wait_for_completion``. Every run
checks that all HANDLERS handler bodies finished and the job completed. Also
reported: the most threads alive while a handler ran (``threading.active_count``
read inside the handler; issue 8 asks for at most WORKERS + 4). Baseline:
``asyncio.run`` of a coroutine that ``asyncio.gather``s HANDLERS coroutines doing
the same sleep and count (the loop's start-up is timed too, as routilux's may be).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from typing import Any

from chain import ChainSource
from common import BenchFailure, Options, Row, check, median, repeat_pair, say, wait
from common import verdict_at_most as at_most

from routilux import Flow, Routine

HANDLERS = 1_000
SLEEP = 0.010
WORKERS = 4
TARGET_THREADS = WORKERS + 4  # issue 8 acceptance


class AsyncSink(Routine):
    """Awaits ``delay`` seconds per activation, then counts (thread-safe)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.define_slot("input", handler=self.arrive)
        self.delay = delay
        self.arrived = 0
        self.peak_threads = 0
        self.lock = threading.Lock()

    async def arrive(self, value: int) -> None:
        threads = threading.active_count()
        await asyncio.sleep(self.delay)
        with self.lock:
            self.arrived += 1
            self.peak_threads = max(self.peak_threads, threads)


def build_flow(delay: float) -> tuple[Flow, AsyncSink]:
    flow = Flow(
        flow_id="bench-async", execution_strategy="concurrent", max_workers=WORKERS
    )
    flow.add_routine(ChainSource(), "source")
    sink = AsyncSink(delay)
    flow.add_routine(sink, "sink")
    flow.connect("source", "output", "sink", "input")
    return flow, sink


def unsupported_reason() -> str | None:
    """None when an async handler runs to its end; else why not."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            flow, sink = build_flow(0.0)
            try:
                job = flow.execute("source", entry_params={"count": 1})
                finished = flow.wait_for_completion(timeout=10)
            finally:
                flow.shutdown(wait=True)
        except Exception as error:
            return f"{type(error).__name__}: {error}"
        gc.collect()  # a dropped coroutine warns when it is collected
    if not finished:
        return "the job did not finish within 10 s"
    if sink.arrived != 1:
        notes = sorted({str(w.message) for w in caught})
        return f"the handler never ran; job {status_of(job)}" + (
            f"; warning: {notes[0]}" if notes else ""
        )
    if status_of(job) != "completed":
        return f"the job ended {status_of(job)!r}"
    return None


def status_of(job: Any) -> str:
    value = getattr(job, "status", None)
    return str(getattr(value, "value", value))


def routilux_async(peaks: list[int]) -> float:
    flow, sink = build_flow(SLEEP)
    try:
        start = time.perf_counter()
        job = flow.execute("source", entry_params={"count": HANDLERS})
        wait(flow, "async handlers", timeout=120)
        elapsed = time.perf_counter() - start
        check("async handlers", sink.arrived, HANDLERS, job)
        peaks.append(sink.peak_threads)
    finally:
        flow.shutdown(wait=True)
    return elapsed


def plain_gather(peaks: list[int]) -> float:
    arrived = [0]
    peak = [0]

    async def one() -> None:
        threads = threading.active_count()
        await asyncio.sleep(SLEEP)
        arrived[0] += 1
        peak[0] = max(peak[0], threads)

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(HANDLERS)))

    start = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - start
    check("asyncio.gather", arrived[0], HANDLERS)
    peaks.append(peak[0])
    return elapsed


def case_async(opts: Options) -> list[Row]:
    reason = unsupported_reason()
    label = f"async {HANDLERS:,} x sleep({SLEEP * 1e3:.0f} ms), concurrent({WORKERS})"
    if reason is not None:
        say(f"async: not supported by this build ({reason})")
        return [Row(label, "not supported", "-", "-", "-", "skipped")]
    peaks: list[int] = []
    base_peaks: list[int] = []
    times, base = repeat_pair(
        lambda: routilux_async(peaks),
        lambda: plain_gather(base_peaks),
        opts.repeats,
        opts.budget,
    )
    ms, base_ms = median(times) * 1e3, median(base) * 1e3
    if not peaks:
        raise BenchFailure("async handlers: no run recorded its threads")
    peak = max(peaks)
    say(
        f"{label}: {ms:.1f} ms (asyncio.gather {base_ms:.1f} ms; at most {peak} "
        f"threads while handlers ran; {len(times)}+{len(base)} runs)"
    )
    return [
        Row(
            label,
            f"{ms:.1f} ms",
            f"{base_ms:.1f} ms gather",
            f"{ms / base_ms:.2f}x asyncio.gather",
            "-",
            "info",
        ),
        Row(
            f"async: threads while {HANDLERS:,} await",
            f"{peak} threads",
            f"{max(base_peaks)} with gather",
            "-",
            f"<= {TARGET_THREADS} (#8)",
            at_most(peak, TARGET_THREADS),
        ),
    ]
