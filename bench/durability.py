"""Cases ``documents`` and ``checkpoint``: flow documents and checkpointing.

documents: a chain of FLOW_SIZE routines, each with a small config, turned into
    JSON with ``flow.to_json()`` and rebuilt with ``Flow.from_json()``: the time of
    each and the size of the JSON in bytes. Every rebuild is checked to hold every
    routine, config and connection. Baseline, on the same bytes in the same run:
    ``orjson.loads(raw)`` for deserialize and ``orjson.dumps(doc)`` of the loaded
    document for serialize (the floor for any orjson-based codec).
checkpoint: one job of about ACTIVATIONS activations (a source emits CHAIN_EVENTS
    values down a chain of CHAIN_STAGES routines), on the concurrent strategy
    (CHAIN_WORKERS workers) and on sequential, with no checkpoint store and with a
    ``SQLiteCheckpointStore`` in a temporary directory (a fresh file per run).
    Printed: microseconds per activation and the ratio of the two. Every run
    checks that every value arrived and the job completed; with the store, also
    that the stored job is ``completed`` with nothing pending.
    Then one activation emitting EMIT_ITEMS values into a counting sink (a
    2-routine flow, concurrent strategy), with and without the store: CPU
    seconds (``time.process_time``, the machine is shared) and their ratio
    (issue 10's goal: at most 3x). The stored job must be ``completed`` with
    every history entry.

Run it alone with ``python bench/durability.py``; ``bench/run.py`` runs both
cases by name.
"""

from __future__ import annotations

import argparse
import functools
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from chain import ChainSource as Source
from chain import CountingSink as Counter
from chain import Relay
from common import BenchFailure, Options, Row, markdown_table, say, verdict_at_most

from routilux import Flow, Routine
from routilux.persistence import SQLiteCheckpointStore

if TYPE_CHECKING:
    from collections.abc import Callable

FLOW_SIZE = 2_000
CHAIN_STAGES = 10
CHAIN_EVENTS = 1_000
CHAIN_WORKERS = 4
ACTIVATIONS = 1 + CHAIN_EVENTS * CHAIN_STAGES  # the source, then one per hop
CHECKPOINT_REPEATS = 3  # each strategy x (no store, SQLite)
EMIT_ITEMS = 50_000
TARGET_EMIT_RATIO = 3.0  # issue 10

TARGET_SERIALIZE_MS = 25.0  # issue 8
TARGET_DESERIALIZE_MS = 100.0  # issue 8


class DurabilityBenchFailure(BenchFailure):
    """A document did not round-trip, values were lost or a job did not complete."""


# ---------------------------------------------------------------- routines


