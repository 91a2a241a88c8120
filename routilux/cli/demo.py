"""``routilux demo``: the bundled demos, with live progress.

* ``concurrent``: four fetchers run side by side on a pool; a collector gathers
  what they send.
* ``affinity``: three sessions ask a desk questions concurrently; each session's
  questions are answered in order and the desk remembers them per session.
* ``benchmark``: the fetchers run sequentially, then concurrently; the times
  and the speed-up.
* ``errors``: one fetcher fails once and is retried, one always fails and the
  job goes on without it (a dead letter is kept).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

from .demos import SOURCES, SessionDesk, fetch_flow, session_flow
from .display import make_view
from .progress import Progress

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..flow import Flow
    from ..job_state import JobState

__all__ = ["DEMOS", "demo"]

_WAIT = 60.0  # seconds a demo's jobs may take before it gives up


def _finished(flow: Flow, jobs: list[JobState]) -> None:
    if not flow.wait_for_completion(_WAIT):
        raise RuntimeError(f"demo flow {flow.flow_id!r} still running after {_WAIT}s")
    for job in jobs:
        job.wait()


def concurrent(progress: Progress) -> None:
    """Fetchers side by side into a collector."""
    with progress.watch(fetch_flow("demo-concurrent")) as flow:
        began = time.perf_counter()
        job = flow.execute("fanout", {"request": "daily"})
        _finished(flow, [job])
        took = time.perf_counter() - began
        collector = flow.routines["collector"]
        collected = sorted(getattr(collector, "sources", ()))
    click.echo(f"job {job.status.value}: collected {', '.join(collected)}")
    click.echo(f"{len(SOURCES)} fetchers of 0.05s each took {took:.2f}s together")


def affinity(progress: Progress) -> None:
    """Three sessions, each keeping its own memory, run concurrently."""
    sessions = {
        "classification": ["is it positive?", "and this one?"],
        "translation": ["hello", "world", "good night"],
        "summary": ["read chapter 1", "read chapter 2"],
    }
    with progress.watch(session_flow("demo-affinity")) as flow:
        jobs = [
            flow.execute("client", {"questions": questions}, session=session)
            for session, questions in sessions.items()
        ]
        _finished(flow, jobs)
        desk = flow.routines["desk"]
        assert isinstance(desk, SessionDesk)
        for session in sessions:
            asked = desk.memory.get(session, [])
            click.echo(f"session {session}: remembered {len(asked)}: {asked}")
    statuses = ", ".join(job.status.value for job in jobs)
    click.echo(f"{len(jobs)} jobs, one per session: {statuses}")


def benchmark(progress: Progress) -> None:
    """The same fetchers, sequentially then concurrently."""
    took = {}
    for strategy in ("sequential", "concurrent"):
        with progress.watch(fetch_flow(f"demo-{strategy}", strategy)) as flow:
            began = time.perf_counter()
            job = flow.execute("fanout", {"request": "daily"})
            _finished(flow, [job])
            took[strategy] = time.perf_counter() - began
        click.echo(f"{strategy:<10} {took[strategy]:.3f}s ({job.status.value})")
    ratio = took["sequential"] / took["concurrent"]
    click.echo(f"speed-up: {ratio:.1f}x with {len(SOURCES)} workers")


def errors(progress: Progress) -> None:
    """A retried failure and a failure the job continues past."""
    flaky = {"inventory": 1, "prices": -1}
    with progress.watch(fetch_flow("demo-errors", flaky=flaky)) as flow:
        job = flow.execute("fanout", {"request": "daily"})
        _finished(flow, [job])
        letters = flow.dead_letters()
    click.echo(f"job {job.status.value}")
    for rid, state in sorted(job.routine_states.items()):
        error = f" ({state.error_type}: {state.error})" if state.error else ""
        click.echo(f"  {rid:<16} {state.status}{error}")
    click.echo(f"{len(letters)} dead letter(s): {[x.routine_id for x in letters]}")


DEMOS: dict[str, Callable[[Progress], None]] = {
    "concurrent": concurrent,
    "affinity": affinity,
    "benchmark": benchmark,
    "errors": errors,
}


@click.command()
@click.argument("name", type=click.Choice(list(DEMOS)), default="concurrent")
@click.option("--no-progress", is_flag=True, help="Print no progress.")
def demo(name: str, no_progress: bool) -> None:
    """Run a bundled demo: concurrent, affinity, benchmark or errors."""
    with Progress(make_view(sys.stdout, wanted=not no_progress)) as progress:
        DEMOS[name](progress)
