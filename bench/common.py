"""What every ``make bench`` case shares: options, repeats, checks and table rows.

A case is a function ``case(options) -> list[Row]``. It prints its own detail lines
as it goes and returns the rows of the final table. It raises :class:`BenchFailure`
when work was lost (an event that did not arrive, a job that did not complete, a
connection that is missing): a benchmark that loses work measures nothing.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from routilux import Flow


class BenchFailure(Exception):
    """Work was lost, or a job did not complete."""


@dataclass(frozen=True)
class Options:
    """How hard to measure: repeats per case and seconds before cutting repeats."""

    repeats: int = 5
    budget: float = 15.0
    quick: bool = False
    events: int = 10_000


@dataclass(frozen=True)
class Row:
    """One line of the final table.

    ``verdict`` is "met", "MISSED", "info" (no target) or "skipped".
    """

    case: str
    routilux: str
    baseline: str
    ratio: str
    target: str
    verdict: str


def verdict_at_most(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"


def verdict_at_least(value: float, limit: float) -> str:
    return "met" if value >= limit else "MISSED"


def repeat(fn: Callable[[], float], repeats: int, budget: float) -> list[float]:
    """Run ``fn`` (it returns its own timed seconds) up to ``repeats`` times.

    Collects garbage before each run. Stops early once ``budget`` seconds are
    spent and three runs are in.
    """
    times: list[float] = []
    spent = time.perf_counter()
    while len(times) < repeats:
        gc.collect()
        times.append(fn())
        if len(times) >= 3 and time.perf_counter() - spent > budget:
            break
    return times


def repeat_pair(
    measured: Callable[[], float],
    baseline: Callable[[], float],
    repeats: int,
    budget: float,
) -> tuple[list[float], list[float]]:
    """Like :func:`repeat`, alternating routilux and its baseline run by run.

    On a shared machine, load that comes and goes then weighs on both alike.
    """
    times: list[float] = []
    base: list[float] = []
    spent = time.perf_counter()
    while len(times) < repeats:
        gc.collect()
        times.append(measured())
        gc.collect()
        base.append(baseline())
        if len(times) >= 3 and time.perf_counter() - spent > budget:
            break
    return times, base


def load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def median(times: list[float]) -> float:
    return statistics.median(times)


def status(job: Any) -> str:
    value = getattr(job, "status", None)
    return str(getattr(value, "value", value))


def check(what: str, got: int, want: int, job: Any = None) -> None:
    """Raise BenchFailure unless ``got == want`` and ``job`` (if any) completed."""
    if got != want:
        raise BenchFailure(f"{what}: {got:,} of {want:,} arrived (work lost)")
    if job is not None and status(job) != "completed":
        raise BenchFailure(f"{what}: job ended {status(job)!r}, not 'completed'")


def wait(flow: Flow, what: str, timeout: float = 300.0) -> None:
    if not flow.wait_for_completion(timeout=timeout):
        raise BenchFailure(f"{what}: wait_for_completion timed out after {timeout}s")


def say(text: str = "") -> None:
    """Print a detail line at once (the lead watches long runs)."""
    print(text)
    sys.stdout.flush()


def markdown_table(rows: list[Row]) -> str:
    """The rows as a GitHub-flavoured markdown table, columns padded to align."""
    header = Row("case", "routilux", "baseline", "ratio", "target", "verdict")
    cells = [
        [r.case, r.routilux, r.baseline, r.ratio, r.target, r.verdict]
        for r in [header, *rows]
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            + " |"
        )
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
