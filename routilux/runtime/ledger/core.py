"""The ledger: the one object per job that changes job and activation state.

Every activation moves ``queued -> running -> settled`` (or ``parked`` by a pause,
or ``dropped`` by a halt), each move made here, under the ledger's lock, after
checking the state it moves from: a second settle of the same activation is
refused. The ledger owns the pending count and the completion rule (a job is done
when nothing is queued, running or parked, and paused when everything pending is
parked), the halt and pause flags, the job's result, and every write to its
:class:`JobState`, which users then see as a read-only view.

The invoker turns a handler call into an :class:`~routilux.hooks.Outcome`; the
ledger only reads outcomes. Strategies report whatever escapes a task through
:meth:`JobLedger.fail`, so no error vanishes and every wait returns.

Locks and their order. User code (handlers, merges, hooks, stores) never runs
while one is held, except the built-in ``append`` merge, which is not user code,
and slot policies' inboxes (:mod:`routilux.policies` documents that they run
under the job's lock and must return quickly):

1. ``JobLedger._lock`` (also the JobState's snapshot lock): pending count, halt and
   pause flags, parked list, slot data, activation states, JobState fields.
2. ``FlowJobs._lock`` (runtime/jobs.py), ``Watchdog._lock``,
   ``DeadLetterBox._lock`` (runtime/dead_letters.py): taken after 1 is released,
   never while it is held.
3. ``runtime/observers.py``'s ``_MAKING``: innermost, held only to make a job's
   tracker cells (``FlowJobs.discard`` takes it under 2, for the tracker of the
   job started last).

The paths every activation takes acquire the job's lock (and the flow's job
registry and statistics locks) as :mod:`routilux._locks` describes, so that
pool threads do not convoy on it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..._locks import take_contended
from ...exceptions import CheckpointError
from ...job_state import JobStatus
from ..activation import QUEUED, Activation
from ..invoker import safe_text
from .completion import _FLUSH
from .emitting import Emitting
from .holding import Holding
from .inboxes import InboxError, Note

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ...strategies.base import JobLane

__all__ = ["JobLedger"]

_wall = time.time


class JobLedger(Holding, Emitting):
    """One job's ledger: routes emits, runs activations, settles their outcomes.

    Starting, resuming and concluding a job is this class's part; queuing what
    its emits make is :class:`.emitting.Emitting`'s, running activations and
    settling their outcomes :class:`.running.Running`'s.

    Built by the runner with the arguments of
    :class:`~routilux.runtime.ledger.base.LedgerBase`.
    """

    __slots__ = ()

    # -- starting and resuming --

    def start(self, entry_id: str, params: dict[str, Any]) -> None:
        """Activate the entry routine's ``trigger`` slot with ``params``.

        ``params`` is the runtime's own copy of the caller's (``execute`` made
        it): the history keeps it, and the handler gets a copy of its own.

        Raises:
            Exception: Whatever the checkpoint store raised while writing the job's
                start; the job is then ended as failed (see :meth:`abandon`).
        """
        first = Activation(self, self.routes.entry_route(entry_id), dict(params))
        self._open(entry_id, "start", params, [first])

    def replay(
        self,
        activations: list[Activation],
        letter_ids: list[str],
        mark: Callable[[], None],
    ) -> None:
        """Start this new job with the activations of dead letters.

        ``mark`` marks the letters replayed once the job is recorded in the
        store (a job the store lists before its letters are marked may replay
        them twice after a crash, never lose them).

        Raises:
            Exception: Whatever the store or ``mark`` raised; the job is then
                ended as failed (see :meth:`abandon`).
        """
        first = activations[0].routine_id
        record = {"dead_letters": list(letter_ids)}
        self._open(first, "replay", record, activations, mark)

    def rejoin(
        self,
        activations: list[Activation],
        letter_ids: list[str],
        mark: Callable[[], None],
    ) -> bool:
        """Add dead letters' activations to this job while it is still open.

        Open: running on a lane that does not block a caller's thread (a
        blocking lane may be draining in another thread, where an activation
        added now could be missed), or paused (they are held with the rest).
        The activations are counted first, so the job cannot end meanwhile;
        then stored (with a checkpoint store) and the letters marked.

        Returns:
            False, changing nothing, when the job is not open (finished,
            finishing, halted, or running a blocking lane): replay it as a new
            job then.

        Raises:
            Exception: Whatever the store or ``mark`` raised; the activations
                are then taken back (the job goes on as it was).
        """
        first = activations[0].routine_id
        with self._lock:
            if (
                self._ended
                or self._halted is not None
                or (self.lane_blocks and not self._paused)
            ):
                return False
            self._history.extend(
                (first, "replay", {"dead_letters": list(letter_ids)}, _wall())
            )
            self._pending += len(activations)
            parked = self._paused
            if parked:
                self._park_locked(activations)
                self._show_parked_locked()
        try:
            if self._checkpoint is not None:
                self._checkpoint.add(activations)
            mark()
        except BaseException:
            with self._lock:
                if parked:
                    self._parked = [a for a in self._parked if a not in activations]
                    self._show_parked_locked()
            self._finish(len(activations))
            raise
        if not parked:
            self._hand(activations)
        return True

    def _open(
        self,
        current: str,
        event: str,
        record: dict[str, Any],
        activations: list[Activation],
        before_launch: Callable[[], None] | None = None,
    ) -> None:
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            values = self.job_state.__dict__  # what _set does, without a kwargs dict
            values["current_routine_id"] = current
            values["status"] = JobStatus.RUNNING
            self._history.extend((current, event, record, _wall()))
            self._pending = len(activations)
        finally:
            lock.release()
        begun = False
        try:
            if self._checkpoint is not None:
                self._checkpoint.begin(self.job_state, activations)
                begun = True
            if before_launch is not None:
                before_launch()
        except BaseException as exc:
            self.abandon(exc)
            if begun:  # the store lists the job: record that it ended
                self._write_final(False)
            raise
        self._launch(activations)

    def restart(self, activations: Sequence[Activation], lane: JobLane) -> None:
        """Run ``activations`` (parked by a pause, or loaded) on ``lane``.

        Raises:
            Exception: Whatever the checkpoint store raised; the job is then left
                paused as it was, with the same activations held.
        """
        with self._lock:
            before = {
                "status": self.job_state.status,
                "pending_tasks": self.job_state.pending_tasks,
            }
            self._paused = False
            self._pause_settled = False
            self._pending += len(activations)
            for activation in activations:
                activation.state = QUEUED
            self.lane = lane
            self._set(status=JobStatus.RUNNING, pending_tasks=self._tasks([]))
            self.job_state._reopen()
        if self._checkpoint is not None:
            try:
                self._checkpoint.begin(self.job_state, activations)
            except BaseException:
                with self._lock:  # as it was: paused, holding the same activations
                    self._set(**before)
                    self._paused = self._pause_settled = True
                    self._park_locked(activations)
                self.job_state._done.set()
                raise
        self._launch(list(activations))

    def _launch(self, activations: list[Activation]) -> None:
        assert self.observers is not None
        assert self.lane is not None
        self.observers.job_started()
        self._specs = None  # a lane of an earlier run (a resume) takes none now
        if self.lane_blocks:
            self._caller = threading.get_ident()
        if not activations:
            # A resumed job may hold only inbox payloads: the flush this starts
            # queues its calls, which a blocking lane runs only once started.
            self._finish(0)
            if not self.lane_blocks or self._ended:
                return
        # Only for a lane about to start: the builder it keeps is cleared when
        # its run ends (kept longer, it would tie the job and the lane in a cycle).
        self._specs = self._spec_submitter()
        self.lane.start(list(self._admitted(list(activations))))

    def _spec_submitter(self) -> Callable[[tuple[int, Any, Any, Any]], None] | None:
        """How to queue this job's calls as specs on its lane; None: as tasks.

        Not under ``max_pending``, which counts activations as they are handed
        on. With a store, an emit's calls are objects until their parent's
        step lists them (by key); they are handed on as specs after it.
        """
        if self._pressure is not None:
            return None
        accept = getattr(self.lane, "accept_specs", None)
        return None if accept is None else accept(self._from_spec)

    def set_deadline(self, timeout: float) -> None:
        """Cancel the job (source ``timeout``) if it still runs after ``timeout`` s."""
        self._deadline = self._watchdog.watch(self, timeout, self._on_job_timeout)

    def _on_job_timeout(self, _: JobLedger, timeout: float) -> None:
        self.halt("timeout", f"the job ran longer than its timeout of {timeout:g}s")

    def id_of(self, routine: Any) -> str | None:
        """The id of ``routine`` in this job's flow, or None."""
        return self.routes.ids.get(id(routine))

    # -- emitting --

    def _conclude(self, action: int) -> None:
        if action == _FLUSH:
            self._flush_inboxes()
        else:
            super()._conclude(action)

    def _flush_inboxes(self) -> None:
        """Nothing else is pending: run the calls the waiting inboxes flush.

        When they make none (or a halt came first), the job is done.
        """
        notes: list[Note] = []
        with self._lock:
            calls = []
            if self._halted is None and self._inboxes is not None:
                try:
                    calls = self._inboxes.flush(notes)
                except InboxError as broken:
                    self._inbox_failed_locked(broken)
            for note in notes:
                self._history.extend(note)
            spent = self._flushed_locked()
            activations = [Activation(self, route, call) for route, call in calls]
            self._pending += len(activations)
            action = 0 if activations else self._count_locked(0)
        if not activations:
            if action:
                self._conclude(action)
            return
        if self._checkpoint is not None:
            try:
                # The rows the flushed inboxes held go in the step storing the calls.
                self._checkpoint.begin(self.job_state, activations, finished=spent)
            except BaseException as exc:  # noqa: BLE001 - a store failure fails the job
                self._break(
                    None, CheckpointError(f"checkpoint failed: {safe_text(exc)}"), exc
                )
        self._dispatch(activations)
