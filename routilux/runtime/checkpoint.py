"""Checkpointing a job as its activations complete.

The store holds, per job, the job document and the *pending* activations: queued,
running or held by a pause. Each completed activation is recorded in one atomic
step: it leaves the pending list and the activations it emitted join it. So after
a crash the store lists exactly the work that had not completed; resuming runs it:

* completed activations are never run again;
* activations that were running when the process died run again (at-least-once),
  at most ``max_workers`` of them, plus those whose step still waited for the
  store's step writer (at most its ``commit_window``: see :mod:`.step_writer`).

The job document itself is written when the job starts, pauses and ends, and
rides along with a step after an error and at most every ``SAVE_INTERVAL``
seconds. On a :class:`~routilux.persistence.LoggingStore` whose job keeps its
whole history (no ``history_limit``), that step appends the history made since
the previous such step to the job's log, and the document it writes carries
none: the cost of a step no longer grows with the job. The job's end (or pause)
writes the whole document, which compacts the log. Other stores, and jobs with a
``history_limit`` (whose history is bounded anyway), get the whole document.

With a store, what an activation emits runs only once a step lists it. A
running activation's emits are not all held until it completes: its buffered
children are written in *partial steps* (:meth:`Checkpointer.partial_step`:
the children, their held rows, and a *progress row* counting the parent's
emits so far, one transaction) and then run while it goes on; its completion
step stores the rest and removes the progress row. After a crash the parent
runs again and drops as many of its first emits as the progress row counts.
:mod:`.stream` has the rows and :mod:`.ledger.streaming` when steps are taken.

A job's start is one store transaction: the document and the entry activation
together (a process killed in between would leave a job with nothing to run). On
a :class:`~routilux.persistence.lease.LeasingStore` it also takes the job's lease,
held until the job ends or pauses: while it is live no other owner resumes the
job.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import nullcontext, suppress
from typing import TYPE_CHECKING, Any

from ..exceptions import JobStateError
from ..job_documents import job_document, snapshot
from ..persistence.history_log import LoggingStore
from ..persistence.lease import LeasingStore, Owner
from .checkpoint_documents import (
    bare_document,
    history_batch,
    takes_keyword,
    whole_document,
)
from .held import step_rows
from .stream import partial_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..job_state import HistoryEntry, JobState
    from ..persistence.base import CheckpointStore
    from ..record_log import RecordLog
    from .activation import Activation
    from .step_writer import StepWriter

__all__ = ["SAVE_INTERVAL", "AlreadyStored", "Checkpointer"]

#: Seconds between job-document writes while a checkpointed job runs.
SAVE_INTERVAL = 1.0


class AlreadyStored(Exception):
    """A new job's id is taken in the store (internal: the runner returns it)."""


