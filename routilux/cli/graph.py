"""``routilux graph`` and ``routilux validate``: a flow's picture and its findings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .common import (
    Failure,
    counted,
    load_flow,
    open_store,
    store_option,
    target_arguments,
)
from .drawing import draw

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["graph", "job_states", "validate"]


@click.command()
@target_arguments
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "text"]),
    default="text",
    show_default=True,
    help="mermaid flowchart, Graphviz DOT, or plain text.",
)
@click.option("--job", "job_id", metavar="JOB_ID", help="Colour by this job's states.")
@store_option(required=False)
def graph(
    target: str,
    allowed_modules: tuple[str, ...],
    fmt: str,
    job_id: str | None,
    store_path: str | None,
) -> None:
    """Draw TARGET's wiring: slots, events, policies; a job's states with --job."""
    if (job_id is None) != (store_path is None):
        raise Failure("--job and --store go together")
    states = None
    if job_id is not None and store_path is not None:
        states = job_states(store_path, job_id)
    flow = load_flow(target, allowed_modules)
    try:
        click.echo(draw(flow, fmt, states), nl=False)
    finally:
        flow.shutdown(wait=True)


def job_states(store_path: str, job_id: str) -> dict[str, str]:
    """Routine id -> the state job ``job_id`` in the store recorded for it.

    A routine with activations still pending is ``pending`` unless it failed.
    """
    store = open_store(store_path)
    try:
        document = store.load(job_id)
    finally:
        store.close()
    states = {
        rid: str(state.get("status"))
        for rid, state in (document.get("routine_states") or {}).items()
        if isinstance(state, dict)
    }
    waiting: Iterable[Any] = [
        *(document.get("pending_activations") or ()),
        *(document.get("pending_tasks") or ()),
    ]
    for activation in waiting:
        rid = activation.get("routine_id") if isinstance(activation, dict) else None
        if isinstance(rid, str) and states.get(rid) != "failed":
            states[rid] = "pending"
    return states


@click.command()
@target_arguments
def validate(target: str, allowed_modules: tuple[str, ...]) -> None:
    """Check TARGET's wiring; print the findings; exit 1 when one is an error."""
    flow = load_flow(target, allowed_modules)
    try:
        findings = flow.validate()
    finally:
        flow.shutdown(wait=True)
    for finding in findings:
        click.echo(str(finding))
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    click.echo(f"{counted(errors, 'error')}, {counted(warnings, 'warning')}")
    if errors:
        raise Failure(f"flow {flow.flow_id!r}: {counted(errors, 'error')}", code=1)
