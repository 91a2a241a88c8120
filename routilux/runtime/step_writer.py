"""The step writer: running jobs' checkpoint steps, written in batches.

On the concurrent strategy a settled activation's step is not written by the
worker that ran it. The worker encodes it (so a value the store refuses still
fails the job at once, in that worker) and queues it here; one thread per store
writes whatever has queued up, from every job and flow using the store, in one
transaction (group commit), and then, in the order the steps were queued, tells
each step's job: the job marks the step's held rows stored, hands its children
to the lane and counts its activation settled. So a child never runs before the
step that made it is committed, and a job ends (or pauses) only once its every
queued step is durable.

One writer per *store* rather than per flow: the store is what serializes
writes (one SQLite file takes one write transaction at a time), so flows that
share a store share its batches too, and their steps cost one commit.

A worker does not wait for its own step: a commit under the GIL costs about
what the hand-offs of waiting for it would. It waits only while more than the
store's ``commit_window`` steps are queued and not yet durable. The steps of
workers not waiting are then never more than the window (a step queued without
waiting left at most ``window`` queued; a worker stops waiting only when at
most ``window`` are), and a worker waiting runs no handler. So after a crash,
handlers running plus steps unwritten, the activations that run again, are at
most ``max_workers + commit_window``.

The thread starts with the first step and ends after :data:`LINGER` idle
seconds. ``StepWriter._lock`` guards the queue, the count and the thread; it is
never held while the store is written or a job is told.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..exceptions import CheckpointError
from .invoker import safe_text

if TYPE_CHECKING:
    from ..persistence.base import CheckpointStore
    from .activation import Activation

__all__ = ["LINGER", "StepOwner", "StepWriter", "writer_for"]

_log = logging.getLogger("routilux.runtime.step_writer")

#: Idle seconds after which the writer's thread ends.
LINGER = 0.2
#: The most steps written in one transaction (children wait for the commit).
BATCH_LIMIT = 512


#: A step told to its job: its activation, children, how many activations it
#: settles, and its error (None: it is durable).
Written = tuple["Activation", "list[Activation] | None", int, "BaseException | None"]


class StepOwner(Protocol):
    """The job a queued step belongs to; told once it is written or failed."""

    def steps_written(self, written: list[Written]) -> None:
        """Steps of this job are durable or failed, in the order they were queued.

        Runs on the writer's thread; consecutive steps of one job of a batch
        are told in one call.
        """


class _Entry(NamedTuple):
    step: Any  # the store's prepared step
    owner: StepOwner
    activation: Activation
    children: list[Activation] | None
    settled: int


class StepWriter:
    """Writes the queued steps of running jobs to one store, in batches.

    Args:
        store: Where the steps go (it has ``write_steps``).
        window: How many queued steps may wait before a worker waits.

    Thread-safe.
    """

    def __init__(self, store: CheckpointStore, window: int) -> None:
        self.store = store
        self.window = window
        self._name = f"routilux-steps-{getattr(store, 'path', None) or id(store)}"
        # Guards _queue, _unwritten, _blocked and _thread.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the thread waits for steps
        self._room = threading.Condition(self._lock)  # workers wait for the window
        self._queue: list[_Entry] = []
        #: Steps queued and not yet durable (or failed): the queue and the
        #: batch being written.
        self._unwritten = 0
        #: Workers waiting for room.
        self._blocked = 0
        self._thread: threading.Thread | None = None

    def submit(
        self,
        step: Any,
        owner: StepOwner,
        activation: Activation,
        children: list[Activation] | None,
        settled: int,
    ) -> None:
        """Queue a prepared step; ``owner`` is told once it is written or failed.

        Raises:
            RuntimeError: When the thread cannot be started; nothing is queued.
        """
        with self._lock:
            if self._thread is None:
                self._start_locked()  # it waits for the lock: the step is queued first
            elif not self._queue:
                self._wake.notify()
            self._queue.append(_Entry(step, owner, activation, children, settled))
            self._unwritten += 1

    def _start_locked(self) -> None:
        """Start the writer's thread (lock held). Raises when it cannot start."""
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        thread.start()
        self._thread = thread

    def set_window(self, window: int) -> None:
        """Change the window (the store's ``commit_window`` changed)."""
        with self._lock:
            self.window = window
            self._room.notify_all()

    def wait_for_room(self) -> None:
        """Wait while more than ``window`` steps are queued and not yet durable.

        The writer's own thread never waits (it is what makes room).
        """
        with self._lock:
            if self._unwritten <= self.window:
                return
            if self._thread is threading.current_thread():
                return
            self._blocked += 1
            try:
                while self._unwritten > self.window:
                    self._room.wait()
            finally:
                self._blocked -= 1

    def _take(self) -> list[_Entry]:
        """Wait (lock held) for queued steps; [] after ``LINGER`` idle seconds."""
        if not self._queue:
            self._wake.wait(LINGER)
            if not self._queue:
                return []
        batch = self._queue[:BATCH_LIMIT]
        del self._queue[:BATCH_LIMIT]
        return batch

    def _run(self) -> None:
        batch: list[_Entry] = []
        try:
            while True:
                with self._lock:
                    batch = self._take()
                    if not batch:
                        self._thread = None
                        return
                errors = self._write(batch)
                with self._lock:
                    self._unwritten -= len(batch)
                    if self._blocked:  # a notify costs even with no one waiting
                        self._room.notify_all()
                told, batch = batch, []
                _tell(told, errors)
        except BaseException as exc:  # noqa: BLE001 - no step may be left untold
            self._died(batch, exc)

    def _write(self, batch: list[_Entry]) -> list[BaseException | None]:
        """Write a batch in one transaction; each step's error (None: written)."""
        write_steps = self.store.write_steps  # type: ignore[attr-defined]
        errors: list[BaseException | None] = write_steps([e.step for e in batch])
        if len(errors) != len(batch):  # checked while the batch is still held
            raise CheckpointError(
                f"{self.store!r}.write_steps returned {len(errors)} outcomes "
                f"for {len(batch)} steps"
            )
        strange = next(
            (e for e in errors if e is not None and not isinstance(e, BaseException)),
            None,
        )
        if strange is not None:  # a job would take it for an error and choke
            raise CheckpointError(
                f"{self.store!r}.write_steps returned {strange!r} as a step's "
                "outcome (None for a step written, else the exception)"
            )
        return errors

    def _died(self, batch: list[_Entry], exc: BaseException) -> None:
        """The thread failed: fail every step it held, free every waiting worker.

        The failures are told before another thread may start (steps queued
        meanwhile wait for it), so no job hears of a later step first.
        """
        _log.error("the checkpoint step writer failed", exc_info=exc)
        error = CheckpointError(
            f"the checkpoint step writer of {self.store!r} failed: "
            f"{type(exc).__name__}: {safe_text(exc)}"
        )
        error.__cause__ = exc
        held = batch
        while True:
            with self._lock:
                failed, self._queue = held + self._queue, []
                self._unwritten -= len(failed)
                self._room.notify_all()
            _tell(failed, [error] * len(failed))
            held = []
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                try:  # steps queued meanwhile: a new thread writes them
                    self._start_locked()
                except BaseException:  # noqa: BLE001 - no thread: they fail too
                    continue
                return


