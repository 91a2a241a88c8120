"""Case ``ray``: the Ray strategy against threads and against bare Ray calls.

Skipped (not failed) when Ray is not installed. Starts one local Ray instance
(2 CPUs, so 2 host actors of 32 threads each; no dashboard) with bench/ on the
workers' PYTHONPATH, and shuts it down at the end. Three measurements:

cpu: Fan emits once to CPU_ROUTINES Spin routines (distinct routines, spread
    over the 2 hosts), each doing CPU_ROUNDS of pure-Python arithmetic, all into
    one Tally. Wall time from ``execute`` to the job's end on ``ray`` beside the
    same flow on ``concurrent`` (4 threads, one GIL). Info: no target; on 2
    cores the best ray can do is about half.
overhead: one job in which Fan emits OVERHEAD_CALLS values to one Noop (so
    every call goes to one actor, and calls started together travel in
    batches); wall time per activation. Baselines in the
    same run: a bare actor with a method of the same arguments, called and
    waited for one at a time (the "bare Ray actor call"; the target is at most
    1.5 times it), and the same calls all submitted before any is awaited
    (pipelined; info). Also printed: the driver process's CPU time per
    activation (``time.process_time``, every thread of it), the routing cost
    the scale page's arithmetic uses.
chain: one Hop routine connected to itself passes a value on CHAIN_HOPS times:
    each call starts only once the last one's emit is back, so nothing can be
    batched; wall time per hop against the same bare call one by one (target
    at most 1.5 times it), and the driver's CPU time per hop.
io: Fan emits once to IO_ROUTINES Nap routines sleeping IO_SLEEP each, into one
    Tally, on the 2 hosts (64 threads in all) beside ``concurrent`` with 64
    threads; target: at most 2 times the threads' time.

Every repeat checks that every call arrived and the job completed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from common import (
    BenchFailure,
    Options,
    Row,
    check,
    median,
    repeat_pair,
    say,
    verdict_at_most,
)

from routilux import Flow

CPU_ROUTINES = 8
CPU_ROUNDS = 2_000_000
OVERHEAD_CALLS = 1_000
CHAIN_HOPS = 200
IO_ROUTINES = 100
IO_SLEEP = 0.050
HOSTS = 2
THREADS = 64  # the concurrent strategy's, = 2 hosts x 32 actor threads

TARGET_OVERHEAD = 1.5  # issue 12: per activation vs a bare Ray actor call
TARGET_IO = 2.0  # issue 12: vs the thread strategy


def _start_ray() -> Any | None:
    try:
        import ray
    except ImportError:
        return None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    here = str(Path(__file__).resolve().parent)
    ray.init(
        num_cpus=HOSTS,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": here}},
    )
    return ray


def _fan_flow(flow_id: str, strategy: Any, workers: int, kind: str) -> Flow:
    from ray_routines import Fan, Nap, Spin, Tally

    flow = Flow(flow_id=flow_id, execution_strategy=strategy, max_workers=workers)
    flow.add_routine(Fan(count=1), "fan")
    flow.add_routine(Tally(), "tally")
    count = CPU_ROUTINES if kind == "cpu" else IO_ROUTINES
    for index in range(count):
        routine = Spin(rounds=CPU_ROUNDS) if kind == "cpu" else Nap(seconds=IO_SLEEP)
        flow.add_routine(routine, f"w{index}")
        flow.connect("fan", "out", f"w{index}", "input")
        flow.connect(f"w{index}", "out", "tally", "input")
    return flow


def _timed_job(flow: Flow, entry: str, what: str, counter: str, want: int) -> float:
    before = flow.routines[counter].get_stat("calls", 0)
    start = time.perf_counter()
    job = flow.execute(entry)
    if not job.wait(600):
        raise BenchFailure(f"{what}: the job did not finish")
    took = time.perf_counter() - start
    check(what, flow.routines[counter].get_stat("calls", 0) - before, want, job)
    return took


def _pair(opts: Options, kind: str, strategy: Any) -> tuple[float, float]:
    ray_flow = _fan_flow(f"bench-{kind}-ray", strategy, 4, kind)
    threads = THREADS if kind == "io" else 4
    thread_flow = _fan_flow(f"bench-{kind}-threads", "concurrent", threads, kind)
    want = CPU_ROUTINES if kind == "cpu" else IO_ROUTINES
    with thread_flow:
        _timed_job(ray_flow, "fan", kind, "tally", want)  # places and builds
        ray_times, thread_times = repeat_pair(
            lambda: _timed_job(ray_flow, "fan", kind, "tally", want),
            lambda: _timed_job(thread_flow, "fan", kind, "tally", want),
            opts.repeats,
            opts.budget,
        )
    return median(ray_times), median(thread_times)


def _overhead(opts: Options, ray: Any, strategy: Any) -> tuple[float, float, float]:
    from ray_routines import BareHost, Fan, Noop

    flow = Flow(flow_id="bench-overhead", execution_strategy=strategy, max_workers=4)
    flow.add_routine(Fan(count=OVERHEAD_CALLS), "fan")
    flow.add_routine(Noop(), "noop")
    flow.connect("fan", "out", "noop", "input")
    bare = ray.remote(BareHost).options(max_concurrency=32, num_cpus=0).remote()
    payload = {"value": 1}
    ray.get(bare.call.remote("k", "noop", "input", payload, None))

    def one_by_one() -> float:
        start = time.perf_counter()
        for _ in range(200):
            ray.get(bare.call.remote("k", "noop", "input", payload, None))
        return (time.perf_counter() - start) / 200

    def pipelined() -> float:
        start = time.perf_counter()
        refs = [
            bare.call.remote("k", "noop", "input", payload, None)
            for _ in range(OVERHEAD_CALLS)
        ]
        ray.get(refs)
        return (time.perf_counter() - start) / OVERHEAD_CALLS

    driver: list[float] = []

    def routed() -> float:
        cpu = time.process_time()
        took = _timed_job(flow, "fan", "overhead", "noop", OVERHEAD_CALLS)
        driver.append((time.process_time() - cpu) / OVERHEAD_CALLS)
        return took / OVERHEAD_CALLS

    routed()  # places and builds
    driver.clear()
    ours, bare_times = repeat_pair(routed, one_by_one, opts.repeats, opts.budget)
    piped = [pipelined() for _ in range(len(ours))]
    ray.kill(bare)
    say(
        f"overhead: the driver process spent {median(driver) * 1e3:.3f} ms of CPU "
        "per activation (all its threads, Ray's own included)"
    )
    return median(ours), median(bare_times), median(piped)


def _chain(opts: Options, strategy: Any) -> float:
    """Seconds per hop of a self-loop: each call starts only after the last."""
    from ray_routines import Fan, Hop

    flow = Flow(flow_id="bench-chain", execution_strategy=strategy, max_workers=4)
    flow.add_routine(Fan(count=1), "fan")
    flow.add_routine(Hop(hops=CHAIN_HOPS), "hop")
    flow.connect("fan", "out", "hop", "input")
    flow.connect("hop", "out", "hop", "input")

    driver: list[float] = []

    def hops() -> float:
        cpu = time.process_time()
        took = _timed_job(flow, "fan", "chain", "hop", CHAIN_HOPS)
        driver.append((time.process_time() - cpu) / CHAIN_HOPS)
        return took / CHAIN_HOPS

    hops()  # places and builds
    driver.clear()
    per_hop = median([hops() for _ in range(opts.repeats)])
    say(f"chain: the driver process spent {median(driver) * 1e3:.3f} ms of CPU per hop")
    return per_hop


def case_ray(opts: Options) -> list[Row]:
    ray = _start_ray()
    if ray is None:
        say("ray: not installed (pip install 'routilux[ray]'); skipped")
        return [Row("ray", "-", "-", "-", "-", "skipped")]
    from routilux.strategies import RayStrategy

    strategy = RayStrategy(max_workers=4, num_cpus=HOSTS)
    try:
        cpu_ray, cpu_threads = _pair(opts, "cpu", strategy)
        say(
            f"cpu: {CPU_ROUTINES} x {CPU_ROUNDS:,} rounds: ray {cpu_ray:.3f} s, "
            f"concurrent {cpu_threads:.3f} s ({cpu_ray / cpu_threads:.2f}x)"
        )
        ours, bare, piped = _overhead(opts, ray, strategy)
        say(
            f"overhead: {ours * 1e3:.3f} ms per activation; bare actor call "
            f"{bare * 1e3:.3f} ms one by one, {piped * 1e3:.3f} ms pipelined"
        )
        hop = _chain(opts, strategy)
        say(f"chain: {hop * 1e3:.3f} ms per hop ({CHAIN_HOPS} hops, nothing to batch)")
        io_ray, io_threads = _pair(opts, "io", strategy)
        say(
            f"io: {IO_ROUTINES} x {IO_SLEEP * 1e3:.0f} ms: ray {io_ray:.3f} s, "
            f"concurrent ({THREADS} threads) {io_threads:.3f} s"
        )
    finally:
        strategy.shutdown(wait=True, timeout=60)
        ray.shutdown()
    return [
        Row(
            f"ray cpu fan-out {CPU_ROUTINES} (vs concurrent)",
            f"{cpu_ray:.3f} s",
            f"{cpu_threads:.3f} s",
            f"{cpu_ray / cpu_threads:.2f}x",
            "-",
            "info",
        ),
        Row(
            "ray per activation (vs bare actor call)",
            f"{ours * 1e3:.3f} ms",
            f"{bare * 1e3:.3f} ms",
            f"{ours / bare:.2f}x",
            f"<= {TARGET_OVERHEAD}x (#12)",
            verdict_at_most(ours / bare, TARGET_OVERHEAD),
        ),
        Row(
            "ray chain hop, one call at a time (vs bare actor call)",
            f"{hop * 1e3:.3f} ms",
            f"{bare * 1e3:.3f} ms",
            f"{hop / bare:.2f}x",
            f"<= {TARGET_OVERHEAD}x (#12)",
            verdict_at_most(hop / bare, TARGET_OVERHEAD),
        ),
        Row(
            "ray per activation (vs pipelined bare calls)",
            f"{ours * 1e3:.3f} ms",
            f"{piped * 1e3:.3f} ms",
            f"{ours / piped:.2f}x",
            "-",
            "info",
        ),
        Row(
            f"ray io fan-out {IO_ROUTINES} x {IO_SLEEP * 1e3:.0f} ms (vs threads)",
            f"{io_ray:.3f} s",
            f"{io_threads:.3f} s",
            f"{io_ray / io_threads:.2f}x",
            f"<= {TARGET_IO}x (#12)",
            verdict_at_most(io_ray / io_threads, TARGET_IO),
        ),
    ]
