"""``routilux run`` and ``routilux resume``: a job with live progress, then its result.

The summary goes to stdout (as JSON with ``--json``); progress goes to stdout,
or to stderr with ``--json`` so that stdout stays one JSON document. A job that
did not complete exits 1 with one line on stderr naming its first error.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import click

from ..exceptions import JobStateError
from .common import (
    Failure,
    dump_json,
    load_flow,
    open_store,
    store_option,
    target_arguments,
)
from .display import make_view
from .interrupt import cancelling_on_ctrl_c
from .progress import Progress

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..flow import Flow
    from ..job_state import JobState

_WAKE_SECONDS = 0.2

__all__ = [
    "entry_of",
    "parse_params",
    "refuse_running_elsewhere",
    "resume",
    "run_command",
    "watched",
]


@click.command("run")
@target_arguments
@click.option("--entry", metavar="ID", help="The routine that starts the job.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="An entry parameter (repeatable); VALUE is read as JSON when it is "
    "JSON (42, true, [1,2]), else as text.",
)
@click.option(
    "--params-json",
    metavar="FILE",
    help="Entry parameters: a JSON object in FILE ('-' for stdin); --param wins.",
)
@click.option("--strategy", metavar="NAME", help="sequential, concurrent, ...")
@click.option("--workers", type=click.IntRange(min=1), help="Worker threads.")
@store_option(required=False)
@click.option("--timeout", type=click.FloatRange(min=0), help="Cancel after seconds.")
@click.option(
    "--job-id",
    metavar="ID",
    help="The job's id, chosen by you: a job of that id already in the store is "
    "reported, not run again.",
)
@click.option(
    "--resume-interrupted",
    is_flag=True,
    help="With --job-id: a job of that id the store holds as interrupted (its "
    "process is gone) is resumed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="Print no progress.")
def run_command(
    target: str,
    allowed_modules: tuple[str, ...],
    entry: str | None,
    params: tuple[str, ...],
    params_json: str | None,
    strategy: str | None,
    workers: int | None,
    store_path: str | None,
    timeout: float | None,
    job_id: str | None,
    resume_interrupted: bool,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Run TARGET's flow once and print the job's summary and result."""
    if resume_interrupted and job_id is None:
        raise Failure("--resume-interrupted needs --job-id")
    entry_params = parse_params(params, params_json)
    flow = load_flow(target, allowed_modules)
    try:
        if strategy is not None or workers is not None:
            flow.set_execution_strategy(strategy or flow.execution_strategy, workers)
        if store_path is not None:
            flow.checkpoint_store = open_store(store_path, create=True)
        start_at = entry_of(flow, entry)
        if job_id is not None:
            refuse_running_elsewhere(flow, job_id, resume_interrupted)
        job, elapsed = watched(
            flow,
            lambda: flow.execute(
                start_at,
                entry_params,
                timeout=timeout,
                job_id=job_id,
                resume_interrupted=resume_interrupted,
            ),
            as_json=as_json,
            no_progress=no_progress,
        )
    finally:
        _close(flow)
    report(flow, job, elapsed, as_json)