def _tell(batch: list[_Entry], errors: list[BaseException | None]) -> None:
    """Tell each step's job, a run of one job's steps at a time, in order.

    What a job raises must not stop the other jobs.
    """
    run: list[Written] = []
    owner: StepOwner | None = None
    for entry, error in zip(batch, errors, strict=True):
        if entry.owner is not owner:
            if owner is not None:
                _tell_one(owner, run)
            owner, run = entry.owner, []
        run.append((entry.activation, entry.children, entry.settled, error))
    if owner is not None:
        _tell_one(owner, run)


def _tell_one(owner: StepOwner, written: list[Written]) -> None:
    try:
        owner.steps_written(written)
    except BaseException:  # noqa: BLE001 - logged: the job records its own errors
        _log.exception("telling a job its checkpoint steps were written")


# Per store (by id; the writer checks it is the same object): its writer.
_WRITERS: weakref.WeakValueDictionary[int, StepWriter] = weakref.WeakValueDictionary()
_WRITERS_LOCK = threading.Lock()


def writer_for(store: CheckpointStore) -> StepWriter | None:
    """The step writer of ``store``, or None when its steps are written inline.

    Inline: a store without ``write_steps`` or with ``commit_window`` 0, and a
    subclass that changes how one step is written (``record_step``), which is
    then given every step through it.
    """
    window = getattr(store, "commit_window", 0)
    if not window or not _batches(type(store)):
        return None
    with _WRITERS_LOCK:
        writer = _WRITERS.get(id(store))
        if writer is None or writer.store is not store:
            writer = _WRITERS[id(store)] = StepWriter(store, window)
        elif writer.window != window:  # one writer per store, whatever the window
            writer.set_window(window)
        return writer


def _batches(cls: type) -> bool:
    owner = next((k for k in cls.__mro__ if "write_steps" in vars(k)), None)
    if owner is None:
        return False
    return all(
        getattr(cls, name, None) is getattr(owner, name, None)
        for name in ("record_step", "prepare_step")
    )
