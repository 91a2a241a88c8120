"""Flow jobs: starting, pausing, resuming, cancelling and waiting for jobs.

:class:`FlowJobs` gives :class:`~routilux.Flow` its job methods; the work is done
by the flow's runner (:mod:`routilux.runtime.runner`). Every method checks its
arguments before it changes anything.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .checks import flag, instance_of, optional_seconds
from .exceptions import ConfigurationError, ForeignJobError, StrategyShutdownError
from .runtime.named_jobs import check_job_id
from .runtime.sessions import optional_lane

if TYPE_CHECKING:
    from .job_state import JobState
    from .runtime.runner import FlowRunner
    from .wiring import Wiring

__all__ = ["FlowJobs"]


class FlowJobs:
    """The job methods of a flow (a base class of :class:`~routilux.Flow`)."""

    # Set by Flow.__init__.
    flow_id: str
    _runner: FlowRunner
    _wiring: Wiring
    _strategy_name: str
    _max_workers: int
    _requested_workers: int

    def execute(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        timeout: float | None = None,
        session: str | int | None = None,
        job_id: str | None = None,
        resume_interrupted: bool = False,
    ) -> JobState:
        """Start a job at the ``trigger`` slot of ``entry_routine_id``.

        Sequential strategies return when the job is complete; concurrent ones return
        at once with a running JobState. Thread-safe.

        Args:
            entry_routine_id: The routine whose ``trigger`` slot starts the job.
            entry_params: Keywords for the trigger handler.
            execution_strategy: Run this job on another registered strategy (the
                flow's own setting is unchanged).
            timeout: Cancel the job (``cancel_source="timeout"``) if it runs longer
                than this many seconds.
            session: Run the job in this session, a str or an int: its
                activations are in that lane unless their connection names a
                ``lane_key`` (see :doc:`/guide/sessions`).

                .. versionadded:: 1.0
            job_id: The job's id, chosen by the caller (1 to 200 letters,
                digits, ``.``, ``_``, ``-``), instead of a new uuid4. Executing
                an id that this flow, or its checkpoint store, already holds
                starts nothing and returns that job: this flow's own JobState,
                or, for a job only the store holds, the JobState as stored.
                Within one process and across processes sharing a store, the
                job runs once (see :doc:`/guide/durability`).
            resume_interrupted: With ``job_id``: a job the store holds as
                ``running`` whose owner is gone (its lease is not live) is
                resumed, as :meth:`resume` would, instead of returned as stored.

        Raises:
            UnknownRoutineError: For an unknown id.
            EntryPointError: When the routine has no ``trigger`` slot.
            UnknownStrategyError: For an unknown per-call strategy name.
            StrategyShutdownError: After :meth:`shutdown`.
            ConfigurationError: For bad ``entry_params``, ``timeout``,
                ``session``, ``job_id`` or ``resume_interrupted``.
            ForeignJobError: When the store holds ``job_id`` for another flow.
            JobOwnedError: When ``resume_interrupted`` finds the job taken over
                by another owner first.
        """
        if self._runner.closed:
            raise StrategyShutdownError(
                f"flow {self.flow_id!r} is shut down: cannot execute "
                f"{entry_routine_id!r}"
            )
        self._wiring.entry(entry_routine_id)
        if entry_params is not None and not isinstance(entry_params, dict):
            raise ConfigurationError(
                f"entry_params must be a dict, got {type(entry_params).__name__}"
            )
        name, workers = self._strategy_for(execution_strategy)
        seconds = None if timeout is None else optional_seconds(timeout, "timeout")
        if session is not None:
            optional_lane(session, "execute(): session")
        if job_id is not None:
            check_job_id(job_id, "execute(): job_id")
        if (
            resume_interrupted is not False
            and flag(resume_interrupted, "execute(): resume_interrupted")
            and not job_id
        ):
            raise ConfigurationError(
                "execute(): resume_interrupted=True needs a job_id: it says what "
                "to do with a job of that id the store holds"
            )
        return self._runner.execute(
            entry_routine_id,
            dict(entry_params or {}),
            name,
            workers,
            seconds,
            session,
            job_id,
            resume_interrupted,
        )

    def _strategy_for(self, name: str | None) -> tuple[str, int]:
        """The strategy name and worker count a job started with ``name`` uses."""
        name = name or self._strategy_name
        if name == self._strategy_name:
            return name, self._max_workers
        return name, self._requested_workers

    async def execute_async(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        timeout: float | None = None,
        session: str | int | None = None,
        job_id: str | None = None,
        resume_interrupted: bool = False,
    ) -> JobState:
        """Run a job from code that is itself async; returns once the job stopped.

        The job runs as :meth:`execute` runs it; the calling event loop is never
        blocked (a sequential job runs in a worker thread of the loop's default
        executor). The job has stopped when this returns: completed, failed,
        cancelled or paused; except for a ``job_id`` that another process runs,
        returned at once as its store keeps it (see :meth:`execute`).
        Thread-safe.

        Raises:
            The errors of :meth:`execute`.
        """
        import asyncio

        name, workers = self._strategy_for(execution_strategy)
        call = functools.partial(
            self.execute,
            entry_routine_id,
            entry_params,
            execution_strategy,
            timeout=timeout,
            session=session,
            job_id=job_id,
            resume_interrupted=resume_interrupted,
        )
        if self._runner.strategy_blocks(name, workers):
            job = await asyncio.to_thread(call)
        else:
            job = call()
        if job.is_done or self._runner.runs(job.job_id):
            await job.wait_async()
        # else: a job_id another process runs, as its store keeps it: nothing
        # here would ever wake the wait.
        return job

    def pause(
        self, job_state: JobState, reason: str = "", checkpoint: Any = None
    ) -> bool:
        """Hold a running job: nothing new starts; running handlers finish.

        Activations that were queued, and whatever running handlers emit, are kept
        in ``job_state.pending_tasks``; a pause point ``{reason, checkpoint,
        timestamp}`` is appended. The job is ``paused`` once running handlers have
        finished (``job_state.wait()`` returns then). Thread-safe.

        Returns:
            True when this call paused the job; False, doing nothing, when it had
            already stopped (finished, or paused), as ``Future.cancel()`` does.

        Raises:
            ConfigurationError: When ``job_state`` is not a JobState.
            ForeignJobError: When the job belongs to another flow.
            JobStateError: When the job has not started here (a pending JobState).
        """
        return self._runner.pause(self._own(job_state, "pause"), reason, checkpoint)

    def resume(
        self, job_state: JobState | str, *, allow_changes: bool = False
    ) -> JobState:
        """Run a paused or interrupted job on: its held activations are queued again.

        Works for a job paused in this process, for a paused JobState loaded from
        a document (cross-host), and for a job id (or JobState) kept in the flow's
        checkpoint store after a crash: activations that completed are not run
        again; those that were running when the process died run again
        (at-least-once), and so do those whose step was still waiting for the
        store's step writer (at most ``commit_window`` of them, see the
        durability guide's "Group commit"). Returns the JobState (same
        ``job_id``); sequential strategies return when it is done. A job that
        has finished is returned as it is, without effect (its status tells).
        Thread-safe.

        On a store that keeps leases (both built-in stores do) the resumed job
        is leased to this process until it ends or pauses; a job whose lease is
        live elsewhere is not resumed.

        A job from a document (the store, or a loaded JobState) is checked
        against this flow's shape (see :mod:`routilux.topology`).

        Args:
            job_state: The job, or its id in the flow's checkpoint store.
            allow_changes: Resume a job stored by a flow of another shape: the
                activations it held for routines or slots that are gone are
                dropped and recorded in ``job.errors``, the rest runs.

                .. versionadded:: 1.0

        Raises:
            JobOwnedError: When another owner (another process, or another call
                in this one) runs the stored job and its lease is live.
            ConfigurationError: When ``job_state`` is neither a JobState nor a str.
            ForeignJobError: When the job belongs to another flow.
            JobStateError: When the job runs and no pause was asked for, or has
                not started here (a pending JobState).
            ConfigurationError: When a held activation targets a routine or slot
                this flow does not have (or has a payload that is not a dict, or
                a bad lane).
            TopologyChangedError: When the job was stored by a flow of another
                shape, listing what was added and removed (not with
                ``allow_changes``).
            QueueFullError: When the flow is full (``max_pending`` with
                ``on_full="raise"``).

        A refused resume leaves a JobState from elsewhere as it was: not taken
        over by the flow, still yours to change and resume.
        """
        if self._runner.closed:
            raise StrategyShutdownError(
                f"flow {self.flow_id!r} is shut down: cannot resume "
                f"{getattr(job_state, 'job_id', job_state)!r}"
            )
        job = (
            job_state if isinstance(job_state, str) else self._own(job_state, "resume")
        )
        allow = flag(allow_changes, "Flow.resume: allow_changes")
        return self._runner.resume(job, self._strategy_name, self._max_workers, allow)

    def cancel(self, job_state: JobState, reason: str = "") -> bool:
        """Cancel a running or paused job.

        Nothing new starts; running handlers finish and what they emit is dropped;
        the job ends ``cancelled`` with ``cancel_reason`` and ``cancel_source``
        ("user") recorded. Thread-safe.

        Returns:
            True when this call cancelled it, False when it had already stopped.

        Raises:
            ConfigurationError: When ``job_state`` is not a JobState.
            ForeignJobError: When the job belongs to another flow.
        """
        return self._runner.cancel(self._own(job_state, "cancel"), reason)

    def _own(self, job_state: JobState, method: str) -> JobState:
        from .job_state import JobState

        wanted = "a JobState or a job id" if method == "resume" else "a JobState"
        instance_of(job_state, JobState, f"Flow.{method}: job_state", wanted)
        if job_state.flow_id != self.flow_id:
            raise ForeignJobError(
                f"job {job_state.job_id!r} belongs to flow {job_state.flow_id!r}, "
                f"not {self.flow_id!r}"
            )
        return job_state

    def wait_for_completion(self, timeout: float | None = None) -> bool:
        """Block until no job of this flow has work left.

        Returns:
            True when all jobs are done, False when ``timeout`` seconds passed.
            Thread-safe.
        """
        return self._runner.wait(timeout)