@click.command()
@click.argument("job_id")
@store_option(required=True)
@target_arguments
@click.option(
    "--allow-changes",
    is_flag=True,
    help="Resume on a flow whose shape changed: activations that lost their "
    "routine or slot are dropped (and recorded).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="Print no progress.")
def resume(
    job_id: str,
    store_path: str,
    target: str,
    allowed_modules: tuple[str, ...],
    allow_changes: bool,
    as_json: bool,
    no_progress: bool,
) -> None:
    """Finish job JOB_ID kept in the store, on TARGET's flow (same flow id)."""
    flow = load_flow(target, allowed_modules)
    try:
        flow.checkpoint_store = open_store(store_path, writable=True)
        job, elapsed = watched(
            flow,
            lambda: flow.resume(job_id, allow_changes=allow_changes),
            as_json=as_json,
            no_progress=no_progress,
        )
    finally:
        _close(flow)
    report(flow, job, elapsed, as_json)


def refuse_running_elsewhere(flow: Flow, job_id: str, resume_interrupted: bool) -> None:
    """Fail (exit 1) when the store holds ``job_id`` running, and it is not ours.

    A finished job of that id is reported as it is stored; a running one would
    leave this command waiting on a snapshot that never changes.

    Raises:
        Failure: The job runs in another process, or is interrupted and
            ``--resume-interrupted`` was not given.
    """
    store = flow.checkpoint_store
    if store is None:
        return
    running = {row["job_id"] for row in store.list_jobs(flow.flow_id, "running")}
    if job_id not in running:
        return
    interrupted = {
        row["job_id"] for row in store.list_jobs(flow.flow_id, "interrupted")
    }
    if job_id not in interrupted:
        raise Failure(f"job {job_id} is running in another process", code=1)
    if not resume_interrupted:
        raise Failure(
            f"job {job_id} was interrupted: resume it with --resume-interrupted "
            "(or routilux resume)",
            code=1,
        )


def _close(flow: Flow) -> None:
    """Shut the flow down and close the store the command opened for it."""
    flow.shutdown(wait=True)
    if flow.checkpoint_store is not None:
        flow.checkpoint_store.close()


def parse_params(pairs: tuple[str, ...], params_json: str | None) -> dict[str, Any]:
    """The entry parameters of ``--params-json`` and ``--param`` (which wins).

    Raises:
        Failure: (exit 2) for a file that cannot be read or is not a JSON
            object, or a ``--param`` without ``=``.
    """
    params: dict[str, Any] = {}
    if params_json is not None:
        params.update(_params_file(params_json))
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise Failure(f"--param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params


def _params_file(path: str) -> dict[str, Any]:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise Failure(f"--params-json {path}: {exc.strerror or exc}") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Failure(f"--params-json {path}: malformed JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise Failure(
            f"--params-json {path}: expected a JSON object, got {type(value).__name__}"
        )
    return value


def entry_of(flow: Flow, entry: str | None) -> str:
    """``entry``, or the flow's one routine that can start a job and is not fed.

    Raises:
        Failure: (exit 2) when ``entry`` is None and there is not exactly one.
    """
    if entry is not None:
        return entry
    fed = {target for _, target in flow.graph.edges()}
    found = [
        rid
        for rid, routine in flow.routines.items()
        if routine.entry_slot() is not None and rid not in fed
    ]
    if len(found) != 1:
        raise Failure(
            f"flow {flow.flow_id!r} has {len(found)} entry routines {found}: "
            "choose one with --entry"
        )
    return found[0]


def watched(
    flow: Flow,
    start: Callable[[], JobState],
    *,
    as_json: bool,
    no_progress: bool,
) -> tuple[JobState, float]:
    """Start a job with ``start`` under a progress display; wait for its end."""
    stream: TextIO = sys.stderr if as_json else sys.stdout
    progress = Progress(make_view(stream, wanted=not no_progress))
    progress.watch(flow)
    began = time.perf_counter()
    with progress, cancelling_on_ctrl_c(flow, progress) as interrupted:
        job = start()
        if interrupted.is_set():  # it came before this job started
            flow.cancel(job, "interrupted")
        # Python runs signal handlers in the main thread only, and a SIGINT
        # that a worker thread received does not wake a blocked wait: wake up
        # now and then so that Ctrl-C is handled at once.
        while not job.wait(_WAKE_SECONDS):
            pass
    return job, time.perf_counter() - began


def summary(flow: Flow, job: JobState, elapsed: float) -> dict[str, Any]:
    """The job as ``--json`` prints it (with the strategy it ran on)."""
    result: Any = None
    if job.status.value == "completed":
        try:
            result = job.result()
        except JobStateError:
            result = None
    return {
        "job_id": job.job_id,
        "flow_id": job.flow_id,
        "status": job.status.value,
        "strategy": flow.execution_strategy,
        "workers": flow.max_workers,
        "seconds": round(elapsed, 6),
        "result": result,
        "routine_states": {
            rid: state.model_dump(mode="json", exclude_none=True)
            for rid, state in job.routine_states.items()
        },
        "errors": [
            {
                "routine_id": e.routine_id,
                "slot": e.slot,
                "error_type": e.error_type,
                "message": e.message,
                "attempt": e.attempt,
            }
            for e in job.errors
        ],
    }


def report(flow: Flow, job: JobState, elapsed: float, as_json: bool) -> None:
    """Print the summary; raise :class:`Failure` (exit 1) unless it completed."""
    facts = summary(flow, job, elapsed)
    if as_json:
        click.echo(dump_json(facts))
    elif job.status.value == "completed":
        click.echo(f"job {job.job_id} completed in {elapsed:.2f}s")
        click.echo(f"result: {dump_json(facts['result'])}")
    # A job that did not complete says so in one line, on stderr.
    if job.status.value != "completed":
        raise Failure(f"job {job.job_id} {job.status.value}: {_why(job)}", code=1)


def _why(job: JobState) -> str:
    if job.errors:
        e = job.errors[0]
        return f"{e.routine_id}.{e.slot} raised {e.error_type}: {e.message}"
    if job.cancel_reason:
        return f"cancelled by {job.cancel_source}: {job.cancel_reason}"
    return "no error recorded"
