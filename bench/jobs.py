"""Case ``jobs``: many small jobs on one flow, the way a service calls ``execute``.

The flow has two routines: ``source`` (a ChainSource, whose ``trigger`` handler
emits one value) -> ``sink`` (a CountingSink, which counts under a lock). Each job
is one ``flow.execute("source", {"count": 1})``: two handler calls.

sequential: JOBS executes in a loop, each returning a completed job, measured two
    ways. "jobs dropped": the caller appends ``(job.job_id, job.status)`` to a
    list and drops the job, as a service answering requests would. "all jobs
    kept": the caller appends every job to a list, so the garbage collector walks
    every job kept so far (the cost per job then grows with what a job holds).
    Reported: microseconds per job. Baseline, a plain-Python loop doing the same
    two handler calls with the bookkeeping a job needs at the least, per job:

    - a job object (``__slots__``) with ``job_id = str(uuid.uuid4())``, a
      ``status`` string, a ``threading.Event`` done latch, a creation time
      (``time.time()``), an empty routine-state dict and an empty history list;
    - the trigger activation ``("source", "trigger", handler, {"count": 1})``
      appended to a ``collections.deque``, run FIFO until it is empty: for each
      activation, ``time.time()`` before and after the handler call, a history
      tuple ``(routine_id, slot, payload, started)`` appended, and the routine's
      state set to a fresh dict ``{"status", "started", "ended"}``;
    - the source handler's emit appends a history tuple ``("source", "output",
      payload, time.time())`` and queues ``("sink", "input", handler, payload)``
      with ``payload = {"value": i}``; the sink handler is CountingSink's own;
    - finally ``status = "completed"``, ``done.set()``, and ``(job_id, status)``
      (jobs dropped) or the job object (all jobs kept) appended to a list.

concurrent (JOB_WORKERS workers): JOBS executes, each job appended to a list (to
    check afterwards that each completed), then ``wait_for_completion``; timed
    from the first ``execute`` until it returns True. Reported: jobs per
    second. Baseline: a bare ``ThreadPoolExecutor(JOB_WORKERS)`` doing the same
    two calls per job and nothing else: submit call 1 (the source), which submits
    call 2 (the sink, counting under a lock); timed until the last sink call.
    The ratio is routilux's jobs/s over the bare executor's (issue 8 target: at
    least 1.0).

Every run checks that the sink was called once per job and every job completed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chain import ChainSource, CountingSink
from common import (
    BenchFailure,
    Options,
    Row,
    check,
    median,
    repeat_pair,
    say,
    verdict_at_least,
    verdict_at_most,
    wait,
)

from routilux import Flow

JOBS = 10_000
JOB_WORKERS = 4

TARGET_SEQ_US = 40.0  # issue 8: <= 40 us per job sequentially
TARGET_CONC_RATIO = 1.0  # issue 8: at least the bare executor's jobs/s


def build_flow(strategy: str, workers: int) -> tuple[Flow, CountingSink]:
    flow = Flow(
        flow_id=f"bench-jobs-{strategy}",
        execution_strategy=strategy,
        max_workers=workers,
    )
    flow.add_routine(ChainSource(), "source")
    sink = CountingSink()
    flow.add_routine(sink, "sink")
    flow.connect("source", "output", "sink", "input")
    return flow, sink


def _status_of(item: Any) -> str:
    """The status of a job, or of a ``(job_id, status)`` record."""
    value = item[1] if isinstance(item, tuple) else getattr(item, "status", None)
    return str(getattr(value, "value", value))


def _check_jobs(what: str, sink: CountingSink, jobs: list[Any], n: int) -> None:
    """Jobs, or (job_id, status) records: n of them, all completed, n arrivals."""
    check(what, sink.arrived, n)
    check(f"{what}: jobs returned", len(jobs), n)
    unfinished = [item for item in jobs if _status_of(item) != "completed"]
    if unfinished:
        raise BenchFailure(
            f"{what}: {len(unfinished):,} jobs did not complete, the first ended "
            f"{_status_of(unfinished[0])!r}"
        )


def routilux_sequential(n: int, keep_jobs: bool) -> float:
    flow, sink = build_flow("sequential", 1)
    jobs: list[Any] = []
    records: list[tuple[str, Any]] = []
    execute, keep, record = flow.execute, jobs.append, records.append
    params = {"count": 1}
    try:
        if keep_jobs:
            start = time.perf_counter()
            for _ in range(n):
                keep(execute("source", params))
            elapsed = time.perf_counter() - start
        else:
            start = time.perf_counter()
            for _ in range(n):
                job = execute("source", params)
                record((job.job_id, job.status))
            elapsed = time.perf_counter() - start
            del job
        _check_jobs("sequential jobs", sink, jobs if keep_jobs else records, n)
    finally:
        flow.shutdown(wait=True)
    return elapsed


class _PlainJob:
    __slots__ = ("created", "done", "history", "job_id", "routines", "status")

    def __init__(self) -> None:
        self.job_id = str(uuid.uuid4())
        self.status = "running"
        self.done = threading.Event()
        self.created = time.time()
        self.routines: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[str, str, Any, float]] = []


def plain_jobs(n: int, keep_jobs: bool) -> float:
    """The baseline described in the module docstring."""
    sink = CountingSink()  # the same sink handler, called directly
    queue: deque[tuple[str, str, Any, dict[str, Any]]] = deque()
    jobs: list[Any] = []
    current: list[_PlainJob] = []

    def emit(value: int) -> None:  # what source.fire's emit does, minus routilux
        payload = {"value": value}
        current[0].history.append(("source", "output", payload, time.time()))
        queue.append(("sink", "input", sink.arrive, payload))

    def fire(count: int) -> None:  # ChainSource.fire, emitting through ``emit``
        for i in range(count):
            emit(i)

    start = time.perf_counter()
    for _ in range(n):
        job = _PlainJob()
        current[:] = [job]
        queue.append(("source", "trigger", fire, {"count": 1}))
        while queue:
            routine_id, slot, handler, payload = queue.popleft()
            started = time.time()
            handler(**payload)
            job.history.append((routine_id, slot, payload, started))
            job.routines[routine_id] = {
                "status": "completed",
                "started": started,
                "ended": time.time(),
            }
        job.status = "completed"
        job.done.set()
        jobs.append(job if keep_jobs else (job.job_id, job.status))
    elapsed = time.perf_counter() - start
    _check_jobs("plain jobs", sink, jobs, n)
    return elapsed


def routilux_concurrent(n: int) -> float:
    flow, sink = build_flow("concurrent", JOB_WORKERS)
    jobs: list[Any] = []
    execute, keep = flow.execute, jobs.append
    params = {"count": 1}
    try:
        start = time.perf_counter()
        for _ in range(n):
            keep(execute("source", params))
        wait(flow, "concurrent jobs")
        elapsed = time.perf_counter() - start
        _check_jobs("concurrent jobs", sink, jobs, n)
    finally:
        flow.shutdown(wait=True)
    return elapsed


def bare_executor_jobs(n: int) -> float:
    executor = ThreadPoolExecutor(JOB_WORKERS, thread_name_prefix="bench-bare")
    lock = threading.Lock()
    done = threading.Event()
    arrived = [0]

    def call2(value: int) -> None:
        with lock:
            arrived[0] += 1
            if arrived[0] == n:
                done.set()

    def call1(count: int) -> None:
        for i in range(count):
            executor.submit(call2, i)

    submit = executor.submit
    try:
        start = time.perf_counter()
        for _ in range(n):
            submit(call1, 1)
        if not done.wait(300):
            raise BenchFailure("bare executor jobs did not finish in 300 s")
        elapsed = time.perf_counter() - start
    finally:
        executor.shutdown(wait=True)
    check("bare executor jobs", arrived[0], n)
    return elapsed


def case_jobs(opts: Options) -> list[Row]:
    reps, budget = opts.repeats, opts.budget
    routilux_sequential(200, keep_jobs=False)  # warm up
    routilux_concurrent(200)

    rows: list[Row] = []
    for keep_jobs, how in ((False, "jobs dropped"), (True, "all jobs kept")):
        seq, plain = repeat_pair(
            lambda k=keep_jobs: routilux_sequential(JOBS, k),
            lambda k=keep_jobs: plain_jobs(JOBS, k),
            reps,
            budget,
        )
        seq_us, plain_us = median(seq) / JOBS * 1e6, median(plain) / JOBS * 1e6
        say(
            f"jobs {JOBS:,} sequential, {how}: {seq_us:.1f} us/job (plain Python "
            f"with job bookkeeping {plain_us:.1f} us/job; {len(seq)}+{len(plain)} "
            "runs)"
        )
        rows.append(
            Row(
                f"jobs {JOBS:,} sequential, {how}",
                f"{seq_us:.1f} us/job",
                f"{plain_us:.1f} us/job plain",
                f"{seq_us / plain_us:.1f}x plain",
                f"<= {TARGET_SEQ_US:.0f} us/job (#8)",
                verdict_at_most(seq_us, TARGET_SEQ_US),
            )
        )

    conc, bare = repeat_pair(
        lambda: routilux_concurrent(JOBS),
        lambda: bare_executor_jobs(JOBS),
        reps,
        budget,
    )
    conc_rate, bare_rate = JOBS / median(conc), JOBS / median(bare)
    ratio = conc_rate / bare_rate
    say(
        f"jobs {JOBS:,} concurrent({JOB_WORKERS}): {conc_rate:,.0f} jobs/s (bare "
        f"executor {bare_rate:,.0f} jobs/s; {len(conc)}+{len(bare)} runs)"
    )
    return [
        *rows,
        Row(
            f"jobs {JOBS:,} concurrent({JOB_WORKERS}), all jobs kept",
            f"{conc_rate:,.0f} jobs/s",
            f"{bare_rate:,.0f} jobs/s bare",
            f"{ratio:.2f}x bare jobs/s",
            f">= {TARGET_CONC_RATIO:.1f}x bare (#8)",
            verdict_at_least(ratio, TARGET_CONC_RATIO),
        ),
    ]