class DocStage(Routine):
    """A routine with a small config, for flow documents."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(label="", factor=1, enabled=True)
        self.define_slot("input", handler=self.step)
        self.define_event("output", ["value"])

    def step(self, value: int) -> None:
        self.emit("output", value=value * self.get_config("factor", 1))


# ------------------------------------------------------- (e) flow documents


def build_document_flow(size: int) -> Flow:
    """A chain of ``size`` DocStage routines, each with its own small config."""
    flow = Flow(flow_id="bench-documents", execution_strategy="concurrent")
    previous = None
    for i in range(size):
        stage = DocStage()
        stage.set_config(label=f"stage {i}", factor=i % 7 + 1, enabled=i % 2 == 0)
        rid = flow.add_routine(stage, f"stage{i:05d}")
        if previous is not None:
            flow.connect(previous, "output", rid, "input")
        previous = rid
    return flow


def check_rebuilt(original: Flow, rebuilt: Flow) -> None:
    if len(rebuilt.routines) != len(original.routines):
        raise DurabilityBenchFailure(
            f"documents: {len(rebuilt.routines)} of {len(original.routines)} "
            "routines rebuilt"
        )
    if len(rebuilt.connections) != len(original.connections):
        raise DurabilityBenchFailure(
            f"documents: {len(rebuilt.connections)} of "
            f"{len(original.connections)} connections rebuilt"
        )
    for rid, routine in original.routines.items():
        if rebuilt.routines[rid].config() != routine.config():
            raise DurabilityBenchFailure(f"documents: config of {rid} changed")


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure_documents(size: int, repeats: int) -> dict[str, float]:
    """Median seconds of ``to_json``, ``from_json`` and orjson on the same bytes."""
    flow = build_document_flow(size)
    times: dict[str, list[float]] = {"dump": [], "load": [], "dumps": [], "loads": []}
    raw = b""
    try:
        for _ in range(repeats):
            seconds, raw = _timed(flow.to_json)
            times["dump"].append(seconds)
            seconds, rebuilt = _timed(functools.partial(Flow.from_json, raw))
            times["load"].append(seconds)
            try:
                check_rebuilt(flow, rebuilt)
            finally:
                rebuilt.shutdown()
            seconds, document = _timed(functools.partial(orjson.loads, raw))
            times["loads"].append(seconds)
            seconds, again = _timed(functools.partial(orjson.dumps, document))
            times["dumps"].append(seconds)
            if len(again) != len(raw):
                raise DurabilityBenchFailure(
                    f"documents: orjson wrote {len(again):,} bytes of {len(raw):,}"
                )
    finally:
        flow.shutdown()
    result = {name: statistics.median(values) for name, values in times.items()}
    return {**result, "bytes": len(raw), "runs": len(times["dump"])}


# ------------------------------------------------------- (f) checkpointing


def build_chain(
    strategy: str, workers: int, store: SQLiteCheckpointStore | None
) -> tuple[Flow, Counter]:
    flow = Flow(
        flow_id=f"bench-checkpoint-{strategy}",
        execution_strategy=strategy,
        max_workers=workers,
        checkpoint_store=store,
    )
    flow.add_routine(Source(), "source")
    previous = "source"
    for stage in range(1, CHAIN_STAGES):
        flow.add_routine(Relay(), f"stage{stage}")
        flow.connect(previous, "output", f"stage{stage}", "input")
        previous = f"stage{stage}"
    counter = Counter()
    flow.add_routine(counter, f"stage{CHAIN_STAGES}")
    flow.connect(previous, "output", f"stage{CHAIN_STAGES}", "input")
    return flow, counter


def run_chain(strategy: str, workers: int, workdir: Path | None, run: int) -> float:
    """One job; seconds from ``execute`` until it is complete (checked)."""
    store = None
    if workdir is not None:
        store = SQLiteCheckpointStore(workdir / f"{strategy}-{run}.sqlite")
    flow, counter = build_chain(strategy, workers, store)
    what = f"checkpointing {strategy} ({'sqlite' if store else 'no store'})"
    try:
        gc.collect()
        start = time.perf_counter()
        job = flow.execute("source", entry_params={"count": CHAIN_EVENTS})
        if not flow.wait_for_completion(timeout=300):
            raise DurabilityBenchFailure(f"{what}: the job did not finish in 300 s")
        elapsed = time.perf_counter() - start
        if counter.arrived != CHAIN_EVENTS:
            raise DurabilityBenchFailure(
                f"{what}: {counter.arrived} of {CHAIN_EVENTS} values arrived"
            )
        if str(job.status) != "completed":
            raise DurabilityBenchFailure(f"{what}: job ended {job.status}")
        if store is not None:
            stored = store.load(job.job_id)
            if stored["status"] != "completed" or stored["pending_activations"]:
                raise DurabilityBenchFailure(
                    f"{what}: the store holds the job as {stored['status']} with "
                    f"{len(stored['pending_activations'])} pending activations"
                )
    finally:
        flow.shutdown()
        if store is not None:
            store.close()
    return elapsed


def run_emitter(workdir: Path | None, run: int) -> float:
    """One activation emitting EMIT_ITEMS values; CPU seconds until done (checked)."""
    store = None
    if workdir is not None:
        store = SQLiteCheckpointStore(workdir / f"emit-{run}.sqlite")
    flow = Flow(
        flow_id="bench-emit",
        execution_strategy="concurrent",
        max_workers=CHAIN_WORKERS,
        checkpoint_store=store,
    )
    flow.add_routine(Source(), "source")
    counter = Counter()
    flow.add_routine(counter, "sink")
    flow.connect("source", "output", "sink", "input")
    what = f"one activation emitting {EMIT_ITEMS:,} ({'sqlite' if store else 'none'})"
    try:
        gc.collect()
        start = time.process_time()
        job = flow.execute("source", entry_params={"count": EMIT_ITEMS})
        if not flow.wait_for_completion(timeout=600):
            raise DurabilityBenchFailure(f"{what}: the job did not finish in 600 s")
        elapsed = time.process_time() - start
        if counter.arrived != EMIT_ITEMS or str(job.status) != "completed":
            raise DurabilityBenchFailure(
                f"{what}: {counter.arrived} of {EMIT_ITEMS} values arrived, job "
                f"{job.status}"
            )
        if store is not None:
            stored = store.load(job.job_id)
            history = len(stored["execution_history"])
            if stored["status"] != "completed" or history != len(job.execution_history):
                raise DurabilityBenchFailure(
                    f"{what}: the store holds the job as {stored['status']} with "
                    f"{history} of {len(job.execution_history)} history entries"
                )
    finally:
        flow.shutdown()
        if store is not None:
            store.close()
    return elapsed


def measure_emitter(repeats: int) -> dict[str, float]:
    """Median CPU seconds of one EMIT_ITEMS-emit activation, without and with SQLite."""
    workdir = Path(tempfile.mkdtemp(prefix="routilux-bench-"))
    try:
        plain, stored = alternated(
            functools.partial(run_emitter, None),
            functools.partial(run_emitter, workdir),
            repeats,
        )
        return {"none_s": plain, "sqlite_s": stored}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def alternated(
    plain: Callable[[int], float], stored: Callable[[int], float], repeats: int
) -> tuple[float, float]:
    """Medians of ``plain`` and ``stored``, run in turn (as the page says).

    Load that comes and goes on a shared machine then weighs on both sides.
    """
    plain_times: list[float] = []
    stored_times: list[float] = []
    for run in range(repeats):
        plain_times.append(plain(run))
        stored_times.append(stored(run))
    return statistics.median(plain_times), statistics.median(stored_times)


def measure_checkpointing(repeats: int) -> dict[str, dict[str, float]]:
    """Median µs per activation, without and with a SQLite store, per strategy."""
    workdir = Path(tempfile.mkdtemp(prefix="routilux-bench-"))
    results: dict[str, dict[str, float]] = {}
    try:
        for strategy, workers in (("concurrent", CHAIN_WORKERS), ("sequential", 1)):
            run_chain(strategy, workers, workdir, -1)  # warm up, small cost
            plain, stored = alternated(
                functools.partial(run_chain, strategy, workers, None),
                functools.partial(run_chain, strategy, workers, workdir),
                repeats,
            )
            results[strategy] = {
                "workers": workers,
                "none_us": plain / ACTIVATIONS * 1e6,
                "sqlite_us": stored / ACTIVATIONS * 1e6,
            }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


# ------------------------------------------------------------------ report


def case_documents(opts: Options) -> list[Row]:
    """Measure and print the flow-document case. Raises DurabilityBenchFailure."""
    docs = measure_documents(FLOW_SIZE, max(3, opts.repeats))
    dump_ms, load_ms = docs["dump"] * 1e3, docs["load"] * 1e3
    dumps_ms, loads_ms = docs["dumps"] * 1e3, docs["loads"] * 1e3
    say(
        f"flow document: {FLOW_SIZE:,} routines in a chain, {FLOW_SIZE - 1:,} "
        f"connections, small configs, {int(docs['bytes']):,} bytes "
        f"({docs['bytes'] / FLOW_SIZE:.0f} per routine); {int(docs['runs'])} runs"
    )
    say(
        f"    serialize   flow.to_json()   {dump_ms:8.1f} ms   "
        f"orjson.dumps {dumps_ms:6.2f} ms"
    )
    say(
        f"    deserialize Flow.from_json() {load_ms:8.1f} ms   "
        f"orjson.loads {loads_ms:6.2f} ms"
    )
    return [
        Row(
            f"document {FLOW_SIZE:,} routines, serialize",
            f"{dump_ms:.1f} ms",
            f"{dumps_ms:.2f} ms orjson.dumps",
            f"{dump_ms / dumps_ms:.0f}x orjson",
            f"<= {TARGET_SERIALIZE_MS:.0f} ms (#8)",
            verdict_at_most(dump_ms, TARGET_SERIALIZE_MS),
        ),
        Row(
            f"document {FLOW_SIZE:,} routines, deserialize",
            f"{load_ms:.1f} ms",
            f"{loads_ms:.2f} ms orjson.loads",
            f"{load_ms / loads_ms:.0f}x orjson",
            f"<= {TARGET_DESERIALIZE_MS:.0f} ms (#8)",
            verdict_at_most(load_ms, TARGET_DESERIALIZE_MS),
        ),
    ]


def case_checkpoint(opts: Options) -> list[Row]:
    """Measure and print the checkpointing case. Raises DurabilityBenchFailure."""
    checkpoints = measure_checkpointing(CHECKPOINT_REPEATS)
    say(
        f"checkpointing, one job of {ACTIVATIONS:,} activations "
        f"({CHAIN_EVENTS:,} values x {CHAIN_STAGES} stages + the source):"
    )
    rows = []
    for strategy, row in checkpoints.items():
        label = f"{strategy}({int(row['workers'])})"
        ratio = row["sqlite_us"] / row["none_us"]
        say(
            f"    {label:<14} no store {row['none_us']:7.1f} us/activation   "
            f"SQLite {row['sqlite_us']:7.1f} us/activation   ratio {ratio:.1f}x "
            f"(+{row['sqlite_us'] - row['none_us']:.0f} us)"
        )
        rows.append(
            Row(
                f"checkpoint SQLite, {label}",
                f"{row['sqlite_us']:.1f} us/activation",
                f"{row['none_us']:.1f} us no store",
                f"{ratio:.1f}x no store",
                "-",
                "info",
            )
        )
    emit = measure_emitter(CHECKPOINT_REPEATS)
    ratio = emit["sqlite_s"] / emit["none_s"]
    say(
        f"    one activation emitting {EMIT_ITEMS:,} (concurrent({CHAIN_WORKERS})): "
        f"no store {emit['none_s']:.2f} s CPU   SQLite {emit['sqlite_s']:.2f} s CPU"
        f"   ratio {ratio:.1f}x"
    )
    rows.append(
        Row(
            f"checkpoint SQLite, one activation emitting {EMIT_ITEMS:,}",
            f"{emit['sqlite_s']:.2f} s CPU",
            f"{emit['none_s']:.2f} s CPU no store",
            f"{ratio:.1f}x no store",
            f"<= {TARGET_EMIT_RATIO:.0f}x (#10)",
            verdict_at_most(ratio, TARGET_EMIT_RATIO),
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="routilux durability benchmarks")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per case")
    args = parser.parse_args(argv)
    opts = Options(repeats=args.repeats)
    rows = case_documents(opts) + case_checkpoint(opts)
    print()
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchFailure as failure:
        print(f"\nBENCH FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