class Checkpointer:
    """Writes one job's progress to a :class:`CheckpointStore`.

    Args:
        store: Where checkpoints go.
        job_id: The job.
        first_key: The first activation number to hand out (resumed jobs continue
            after the numbers already in the store).
        discard: Ids of stored pending activations the resumed job dropped (their
            routine or slot is gone: see :mod:`routilux.topology`); the first
            step removes them.
        stored: The store holds the job already (a resumed one).
        owner: The owner whose lease on the job was claimed already, if any.
    """

    def __init__(
        self,
        store: CheckpointStore,
        job_id: str,
        first_key: int = 0,
        discard: Sequence[str] | None = None,
        *,
        stored: bool = False,
        owner: Owner | None = None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self._discard = list(discard or ())
        self._keys = itertools.count(first_key)  # next() is atomic: no lock needed
        self._saved_at = time.monotonic()
        #: Set after an error: the next step writes the job document too.
        self.dirty = False
        self._stored = stored
        self._leasing = isinstance(store, LeasingStore)
        #: Who runs the job (meaningful on a store that keeps leases).
        self.owner = owner if owner is not None else Owner.new()
        #: Whether this run holds the job's lease now.
        self.holding = owner is not None and self._leasing
        self._logging = isinstance(store, LoggingStore)
        # A logging store written before log_step had compact gets whole
        # documents at the end, as before.
        self._compacting = self._logging and takes_keyword(store, "compact")
        # Guards _logged: the history entries the store holds (document + log).
        self._log_lock = threading.Lock()
        self._logged = 0
        #: How many of them the stored document holds (the log has the rest).
        self._in_document = 0
        # Those entries (the history only grows while it is logged): copied
        # once, not out of the whole history at every logging step.
        self._kept: list[HistoryEntry] = []
        #: Writes the job's steps in batches on its own thread (set by the
        #: runner when the job's lane does not block and the store batches);
        #: None: each step is written by the thread that settled its activation.
        self.writer: StepWriter | None = None

    def key(self) -> str:
        """A new activation id, unique within the job."""
        return f"a{next(self._keys)}"

    def drop(self, keys: Sequence[str]) -> None:
        """Have the next :meth:`begin` remove the stored rows ``keys`` too."""
        self._discard.extend(keys)

    def begin(
        self,
        job_state: JobState,
        activations: Sequence[Activation],
        *,
        finished: Sequence[str] = (),
    ) -> None:
        """Write the job document and the activations the store does not hold yet.

        That is the entry activation; loaded and paused ones already have ids.
        ``finished``: held rows (see :mod:`.held`) the same step removes, such
        as the arrivals a flush of the inboxes consumed.
        """
        fresh = [a for a in activations if a.key is None]
        for activation in fresh:
            activation.key = self.key()
        added = [a.checkpoint() for a in fresh]
        if finished:
            self._discard.extend(finished)
        store = self.store
        if not self._stored:
            self._begin_new(job_state, added)
            return
        claimed = self._claim()
        try:
            if claimed:  # a job paused here, run on: is the store's copy ours?
                self._check_unchanged(job_state)
            if self._history(job_state) is not None:
                self._restart_log(job_state, added)
            elif self._discard:
                # What a resume on a changed flow dropped leaves the store in
                # the same step as the document recording the drop.
                store.record_step(
                    self.job_id,
                    finished=self._discard,
                    added=added,
                    job=whole_document(job_state),
                )
                self._discard = []
            else:
                store.save_job(whole_document(job_state))
                if added:
                    store.record_step(self.job_id, added=added)
        except BaseException:
            if claimed:
                self.release()
            raise

    def _begin_new(self, job_state: JobState, added: list[dict[str, Any]]) -> None:
        """A new job: document, first activations (and lease), one transaction."""
        document = whole_document(job_state)
        if self._leasing:
            leasing: LeasingStore = self.store  # type: ignore[assignment]
            if not leasing.begin_job(document, added, self.owner):
                raise AlreadyStored(f"job {self.job_id!r} is in the store")
            self.holding = True
        else:
            self.store.record_step(self.job_id, added=added, job=document)
        self._wrote_whole(document)
        self._stored = True

    def _restart_log(self, job_state: JobState, added: list[dict[str, Any]]) -> None:
        """Begin a stored job's run on a logging store: its history into the log.

        One step: the document without history, the whole history as the log
        anew, the activations added and those a changed flow dropped removed.
        """
        document = whole_document(job_state)
        entries = document.pop("execution_history", [])
        document["execution_history"] = []
        logging: LoggingStore = self.store  # type: ignore[assignment]
        logging.log_step(
            self.job_id,
            finished=self._discard,
            added=added,
            history=entries,
            job=document,
            restart=True,
        )
        self._discard = []
        with self._log_lock:
            self._logged, self._in_document = len(entries), 0

    def _wrote_whole(self, document: dict[str, Any]) -> None:
        """The store holds ``document``, whole: its history and no log."""
        count = len(document.get("execution_history") or ())
        with self._log_lock:
            self._logged = self._in_document = count

    def _history(self, job_state: JobState) -> RecordLog[HistoryEntry] | None:
        """The job's history when its steps append it to a log, else None."""
        if not self._logging:
            return None
        history: RecordLog[HistoryEntry] = job_state._history
        # A bounded history drops its oldest entries: it rides in the document.
        return history if history.limit is None else None

    def _check_unchanged(self, job_state: JobState) -> None:
        """Refuse to run on a paused job another flow has run since.

        Raises:
            JobStateError: When the store's copy is no longer this pause (the
                job ran on elsewhere: it finished, runs, or paused again).
        """
        stored = self.store.load(self.job_id)
        status = stored.get("status")
        if status != "paused" or len(stored.get("pause_points") or ()) != len(
            job_state.pause_points
        ):
            raise JobStateError(
                f"job {self.job_id!r} ran on elsewhere since this flow paused it "
                f"(the checkpoint store has it {status}, "
                f"{len(stored.get('pause_points') or ())} pause(s)): resume it by "
                "id to run what the store holds"
            )

    def _claim(self) -> bool:
        """Take the job's lease unless held; True when this call took it."""
        if not self._leasing or self.holding:
            return False
        self.store.claim(self.job_id, self.owner)  # type: ignore[attr-defined]
        self.holding = True
        return True

    def release(self) -> None:
        """Give the job's lease up (the job ended, paused or could not start)."""
        if self.holding:
            self.holding = False
            self.store.release(self.job_id, self.owner)  # type: ignore[attr-defined]

    def add(self, activations: Sequence[Activation]) -> None:
        """Store ``activations`` as pending work of the running job (new ids)."""
        for activation in activations:
            activation.key = self.key()
        self.store.record_step(
            self.job_id, added=[activation.checkpoint() for activation in activations]
        )

    def step(
        self,
        activation: Activation,
        children: Sequence[Activation],
        job_state: JobState,
        *,
        queue: bool = False,
    ) -> Any:
        """Record, atomically, that ``activation`` is done and ``children`` pending.

        The job document rides along after an error and at most every
        ``SAVE_INTERVAL`` seconds, so a crash loses no error and little history.
        On a logging store that step appends the history made since the last
        such step instead of the whole history (appending it with every step
        cost more than the step itself, on a short job).

        With ``queue`` (the caller has a :attr:`writer`), a step without the
        document is not written but returned encoded, for the writer; a step
        with it is written now, as every step carrying a document or history is
        (a later document is then never overwritten by an earlier one still
        queued). Returns None when the step was written.
        """
        job = None
        now = time.monotonic()
        due = self.dirty or now - self._saved_at >= SAVE_INTERVAL
        if due:
            self.dirty = False
            self._saved_at = now
            history = self._history(job_state)
            if history is not None:
                self._log_step(activation, children, job_state, history)
                return None
            job = whole_document(job_state)
        finished, added = step_rows(activation, children)
        if queue and job is None:
            return self.store.prepare_step(  # type: ignore[attr-defined]
                self.job_id, finished=finished, added=added
            )
        self.store.record_step(self.job_id, finished=finished, added=added, job=job)
        return None

    def partial_step(
        self,
        activation: Activation,
        children: Sequence[Activation],
        emitted: int,
        held: Sequence[dict[str, Any]] = (),
        spent: Sequence[str] = (),
    ) -> None:
        """Record, atomically, what a still running ``activation`` emitted so far.

        Adds ``children`` and the ``held`` rows of its emits, removes the held
        rows ``spent`` names, and replaces its progress row with one counting
        ``emitted`` emits (see :mod:`.stream`). The activation stays pending;
        the job document is not written.
        """
        finished, added = partial_rows(activation, children, emitted, held, spent)
        self.store.record_step(self.job_id, finished=finished, added=added)

    def _log_step(
        self,
        activation: Activation,
        children: Sequence[Activation],
        job_state: JobState,
        history: RecordLog[HistoryEntry],
    ) -> None:
        """A due :meth:`step` on a logging store: the new history as log entries."""
        with self._log_lock:
            first = self._logged
            count = len(history) - first
            self._logged = first + count
            in_document = self._in_document
        # Entries are numbered: steps committed out of order still read back
        # in order.
        # The document's own history is what the log does not hold.
        job = bare_document(job_state, self._kept_entries(history, in_document))
        logging: LoggingStore = self.store  # type: ignore[assignment]
        finished, added = step_rows(activation, children)
        logging.log_step(
            self.job_id,
            finished=finished,
            added=added,
            history=history_batch(self.job_id, history, first, count),
            first=first,
            job=job,
        )

    def _kept_entries(
        self, history: RecordLog[HistoryEntry], count: int
    ) -> list[HistoryEntry]:
        """The first ``count`` entries: those the stored document holds."""
        kept = self._kept
        if len(kept) != count:  # the document was written whole since
            kept = self._kept = history.snapshot()[:count] if count else []
        return kept

    def end(self, job_state: JobState) -> None:
        """Write the final document; nothing of the job is pending any more.

        On a logging store whose log holds the history, the store compacts the
        log into the document itself: the entries it holds are not encoded
        again (that was most of the end of a long job).
        """
        try:
            leftovers = [item["id"] for item in self.store.pending(self.job_id)]
            history = self._history(job_state)
            if history is None or not self._compacting or job_state._owner_lock is None:
                self.store.record_step(
                    self.job_id, finished=leftovers, job=job_state.serialize()
                )
            else:
                self._compact(job_state, history, leftovers)
        except BaseException:
            self._release_after_failure()
            raise
        self.release()

    def _compact(
        self,
        job_state: JobState,
        history: RecordLog[HistoryEntry],
        leftovers: list[str],
    ) -> None:
        """The final step on a logging store: what is new, then the log folded in."""
        lock = job_state._owner_lock
        with self._log_lock:
            first, in_document = self._logged, self._in_document
        with lock if lock is not None else nullcontext():
            # The fields and the history as one moment, as serialize() takes them.
            fields = snapshot(job_state)
            count = len(history) - first  # entries only ever join the log
        kept = self._kept_entries(history, in_document)
        job = job_document(job_state.job_id, fields, kept)
        logging: LoggingStore = self.store  # type: ignore[assignment]
        logging.log_step(
            self.job_id,
            finished=leftovers,
            history=history_batch(self.job_id, history, first, count),
            first=first,
            job=job,
            compact=True,
        )
        with self._log_lock:
            self._logged = self._in_document = first + count

    def save(self, job_state: JobState) -> None:
        """Write the job document of a paused job and give its lease up."""
        try:
            self.store.save_job(whole_document(job_state))
        except BaseException:
            self._release_after_failure()
            raise
        self.release()

    def _release_after_failure(self) -> None:
        # The store holds the job as it was (interrupted): let another owner
        # resume it. The write's error is the one to report, not this one.
        with suppress(Exception):
            self.release()


def next_key(pending: Sequence[dict[str, Any]]) -> int:
    """The first activation number after those used by ``pending``."""
    numbers = [
        int(str(item.get("id", ""))[1:])
        for item in pending
        if str(item.get("id", "")).startswith("a")
        and str(item.get("id", ""))[1:].isdigit()
    ]
    return max(numbers, default=-1) + 1
