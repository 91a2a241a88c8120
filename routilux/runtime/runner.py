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
    ConfigurationError,
    ForeignJobError,
    JobStateError,
    RoutiluxError,
)
from ..job_state import JobState, JobStatus
from ..pool_stats import InboxStats, PoolStats
from ..strategies.catalog import StrategyCatalog
from ..topology import FlowTopology, TopologyCache, reconcile
from ..tracking import ExecutionTracker
from .activation import Activation, Route, RouteTable
from .aio import AsyncGates
from .checkpoint import Checkpointer, next_key
from .context import current_frame
from .dead_letters import DeadLetterBox, replay_plan
from .jobs import FlowJobs
from .ledger import JobLedger
from .observers import Observers
from .pressure import FlowPressure
from .remote import HostWorker
from .sessions import SessionStates, check_lane
from .stats import FlowStats
from .watchdog import Watchdog

if TYPE_CHECKING:
    from ..flow import Flow
    from ..hooks import FlowHooks
    from ..records import ErrorRecord
    from ..routine import Routine
    from ..strategies.base import ExecutionStrategy, RemoteCalls
    from ..wiring import Wiring

__all__ = ["FlowRunner"]


class FlowRunner:
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
        self._paused: dict[str, JobLedger] = {}
        self._watchdog = Watchdog(f"routilux-{flow.flow_id}-watchdog")
        self._async_gates = AsyncGates()
        self._routes: RouteTable | None = None
        self._version = -1  # the wiring version _routes was compiled from
        self._topology = TopologyCache()
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
        flow = self._flow
        return self._topology.current(
            self._wiring.version, flow.routines, lambda: flow.connections
        )

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
    ) -> JobState:
        """Start a job (checked by the flow) and return its state.

        When the job cannot start (its checkpoint store fails), it is ended as
        failed, forgotten, and the error raised: no phantom job is left active.
        """
        self._wait_for_room()
        strategy = self.strategy(name, workers)
        lane = strategy.open_lane()
        run = self._new_run(JobState._for_run(self._flow.flow_id), lane)
        run.session = session
        run.lane_blocks = strategy.blocking
        self._jobs.add(run)
        if timeout is not None:
            run.set_deadline(timeout)
        self._begin(run, lambda: run.start(entry_id, params))
        return run.job_state

    def replay(self, letters: Any, name: str, workers: int) -> JobState:
        """Run dead letters again, and mark them replayed by the job that runs them.

        Letters all of one job that is still open (running on a non-blocking
        strategy, or paused) join that job; others run as a new job.
        """
        self._wait_for_room()
        flow, box = self._flow, self.dead_letters
        store = flow.checkpoint_store
        checked, routes, stored = replay_plan(
            letters, flow.flow_id, self.routes(), flow.routines, box, store
        )
        ids = [letter.letter_id for letter in checked]
        origins = {letter.job_id for letter in checked}
        if len(origins) == 1:
            (origin,) = origins
            open_run = self._jobs.get(origin) or self._paused.get(origin)
            if open_run is not None:
                joined = [
                    Activation(open_run, route, dict(letter.payload))
                    for route, letter in zip(routes, checked, strict=True)
                ]

                def mark_joined() -> None:
                    box.mark_replayed(checked, origin, stored, store)

                try:
                    rejoined = open_run.rejoin(joined, ids, mark_joined)
                except Exception as exc:
                    if isinstance(exc, RoutiluxError):
                        raise
                    raise CheckpointError(
                        f"dead letters could not join job {origin!r}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                if rejoined:
                    return open_run.job_state
        strategy = self.strategy(name, workers)
        run = self._new_run(JobState._for_run(flow.flow_id), strategy.open_lane())
        run.lane_blocks = strategy.blocking
        activations = [
            Activation(run, route, dict(letter.payload))
            for route, letter in zip(routes, checked, strict=True)
        ]
        job_id = run.job_state.job_id

        def mark() -> None:
            box.mark_replayed(checked, job_id, stored, store)

        self._jobs.add(run)
        self._begin(run, lambda: run.replay(activations, ids, mark))
        return run.job_state

    def _wait_for_room(self) -> None:
        """Work from outside the pool waits while the flow is full (max_pending).

        A handler starting a job is inside the pool: it never waits (its own
        place could be the one it waits for).
        """
        if self.pressure is not None and current_frame() is None:
            self.pressure.wait_for_room()

    def _begin(self, run: JobLedger, start: Any) -> None:
        """Start (or restart) ``run``; on failure leave nothing behind, then raise."""
        try:
            start()
        except BaseException as exc:
            state = run.job_state
            self._jobs.discard(run)
            if state.status is JobStatus.PAUSED:
                self._paused[state.job_id] = run  # a failed resume: still paused
            if isinstance(exc, RoutiluxError) or not isinstance(exc, Exception):
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
    ) -> JobLedger:
        flow = self._flow
        tracker = ExecutionTracker(flow.flow_id, flow.history_limit)
        flow.execution_tracker = tracker
        store = flow.checkpoint_store
        checkpoint = (
            Checkpointer(store, job_state.job_id, first_key, discard)
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
            self._job_stopped,
            self._watchdog,
            flow.default_timeout,
            checkpoint,
            flow.history_limit,
            self._async_gates,
            self.pressure,
        )
        run.stamp(self.topology(), dropped)
        run.remote = remote
        run.observers = Observers(
            job_state, tracker, self.stats_of_jobs, self.hooks, run.record_hook_error
        )
        run.dead_letters = self.dead_letters
        run.sessions = self.sessions
        return run

    def _remote(self, lane: Any) -> RemoteCalls | None:
        """How ``lane``'s strategy calls handlers elsewhere (None: in this process).

        Such a strategy sees the flow before a job starts on it, and may refuse
        it (a routine its workers cannot build): nothing has started then.
        """
        bind = getattr(lane, "bind_flow", None)
        return None if bind is None else bind(self._flow, HostWorker)

    def _job_stopped(self, run: JobLedger) -> None:
        job_id = run.job_state.job_id
        if run.job_state.status is JobStatus.PAUSED:
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

    def resume(
        self,
        job: JobState | str,
        name: str,
        workers: int,
        allow_changes: bool = False,
    ) -> JobState:
        """Run a paused or interrupted job on (the same job, same id).

        ``job`` is a JobState, or a job id to load from the checkpoint store. A
        job from a document is checked against the flow's topology first.
        """
        if isinstance(job, str):
            run_of_id = self._jobs.get(job) or self._paused.get(job)
            if run_of_id is None:
                self._wait_for_room()  # before a run is made: a refusal makes none
                return self._restart(
                    *self._load(job, allow_changes), name, workers, waited=True
                )
            job = run_of_id.job_state
        job_state = job
        held: JobLedger | None = self._paused.pop(job_state.job_id, None)
        if held is not None:
            run, activations = held, held.take_parked()
        elif (active := self._jobs.get(job_state.job_id)) is not None:
            if active.unpause():  # its pause had not settled: it just goes on
                return active.job_state
            job_state.wait()  # settling right now: the run is filed as paused first
            return self.resume(job_state, name, workers, allow_changes)
        elif (stored := self._stored(job_state.job_id)) or (
            job_state.status is JobStatus.PAUSED
        ):
            # Room first: a full flow refuses before the run takes the job over.
            self._wait_for_room()
            if stored:
                run, activations = self._load(job_state.job_id, allow_changes)
            else:
                run, activations = self._rebuild(job_state, allow_changes)
            return self._restart(run, activations, name, workers, waited=True)
        elif job_state.status.is_final:
            return job_state  # nothing to resume: it is returned as it is
        else:
            raise JobStateError(
                f"job {job_state.job_id!r} is {job_state.status.value}: only a paused "
                "job can be resumed"
            )
        return self._restart(run, activations, name, workers)

    def _restart(
        self,
        run: JobLedger,
        activations: list[Activation],
        name: str,
        workers: int,
        *,
        waited: bool = False,
    ) -> JobState:
        if not waited:
            self._wait_for_room()
        strategy = self.strategy(name, workers)
        lane = strategy.open_lane()
        run.remote = self._remote(lane)
        run.lane_blocks = strategy.blocking
        self._jobs.add(run)
        self._begin(run, lambda: run.restart(activations, lane))
        return run.job_state

    def _stored(self, job_id: str) -> bool:
        store = self._flow.checkpoint_store
        return store is not None and any(
            summary["job_id"] == job_id
            for summary in store.list_jobs(self._flow.flow_id)
        )

    def _load(
        self, job_id: str, allow_changes: bool = False
    ) -> tuple[JobLedger, list[Activation]]:
        """A run for a job kept in the flow's checkpoint store (after a crash)."""
        store = self._flow.checkpoint_store
        if store is None:
            raise JobStateError(
                f"flow {self._flow.flow_id!r} has no checkpoint store to load job "
                f"{job_id!r} from"
            )
        document = store.load(job_id)
        pending = list(document.pop("pending_activations", []))
        job_state = JobState.deserialize(  # the store's class allow-list, if any
            document, allowed_classes=getattr(store, "allowed_classes", None)
        )
        if job_state.flow_id != self._flow.flow_id:
            raise ForeignJobError(
                f"job {job_id!r} belongs to flow {job_state.flow_id!r}, "
                f"not {self._flow.flow_id!r}"
            )
        if job_state.status.is_final:
            raise JobStateError(
                f"job {job_id!r} is {job_state.status.value}: nothing to resume"
            )
        kept, dropped, record = self._reconcile(job_state, pending, allow_changes)
        planned = self._plan(job_state, kept, "pending_activations")
        discard = [str(item.get("id")) for item in dropped]
        run = self._new_run(job_state, None, next_key(pending), discard, record)
        return run, _activations(run, planned)

    def _plan(
        self, job_state: JobState, items: list[dict[str, Any]], where: str
    ) -> list[_Planned]:
        """Check every pending item before a run is made (a refusal changes nothing).

        Raises:
            ConfigurationError: For an item whose routine or slot the flow lacks,
                a payload that is not a dict, or a bad lane; naming its index.
        """
        routes = self.routes()
        planned: list[_Planned] = []
        for index, item in enumerate(items):
            route = routes.route_to(str(item.get("routine_id")), str(item.get("slot")))
            if route is None:
                raise ConfigurationError(
                    f"{where}[{index}] of job {job_state.job_id!r} targets "
                    f"{item.get('routine_id')!r}.{item.get('slot')!r}, which flow "
                    f"{self._flow.flow_id!r} does not have"
                )
            payload = item.get("payload", {})  # [] or 0 is no empty payload
            if not isinstance(payload, dict):
                # From a store (a custom one: the built-in ones check): its
                # record is at fault; from a JobState, the caller's input.
                error = CheckpointError if where == "pending_activations" else None
                raise (error or ConfigurationError)(
                    f"{where}[{index}].payload of job {job_state.job_id!r} is a "
                    f"{type(payload).__name__}, not a dict"
                )
            lane = item.get("lane")
            if lane is not None:
                lane = check_lane(lane, f"{where}[{index}].lane")
            planned.append((route, dict(payload), item.get("id"), lane))
        return planned

    def _reconcile(
        self, job_state: JobState, items: list[dict[str, Any]], allow_changes: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], ErrorRecord | None]:
        """Check a job from a document against the flow (see :mod:`..topology`)."""
        routes = self.routes()
        return reconcile(
            job_state,
            self.topology(),
            items,
            lambda routine_id, slot: routes.route_to(routine_id, slot) is not None,
            allow_changes,
            self._flow.flow_id,
        )

    def _rebuild(
        self, job_state: JobState, allow_changes: bool = False
    ) -> tuple[JobLedger, list[Activation]]:
        """A run for a paused JobState made elsewhere, from its pending tasks."""
        routes = self.routes()
        held = list(job_state.pending_tasks)
        tasks, _, record = self._reconcile(job_state, held, allow_changes)
        current = job_state.current_routine_id
        if (
            not allow_changes
            and current is not None
            and current not in routes.ids.values()
        ):
            raise ConfigurationError(
                f"job {job_state.job_id!r} started at routine {current!r}, which flow "
                f"{self._flow.flow_id!r} does not have"
            )
        planned = self._plan(job_state, tasks, "pending_tasks")
        # Only now, with nothing left to refuse, does the run take the job over.
        run = self._new_run(job_state, None, dropped=record)
        return run, _activations(run, planned)

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


#: A checked pending item: its route, payload, activation key and lane.
_Planned = tuple[Route, dict[str, Any], Any, Any]


def _activations(run: JobLedger, planned: list[_Planned]) -> list[Activation]:
    activations = []
    for route, payload, key, lane in planned:
        activation = Activation(run, route, payload)
        activation.key = key
        if lane is not None:
            activation.set_lane(lane)
        activations.append(activation)
    return activations
