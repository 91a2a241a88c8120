"""Resuming jobs: paused ones, and jobs kept in the flow's checkpoint store.

:class:`Resumer` gives :class:`~routilux.runtime.runner.FlowRunner` its
``resume``: a job paused in this flow runs on; a job id (or JobState) its store
keeps is loaded, after its lease is claimed (see
:mod:`routilux.persistence.lease`); a paused JobState made elsewhere is rebuilt
from its pending tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import (
    CheckpointError,
    ConfigurationError,
    ForeignJobError,
    JobOwnedError,
    JobStateError,
)
from ..job_state import JobState, JobStatus
from ..persistence.lease import LeasingStore, Owner
from ..topology import reconcile
from .activation import Activation, Route
from .checkpoint import AlreadyStored, next_key
from .held import split_held
from .sessions import check_lane
from .stream import Stream, progress_key, split_progress

if TYPE_CHECKING:
    from ..flow import Flow
    from ..records import ErrorRecord
    from ..strategies.base import ExecutionStrategy, RemoteCalls
    from ..topology import FlowTopology
    from .activation import RouteTable
    from .jobs import FlowJobs
    from .ledger import JobLedger

__all__ = ["Resumer"]


class Resumer:
    """The resume part of a flow's runner (a base class of ``FlowRunner``)."""

    # Set by FlowRunner.
    _flow: Flow
    _jobs: FlowJobs
    _paused: dict[str, JobLedger]

    def routes(self) -> RouteTable:
        """The flow's routing table (FlowRunner's)."""
        raise NotImplementedError

    def strategy(self, name: str, max_workers: int) -> ExecutionStrategy:
        """The flow's strategy ``name`` (FlowRunner's)."""
        raise NotImplementedError

    def _remote(self, lane: Any) -> RemoteCalls | None:
        raise NotImplementedError

    def _wait_for_room(self) -> None:
        raise NotImplementedError

    def _begin(self, run: JobLedger, start: Any, *args: Any) -> None:
        raise NotImplementedError

    def topology(self) -> FlowTopology:
        """The flow's topology now (FlowRunner's)."""
        raise NotImplementedError

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
        raise NotImplementedError

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
        # The active runs first, then the paused ones: a settling pause files
        # its run as paused before it leaves the active runs (see
        # FlowRunner._job_stopped), so a run looked for in this order is found
        # in one or the other; and one still active is restarted only once it
        # has left them (its discard would forget the restarted run).
        if (active := self._jobs.get(job_state.job_id)) is not None:
            try:
                unpaused = active.unpause()
            except JobStateError as exc:
                raise _owned_here(active, exc) from exc
            if unpaused:  # its pause had not settled: it just goes on
                return active.job_state
            job_state.wait()  # settling right now: the run is filed as paused first
            return self.resume(job_state, name, workers, allow_changes)
        held: JobLedger | None = self._paused.pop(job_state.job_id, None)
        if held is not None:
            run, activations = held, held.take_parked()
        elif (stored := self._stored(job_state.job_id)) or (
            job_state.status is JobStatus.PAUSED
        ):
            # Room first: a full flow refuses before the run takes the job over.
            self._wait_for_room()
            if not stored:
                return self._restart_rebuilt(job_state, name, workers, allow_changes)
            run, activations = self._load(job_state.job_id, allow_changes)
            return self._restart(run, activations, name, workers, waited=True)
        elif job_state.status.is_final:
            return job_state  # nothing to resume: it is returned as it is
        else:
            raise JobStateError(
                f"job {job_state.job_id!r} is {job_state.status.value}: only a paused "
                "job can be resumed"
            )
        return self._restart(run, activations, name, workers)

    def _restart_rebuilt(
        self, job_state: JobState, name: str, workers: int, allow_changes: bool
    ) -> JobState:
        """Resume a paused JobState made elsewhere (the store does not hold it).

        The flow has room already (the caller waited for it).
        """
        run, activations = self._rebuild(job_state, allow_changes)
        try:
            return self._restart(run, activations, name, workers, waited=True)
        except AlreadyStored:  # another flow stored it meanwhile
            raise JobStateError(
                f"job {job_state.job_id!r} is kept in the checkpoint store now: "
                "resume it by id"
            ) from None

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
            try:
                self._wait_for_room()
            except BaseException:
                if run.checkpoint is not None:
                    run.checkpoint.release()  # a claimed lease must not beat on
                raise
        strategy = self.strategy(name, workers)
        lane = strategy.open_lane()
        run.remote = self._remote(lane)
        run.lane_blocks = strategy.blocking
        self._jobs.add(run)
        self._begin(run, run.restart, activations, lane)
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
        # The lease first: what is loaded then is what no other owner changes.
        owner = Owner.new() if isinstance(store, LeasingStore) else None
        if owner is not None:
            store.claim(job_id, owner)  # type: ignore[attr-defined]
        try:
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
            # Progress rows say how many emits of a pending activation are stored.
            rows, emitted, orphans = split_progress(pending)
            kept, dropped, record = self._reconcile(job_state, rows, allow_changes)
            # Held rows (inbox and merge arrivals) are not run: they rebuild the
            # job's inboxes and slot data before it runs on.
            runnable, held, spent = split_held(kept)
            planned = self._plan(job_state, runnable, "pending_activations")
            discard = [str(item.get("id")) for item in dropped] + spent + orphans
            discard.extend(
                progress_key(str(item.get("id")))
                for item in dropped
                if str(item.get("id")) in emitted
            )
            run = self._new_run(
                job_state,
                None,
                next_key(pending),
                discard,
                record,
                stored=True,
                owner=owner,
            )
            rebuilt = run.rebuild_held(held)
        except BaseException:
            if owner is not None:
                store.release(job_id, owner)  # type: ignore[attr-defined]
            raise
        return run, _activations(run, planned, emitted) + rebuilt

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


#: A checked pending item: its route, payload, activation key and lane.
_Planned = tuple[Route, dict[str, Any], Any, Any]


def _activations(
    run: JobLedger, planned: list[_Planned], emitted: dict[str, int] | None = None
) -> list[Activation]:
    """Activations of checked pending items; ``emitted``: stored emits by id."""
    activations = []
    for route, payload, key, lane in planned:
        activation = Activation(run, route, payload)
        activation.key = key
        if lane is not None:
            activation.set_lane(lane)
        if emitted and key in emitted:  # its re-run drops the emits stored
            activation.stream = Stream(skip=emitted[key])
        activations.append(activation)
    return activations


def _owned_here(run: JobLedger, refused: JobStateError) -> JobStateError:
    """The error for resuming a job this flow runs: owned, when it holds a lease."""
    checkpoint = run.checkpoint
    if checkpoint is None or not checkpoint.holding:
        return refused
    owner = checkpoint.owner
    return JobOwnedError(
        f"job {run.job_state.job_id!r} is owned by process {owner.pid} on host "
        f"{owner.host!r}: this flow runs it now; {refused}",
        job_id=run.job_state.job_id,
        pid=owner.pid,
        host=owner.host,
    )
