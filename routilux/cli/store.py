"""``routilux jobs``, ``show`` and ``dead-letters``: what a checkpoint store keeps."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from ..runtime.held import marker_of
from ..runtime.stream import progress_of
from .common import (
    Failure,
    console,
    counted,
    dump_json,
    load_flow,
    open_store,
    store_option,
)
from .run import report, watched

if TYPE_CHECKING:
    from ..persistence import CheckpointStore

__all__ = ["dead_letters", "jobs", "show"]

_SHORT = 60  # characters of a value shown in a table cell


@click.command()
@store_option(required=True)
@click.option("--status", help="Only jobs with this status (completed, failed...).")
@click.option("--flow", "flow_id", help="Only jobs of this flow id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def jobs(
    store_path: str, status: str | None, flow_id: str | None, as_json: bool
) -> None:
    """List the jobs kept in the store, oldest first."""
    with _store(store_path) as store:
        found = store.list_jobs(flow_id=flow_id, status=status)
    if as_json:
        click.echo(dump_json(found))
        return
    table = Table("job", "flow", "status", "updated", box=None, pad_edge=False)
    for job in found:
        table.add_row(job["job_id"], job["flow_id"], job["status"], job["updated_at"])
    console().print(table)
    click.echo(counted(len(found), "job"))


@click.command()
@click.argument("job_id")
@store_option(required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the stored document.")
def show(job_id: str, store_path: str, as_json: bool) -> None:
    """Show job JOB_ID: its states, history and errors, as tables."""
    with _store(store_path) as store:
        document = store.load(job_id)
    if as_json:
        click.echo(dump_json(document))
        return
    out = console()
    out.print(f"job {document.get('job_id')} of flow {document.get('flow_id')}")
    out.print(f"status: {document.get('status')}")
    for key in ("created_at", "updated_at", "cancel_reason", "cancel_source"):
        if document.get(key):
            out.print(f"{key.replace('_', ' ')}: {document[key]}")
    pending = document.get("pending_activations") or []
    # Held rows (inbox and merge-slot arrivals) and progress rows (emits a
    # running activation stored) are not work to run.
    held = sum(isinstance(a, dict) and marker_of(a) is not None for a in pending)
    counts = sum(isinstance(a, dict) and progress_of(a) is not None for a in pending)
    line = f"pending activations: {len(pending) - held - counts}"
    extra = [f"{held} held arrivals"] if held else []
    extra += [f"{counts} progress entries"] if counts else []
    out.print(line + (f" (and {', '.join(extra)})" if extra else ""))
    out.print(_states_table(document.get("routine_states") or {}))
    out.print(_history_table(document.get("execution_history") or []))
    out.print(_errors_table(document.get("errors") or []))


@click.command("dead-letters")
@store_option(required=True)
@click.argument("target", required=False)
@click.option("--job", "job_id", metavar="JOB_ID", help="Only this job's letters.")
@click.option("--all", "include_replayed", is_flag=True, help="Replayed ones too.")
@click.option(
    "--replay", is_flag=True, help="Run the letters again as one job of TARGET."
)
@click.option(
    "--allow-module",
    "allowed_modules",
    multiple=True,
    metavar="MODULE",
    help="A module a flow document may import routine classes from.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-progress", is_flag=True, help="Print no progress (--replay).")
def dead_letters(
    store_path: str,
    target: str | None,
    job_id: str | None,
    include_replayed: bool,
    replay: bool,
    allowed_modules: tuple[str, ...],
    as_json: bool,
    no_progress: bool,
) -> None:
    """List the dead letters in the store; with --replay, run them on TARGET."""
    if replay:
        if target is None:
            raise Failure("--replay needs the TARGET whose flow runs the letters")
        _replay(store_path, target, allowed_modules, job_id, as_json, no_progress)
        return
    with _store(store_path) as store:
        listing = getattr(store, "dead_letters", None)
        if listing is None:
            raise Failure(f"{store_path}: this store keeps no dead letters")
        flow_id = None
        if target is not None:
            flow = load_flow(target, allowed_modules)
            flow_id = flow.flow_id
            flow.shutdown()
        letters = listing(
            flow_id=flow_id, job_id=job_id, include_replayed=include_replayed
        )
    if as_json:
        click.echo(dump_json(letters))
        return
    table = Table(
        "letter", "job", "routine.slot", "error", "attempts", box=None, pad_edge=False
    )
    for letter in letters:
        table.add_row(
            letter["letter_id"],
            letter["job_id"],
            f"{letter['routine_id']}.{letter['slot']}",
            _short(f"{letter['error_type']}: {letter['error']}"),
            str(letter["attempts"]),
        )
    console().print(table)
    click.echo(counted(len(letters), "dead letter"))


def _replay(
    store_path: str,
    target: str,
    allowed_modules: tuple[str, ...],
    job_id: str | None,
    as_json: bool,
    no_progress: bool,
) -> None:
    flow = load_flow(target, allowed_modules)
    try:
        flow.checkpoint_store = open_store(store_path, writable=True)
        letters = flow.dead_letters(job_id=job_id)
        if not letters:
            raise Failure(
                f"{store_path}: no dead letters of flow {flow.flow_id!r} to replay",
                code=1,
            )
        job, elapsed = watched(
            flow, lambda: flow.replay(letters), as_json=as_json, no_progress=no_progress
        )
    finally:
        flow.shutdown(wait=True)
        if flow.checkpoint_store is not None:
            flow.checkpoint_store.close()
    report(flow, job, elapsed, as_json)


class _store:  # lower case: used as a context manager, like open()
    """Open the store at a path for reading; close it after."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._store: CheckpointStore | None = None

    def __enter__(self) -> CheckpointStore:
        self._store = open_store(self._path)
        return self._store

    def __exit__(self, *exc_info: object) -> None:
        if self._store is not None:
            self._store.close()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else dump_json(value)
    text = " ".join(text.split())
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


def _states_table(states: dict[str, Any]) -> Table:
    table = Table(
        "routine", "status", "error", title="routine states", box=None, pad_edge=False
    )
    for rid, state in states.items():
        state = state if isinstance(state, dict) else {}
        error = state.get("error")
        error_text = f"{state.get('error_type')}: {error}" if error else ""
        table.add_row(rid, str(state.get("status")), _short(error_text))
    return table


def _history_table(history: list[Any]) -> Table:
    table = Table(
        "time", "routine", "event", "data", title="history", box=None, pad_edge=False
    )
    for record in history:
        if isinstance(record, dict):
            table.add_row(
                _clock(record.get("timestamp")),
                str(record.get("routine_id")),
                str(record.get("event_name")),
                _short(record.get("data")),
            )
    return table


def _errors_table(errors: list[Any]) -> Table:
    table = Table(
        "routine.slot", "attempt", "error", title="errors", box=None, pad_edge=False
    )
    for error in errors:
        if isinstance(error, dict):
            table.add_row(
                f"{error.get('routine_id')}.{error.get('slot')}",
                str(error.get("attempt")),
                _short(f"{error.get('error_type')}: {error.get('message')}"),
            )
    return table


def _clock(stamp: Any) -> str:
    # The time of day is enough in a table; the date is in the header.
    if not isinstance(stamp, str):
        return str(stamp)
    try:
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return moment.strftime("%H:%M:%S.%f")[:-3]
