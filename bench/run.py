"""``make bench``: routilux's costs beside plain Python, against issue 8's targets.

Every figure is the median of several repeats and stands beside a plain-Python
baseline measured in the same run, with its target beside it (issue 8's, or issue
3's where issue 8 sets none). Targets are reported, never asserted. Every repeat
checks that no work was lost (every event arrived, every job completed, every
connection exists); a case that loses work is reported as FAILED and the run
exits non-zero after printing the rest.

Cases, in the order they run (select some with ``--only jobs,chain``); each
module's docstring says exactly what it and its baseline do:

=============  ===================  =============================================
name           module               what
=============  ===================  =============================================
jobs           bench/jobs.py        10,000 executes of a 2-routine flow
chain          bench/hops.py        chain of 10 routines at 1k/10k/50k events
fanout         bench/latency.py     100 sleepers on 20 workers
step2          bench/latency.py     seed 004 step 2 (3 x 0.2 s on 3 workers)
validate       bench/structure.py   validate() on a 2,000-routine chain
connect        bench/structure.py   one event connected to 4,000 / 16,000 slots
documents      bench/durability.py  to_json / from_json of 2,000 routines
checkpoint     bench/durability.py  SQLite checkpointing per activation
async          bench/async_handlers 1,000 async handlers (skipped if unsupported)
ray            bench/ray_case.py    Ray strategy: CPU and I/O fan-outs, overhead
                                    (skipped without Ray)
=============  ===================  =============================================

The run ends with a markdown table (paste it into a note) and the seconds each
case took. ``--write-results FILE`` also writes the table, the machine and the
load as JSON (bench/results.py); docs/performance.rst is built from
docs/_static/bench.json, written this way.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from async_handlers import case_async
from common import BenchFailure, Options, Row, load_average, markdown_table, say
from durability import case_checkpoint, case_documents
from hops import case_chain
from jobs import case_jobs
from latency import case_fanout, case_step2
from ray_case import case_ray
from results import machine_facts, results_document, write_results
from structure import case_connect, case_validate

if TYPE_CHECKING:
    from collections.abc import Callable

CASES: dict[str, Callable[[Options], list[Row]]] = {
    "jobs": case_jobs,
    "chain": case_chain,
    "fanout": case_fanout,
    "step2": case_step2,
    "validate": case_validate,
    "connect": case_connect,
    "documents": case_documents,
    "checkpoint": case_checkpoint,
    "async": case_async,
    "ray": case_ray,
}


def machine(facts: dict[str, Any]) -> str:
    return (
        f"routilux {facts['routilux']} at {facts['git']}, {facts['date']}\n"
        f"machine: {facts['platform']}, {facts['cpus']} CPUs ({facts['cpu']})\n"
        f"Python {facts['python']}; {load_average()} at the start"
    )


def parse(argv: list[str] | None) -> tuple[Options, list[str], Path | None]:
    parser = argparse.ArgumentParser(
        description="routilux benchmarks (make bench)",
        epilog="cases: " + ", ".join(CASES),
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated case names to run (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 repeats per case and a short budget (same sizes; noisier medians)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="repeats per case")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds per measurement before cutting repeats (3 runs at least)",
    )
    parser.add_argument(
        "--events", type=int, default=10_000, help="chain events at the middle size"
    )
    parser.add_argument(
        "--write-results",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the table and the machine as JSON (docs/_static/bench.json "
        "feeds the documentation's performance page)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    repeats = args.repeats or (3 if args.quick else 5)
    budget = args.budget or (3.0 if args.quick else 15.0)
    opts = Options(repeats, budget, args.quick, args.events)
    return opts, names, args.write_results


def main(argv: list[str] | None = None) -> int:
    opts, names, results_path = parse(argv)
    facts = machine_facts()
    say(machine(facts))
    say(
        f"cases: {', '.join(names)}; median of up to {opts.repeats} repeats "
        f"(at least 3; cut after {opts.budget:g} s per measurement)"
    )
    rows: list[Row] = []
    took: dict[str, float] = {}
    failed: list[str] = []
    started = time.perf_counter()
    for name in names:
        say()
        say(f"== {name}")
        begin = time.perf_counter()
        try:
            rows += CASES[name](opts)
        except BenchFailure as failure:
            failed.append(name)
            say(f"BENCH FAILED ({name}): {failure}")
            rows.append(Row(name, "FAILED", "-", "-", "-", "FAILED"))
        except Exception:
            failed.append(name)
            say(f"BENCH FAILED ({name}), it raised:\n{traceback.format_exc()}")
            rows.append(Row(name, "ERROR", "-", "-", "-", "FAILED"))
        took[name] = time.perf_counter() - begin
    total = time.perf_counter() - started
    say()
    say(markdown_table(rows))
    say()
    per_case = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in took.items())
    say(f"seconds per case: {per_case}; total {total:.0f} s")
    say(f"{load_average()} at the end (other work on the machine skews figures)")
    say(
        "(#8) / (#3): the target's issue. Every repeat checked its counts; "
        + (f"FAILED: {', '.join(failed)}." if failed else "no work was lost.")
    )
    if results_path is not None:
        write_results(results_path, results_document(facts, opts, rows, took, failed))
        say(f"results written to {results_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
