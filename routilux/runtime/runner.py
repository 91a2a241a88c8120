"""FlowRunner: starts a flow's jobs and keeps what running needs.

The flow facade delegates here: the compiled routing table (rebuilt after a change
to the wiring), the strategies by name, the set of active jobs, the flow's dead
letters (:mod:`.dead_letters`) and jobs that replay them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..checks import Deadline
from ..exceptions import (
    CheckpointError,
    JobStateError,
    RoutiluxError,
)
from ..job_state import JobState, JobStatus
from ..persistence.lease import LeasingStore, Owner
from ..pool_stats import InboxStats, PoolStats
from ..strategies.catalog import StrategyCatalog
from ..topology import FlowTopology, TopologyCache
from .activation import RouteTable
from .aio import AsyncGates
from .checkpoint import AlreadyStored, Checkpointer
from .context import current_frame
from .dead_letters import DeadLetterBox
from .jobs import FlowJobs
from .ledger import JobLedger
from .named_jobs import NamedJobs, holds, is_interrupted, stored_job
from .observers import Observers
from .pressure import FlowPressure
from .remote import HostWorker
from .replayer import Replayer
from .sessions import SessionStates
from .stats import FlowStats
from .step_writer import writer_for
from .watchdog import Watchdog

if TYPE_CHECKING:
    from ..flow import Flow
    from ..hooks import FlowHooks
    from ..records import ErrorRecord
    from ..routine import Routine
    from ..strategies.base import ExecutionStrategy, RemoteCalls
    from ..tracking import ExecutionTracker
    from ..wiring import Wiring

__all__ = ["FlowRunner"]


class FlowRunner(Replayer):
    """Runs the jobs of one flow.

    Args:
        flow: The flow whose jobs this runs.
        wiring: The flow's wiring (routes are compiled per wiring version).
    """

    def __init__(self, flow: Flow, wiring: Wiring) -> None:
        self._flow = flow
        self._wiring = wiring
        self._catalog = StrategyCatalog(f"routilux-{flow.flow_id}")
        self._jobs = FlowJobs()
        self._named = NamedJobs()
        self._paused: dict[str, JobLedger] = {}
        #: Some job of the flow had its steps written by a step writer.
        self._batched = False
        self._watchdog = Watchdog(f"routilux-{flow.flow_id}-watchdog")
        self._async_gates = AsyncGates()
        self._routes: RouteTable | None = None
        self._version = -1  # the wiring version _routes was compiled from
        self._topology = TopologyCache()
        # Bound once: every job's ledger calls it (a bound method per job would
        # be one more object made per job).
        self._on_job_stopped = self._job_stopped
        self.closed = False
        self.stats_of_jobs = FlowStats()
        self.hooks: list[FlowHooks] = []
        self.dead_letters = DeadLetterBox()
        limit = getattr(flow, "max_pending", None)
        #: The flow's ``max_pending`` bound, or None.
        self.pressure = (
            FlowPressure(flow.flow_id, limit, flow.on_full)
            if limit is not None
            else None
        )
        #: What routines keep per session (``routine.session_state``).
        self.sessions = SessionStates()

    # -- wiring --

    def routes(self) -> RouteTable:
        """The routing table of the wiring's current version (compiled once each)."""
        routes = self._routes
        version = self._wiring.version
        if routes is None or self._version != version:
            flow = self._flow
            links = [
                (
                    c.source_routine_id or "",
                    c.source_event.name if c.source_event else "",
                    c.target_routine_id or "",
                    c.target_slot.name if c.target_slot else "",
                    c.param_mapping or None,
                    c.lane_key,
                )
                for c in flow.connections
            ]
            routes = RouteTable(dict(flow.routines), links)
            self._routes, self._version = routes, version
        return routes

    def topology(self) -> FlowTopology:
        """The flow's topology now (made again only after a change)."""
        wiring = self._wiring
        return self._topology.current(wiring.version, wiring)

    # -- strategies --

    def strategy(self, name: str, max_workers: int) -> ExecutionStrategy:
        """The flow's strategy ``name`` with ``max_workers`` (made on first use)."""
        return self._catalog.get(name, 1 if name == "sequential" else max_workers)

    def strategy_blocks(self, name: str, max_workers: int) -> bool:
        """True when strategy ``name`` runs a job in the thread that starts it."""
        return bool(self.strategy(name, max_workers).blocking)

    def adopt(self, strategy: ExecutionStrategy) -> None:
        """Use a strategy object given by the user."""
        self._catalog.put(strategy)

    # -- jobs --

    def execute(
        self,
        entry_id: str,
        params: dict[str, Any],
        name: str,
        workers: int,
        timeout: float | None = None,
        session: str | int | None = None,
        job_id: str | None = None,
        resume_interrupted: bool = False,
    ) -> JobState:
        """Start a job (checked by the flow) and return its state.

        ``params`` must be a copy the flow made of the caller's: the job keeps it.

        When the job cannot start (its checkpoint store fails), it is ended as
        failed, forgotten, and the error raised: no phantom job is left active.
        A ``job_id`` this flow or its store holds returns that job instead (see
        :mod:`.named_jobs`).
        """
        if job_id is None:
            return self._start(entry_id, params, name, workers, timeout, session)
        known = self._named.reserve(job_id)
        if known is not None:
            return known
        store = self._flow.checkpoint_store
        try:
            if (
                store is not None
                and not isinstance(store, LeasingStore)
                and holds(store, job_id, self._flow.flow_id)
            ):
                raise AlreadyStored(job_id)
            job_state = self._start(
                entry_id, params, name, workers, timeout, session, job_id
            )
        except AlreadyStored:
            self._named.fill(job_id, None)
            assert store is not None
            return self._stored_job(store, job_id, name, workers, resume_interrupted)
        except BaseException:
            self._named.fill(job_id, None)
            raise
        return job_state

    def _stored_job(
        self,
        store: Any,
        job_id: str,
        name: str,
        workers: int,
        resume_interrupted: bool,
    ) -> JobState:
        """A job id the store holds: the job as stored, or resumed if asked."""
        job_state = stored_job(store, job_id, self._flow.flow_id)
        if resume_interrupted and is_interrupted(store, job_state):
            return self.resume(job_id, name, workers)
        return job_state

    def _start(
        self,
        entry_id: str,
        params: dict[str, Any],
        name: str,
        workers: int,
        timeout: float | None,
        session: str | int | None,
        job_id: str | None = None,
    ) -> JobState:
        self._wait_for_room()
        strategy = self.strategy(name, workers)
        lane = strategy.open_lane()
        run = self._new_run(JobState._for_run(self._flow.flow_id, job_id), lane)
        run.session = session
        run.lane_blocks = strategy.blocking
        if job_id is not None:
            self._named.fill(job_id, run.job_state)
        self._jobs.add(run)
        if timeout is not None:
            run.set_deadline(timeout)
        # A bound method and its arguments, not a closure: fewer objects per job.
        self._begin(run, run.start, entry_id, params)
        return run.job_state

    def _wait_for_room(self) -> None:
        """Work from outside the pool waits while the flow is full (max_pending).

        A handler starting a job is inside the pool: it never waits (its own
        place could be the one it waits for).
        """
        if self.pressure is not None and current_frame() is None:
            self.pressure.wait_for_room()

    def _begin(self, run: JobLedger, start: Any, *args: Any) -> None:
        """Run ``start(*args)`` to (re)start ``run``; on failure clean up, raise."""
        checkpoint = run.checkpoint
        if checkpoint is not None:  # (again: a resume may run on another lane)
            writer = None if run.lane_blocks else writer_for(checkpoint.store)
            checkpoint.writer = writer
            self._batched = self._batched or writer is not None
        try:
            start(*args)
        except BaseException as exc:
            state = run.job_state
            if state.status is JobStatus.PAUSED:
                # A failed resume: still paused. Filed before it leaves the
                # active runs, as _job_stopped does (see Resumer.resume).
                self._paused[state.job_id] = run
            self._jobs.discard(run)
            if run.checkpoint is not None:
                run.checkpoint.release()  # a claimed lease must not beat on
            if isinstance(exc, (RoutiluxError, AlreadyStored)) or not isinstance(
                exc, Exception
            ):
                raise
            raise CheckpointError(
                f"job {state.job_id!r} could not start: {type(exc).__name__}: {exc}"
            ) from exc
        if run.lane_blocks and not run.job_state.is_done:
            # The lane ran dry, but a watchdog thread may still be settling the
            # job (a timed-out handler): a blocking execute returns a stopped job.
            run.job_state.wait()
        if run.interrupt is not None:
            raise run.interrupt  # Ctrl-C during a sequential job, now settled

    def _new_run(
        self,
        job_state: JobState,
        lane: Any,
        first_key: int = 0,
        discard: list[str] | None = None,
        dropped: ErrorRecord | None = None,
        *,
        stored: bool = False,
        owner: Owner | None = None,
    ) -> JobLedger:
        flow = self._flow
        store = flow.checkpoint_store
        checkpoint = (
            Checkpointer(
                store,
                job_state.job_id,
                first_key,
                discard,
                stored=stored,
                owner=owner,
            )
            if store is not None
            else None
        )
        remote = self._remote(lane)
        run = JobLedger(
            flow,
            self.routes(),
            job_state,
            lane,
            flow.error_handler,
            self._on_job_stopped,
            self._watchdog,
            flow.default_timeout,
            checkpoint,
            flow.history_limit,
            self._async_gates,
            self.pressure,
        )
        run.stamp(self.topology(), dropped)
        run.remote = remote
        hooks = self.hooks
        run.observers = Observers(
            job_state,
            flow.history_limit,
            self.stats_of_jobs,
            hooks,
            run.record_hook_error if hooks else None,  # no method made without hooks
        )
        run.dead_letters = self.dead_letters
        run.sessions = self.sessions
        return run

    @property
    def tracker(self) -> ExecutionTracker | None:
        """The tracker of the job started last (made now if nobody asked yet)."""
        latest = self._jobs.latest
        return latest.tracker() if isinstance(latest, Observers) else latest

    @tracker.setter
    def tracker(self, tracker: ExecutionTracker | None) -> None:
        self._jobs.set_latest(tracker)  # until the next job starts, as 0.9 did

    def _remote(self, lane: Any) -> RemoteCalls | None:
        """How ``lane``'s strategy calls handlers elsewhere (None: in this process).

        Such a strategy sees the flow before a job starts on it, and may refuse
        it (a routine its workers cannot build): nothing has started then.
        """
        bind = getattr(lane, "bind_flow", None)
        return None if bind is None else bind(self._flow, HostWorker)

    def _job_stopped(self, run: JobLedger) -> None:
        job_id = run.job_state.job_id
        paused = run.job_state.status is JobStatus.PAUSED
        if run.checkpoint is not None and not paused:
            self._named.forget(job_id)  # the store keeps it
        if paused:  # filed first: see Resumer.resume
            self._paused[job_id] = run
        else:
            self._paused.pop(job_id, None)
        self._jobs.discard(run)

    # -- pause, resume, cancel --

    def _run_of(self, job_state: JobState) -> JobLedger | None:
        job_id = job_state.job_id
        return self._jobs.get(job_id) or self._paused.get(job_id)

    def pause(self, job_state: JobState, reason: str, checkpoint: Any) -> bool:
        """Hold a running job's new activations; it pauses once running ones end.

        Returns:
            False, doing nothing, for a job that has stopped (finished or paused).
        """
        run = self._jobs.get(job_state.job_id)
        if run is None:
            if job_state.status.is_final or job_state.status is JobStatus.PAUSED:
                return False
            raise JobStateError(
                f"job {job_state.job_id!r} is {job_state.status.value}, not running: "
                "only a running job can be paused"
            )
        return run.pause(reason, checkpoint)

    def runs(self, job_id: str) -> bool:
        """Whether this flow runs (or holds paused) the job ``job_id``."""
        return self._jobs.get(job_id) is not None or job_id in self._paused

    def cancel(self, job_state: JobState, reason: str, source: str = "user") -> bool:
        """Stop a running or paused job; False when it had already stopped."""
        run = self._run_of(job_state)
        if run is None:
            return False
        return run.halt(source, reason)

    def wait(self, timeout: float | None) -> bool:
        """Block until no job of the flow is active."""
        return self._jobs.wait(timeout)

    def shutdown(self, wait: bool, timeout: float | None) -> None:
        """Refuse new jobs and shut every strategy down (idempotent).

        With ``wait``, ``timeout`` bounds the whole call: jobs still running then
        are halted (source ``shutdown``) and the call returns without waiting for
        handlers Python cannot stop.
        """
        self.closed = True
        if self.pressure is not None:
            self.pressure.close()
        deadline = Deadline(timeout)
        if not wait:
            self._halt_all("flow shut down without waiting")
        elif self._batched:
            # A job whose steps wait for the step writer has children still to
            # run, with no task in any pool: the pools must not close under it.
            self._jobs.wait(deadline.left())
        self._catalog.shutdown(wait=wait, timeout=deadline.left())
        if wait and len(self._jobs):
            self._halt_all(f"flow shut down: the {timeout}s timeout passed")
        self._watchdog.close(timeout=deadline.left() if wait else 0.0)

    def _halt_all(self, reason: str) -> None:
        for run in self._jobs.all():
            run.halt("shutdown", reason)

    def deliver_now(
        self, routine: Routine, event_name: str, data: dict[str, Any]
    ) -> None:
        """Deliver an emit made outside any job, in this thread, through the routes."""
        routes = self.routes()
        routine_id = routes.ids.get(id(routine))
        if routine_id is None:
            return
        for route in routes.by_event.get((routine_id, event_name), ()):
            route.slot.receive(route.map(data))

    def stats(self) -> PoolStats:
        """Pool statistics, jobs, and routine figures over every job of the flow."""
        figures = self.stats_of_jobs.snapshot()
        strategies = self._catalog.stats()
        active = self._jobs.all()
        fills = [run.inbox_fill() for run in active]
        return PoolStats.build(
            flow_id=self._flow.flow_id,
            strategies=strategies,
            active_jobs=len(active),
            paused_jobs=len(self._paused),
            sessions=self._session_stats(strategies),
            jobs=figures["jobs"],
            routines=figures["routines"],
            inboxes=InboxStats(
                waiting=sum(fill[0] for fill in fills),
                payloads=sum(fill[1] for fill in fills),
            ),
            dead_letters=self.dead_letters.waiting(),
            pressure=self.pressure.stats() if self.pressure is not None else None,
            circuit_breakers={
                rid: breaker.stats()
                for rid, routine in self._flow.routines.items()
                if (breaker := routine.get_circuit_breaker()) is not None
            },
        )

    def _session_stats(self, strategies: dict[str, Any]) -> dict[str, Any]:
        """Session lanes in the strategies now, and the session states kept."""
        figures = self.sessions.stats()
        figures["lanes"] = sum(s.get("lanes", 0) for s in strategies.values())
        figures["lane_queued"] = sum(
            s.get("lane_queued", 0) for s in strategies.values()
        )
        return figures
