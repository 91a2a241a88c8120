"""``routilux bench``: a flow's time against plain Python calls of its handlers.

The flow runs ``--repeats`` jobs (timed from ``execute`` to the job's end, the
flow built beforehand). One more job, with a hook recording every activation
(routine, slot and the payload its handler got), gives the baseline's inputs.
The baseline then calls the same handlers with the same payloads, directly, in
one thread, routine by routine in topological order of the wiring (in the
recorded order within a routine, and for the routines of a cycle); the
handlers' emits are dropped, since the recorded payloads already carry them.
``async def`` handlers are run on one event loop. Both medians and their ratio
are printed.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import statistics
import threading
import time
from typing import TYPE_CHECKING, Any

import click
import networkx as nx

from ..hooks import FlowHooks
from ..merge import AppendView
from .common import Failure, dump_json, load_flow, target_arguments
from .run import entry_of, parse_params

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..flow import Flow
    from ..hooks import ActivationInfo
    from ..job_state import JobState

__all__ = ["Recorder", "baseline_calls", "bench"]


class Recorder(FlowHooks):
    """Keeps ``(routine_id, slot, payload)`` of every activation, in start order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def on_activation_start(self, job: JobState, activation: ActivationInfo) -> None:
        """Copy the payload (an append slot's views become lists)."""
        payload = {
            key: list(value) if isinstance(value, AppendView) else value
            for key, value in activation.payload.items()
        }
        with self._lock:
            self.calls.append((activation.routine_id, activation.slot, payload))


def baseline_calls(
    flow: Flow, recorded: list[tuple[str, str, dict[str, Any]]]
) -> list[tuple[Callable[[dict[str, Any]], Any], dict[str, Any]]]:
    """The recorded calls as ``(invoke, payload)``, in topological order."""
    try:
        order = {rid: n for n, rid in enumerate(nx.topological_sort(flow.graph))}
    except nx.NetworkXUnfeasible:  # a cycle: the order the job ran them in
        order = {}
    first_seen: dict[str, int] = {}
    for n, (rid, _, _) in enumerate(recorded):
        first_seen.setdefault(rid, n)
    ranked = sorted(
        enumerate(recorded),
        key=lambda item: (order.get(item[1][0], first_seen[item[1][0]]), item[0]),
    )
    calls = []
    for _, (rid, slot_name, payload) in ranked:
        slot = flow.routines[rid].get_slot(slot_name)
        if slot is None:  # the entry slot of a 0.9 routine: its __call__
            calls.append((_calling(flow.routines[rid]), payload))
        else:
            calls.append((slot.invoke, payload))
    return calls


def _calling(routine: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda payload: routine(**payload)


@click.command()
@target_arguments
@click.option("--entry", metavar="ID", help="The routine that starts the job.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE")
@click.option("--params-json", metavar="FILE", help="Entry parameters (JSON object).")
@click.option("--repeats", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench(
    target: str,
    allowed_modules: tuple[str, ...],
    entry: str | None,
    params: tuple[str, ...],
    params_json: str | None,
    repeats: int,
    as_json: bool,
) -> None:
    """Time TARGET's flow against plain calls of the same handlers."""
    entry_params = parse_params(params, params_json)
    flow = load_flow(target, allowed_modules)
    try:
        start_at = entry_of(flow, entry)
        timed = [_job_time(flow, start_at, entry_params) for _ in range(repeats)]
        recorder = Recorder()
        flow.add_hooks(recorder)
        _job_time(flow, start_at, entry_params)
        calls = baseline_calls(flow, recorder.calls)
        base = [_baseline_time(flow, calls) for _ in range(repeats)]
    finally:
        flow.shutdown(wait=True)
    routilux_median = statistics.median(timed)
    baseline_median = statistics.median(base)
    ratio = routilux_median / max(baseline_median, 1e-9)
    if as_json:
        click.echo(
            dump_json(
                {
                    "flow_id": flow.flow_id,
                    "strategy": flow.execution_strategy,
                    "workers": flow.max_workers,
                    "repeats": repeats,
                    "handler_calls": len(calls),
                    "routilux_median_seconds": routilux_median,
                    "baseline_median_seconds": baseline_median,
                    "ratio": ratio,
                }
            )
        )
        return
    click.echo(
        f"routilux: median {_ms(routilux_median)} over {repeats} jobs "
        f"({flow.execution_strategy}, {flow.max_workers} workers)"
    )
    click.echo(
        f"baseline: median {_ms(baseline_median)} over {repeats} runs "
        f"({len(calls)} handler calls, plain Python, one thread)"
    )
    click.echo(f"ratio: {ratio:.1f}x")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def _job_time(flow: Flow, entry: str, params: dict[str, Any]) -> float:
    gc.collect()
    began = time.perf_counter()
    job = flow.execute(entry, dict(params))
    job.wait()
    took = time.perf_counter() - began
    if job.status.value != "completed":
        first = job.errors[0] if job.errors else None
        why = f": {first.error_type}: {first.message}" if first else ""
        raise Failure(f"job {job.job_id} {job.status.value}{why}", code=1)
    return took


def _baseline_time(
    flow: Flow, calls: list[tuple[Callable[[dict[str, Any]], Any], dict[str, Any]]]
) -> float:
    gc.collect()
    loop = asyncio.new_event_loop()
    emitting = list(flow.routines.values())
    for routine in emitting:
        routine.emit = _dropped  # type: ignore[method-assign]
    try:
        began = time.perf_counter()
        for invoke, payload in calls:
            value = invoke(payload)
            if inspect.isawaitable(value):
                loop.run_until_complete(value)
        return time.perf_counter() - began
    finally:
        for routine in emitting:
            del routine.emit
        loop.close()


def _dropped(event_name: str, flow: Any = None, **data: Any) -> None:
    """Stands in for ``Routine.emit`` in the baseline."""
