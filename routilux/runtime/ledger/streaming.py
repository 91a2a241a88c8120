"""Streaming: a checkpointed activation's children run while it still runs.

With a checkpoint store an emit's children wait in their source's outbox until
a store transaction lists them (see :mod:`..stream`). This part of the ledger
writes that outbox in partial steps while the source runs, and hands the
children to the lane once their step is committed:

* once :data:`~..stream.FLUSH_EVERY` children wait, or once the oldest of them
  has waited :data:`~..stream.FLUSH_AFTER` seconds: checked at each emit, and,
  for a handler that stopped emitting (it computes, or waits for its
  children's effect), by the *flush ticker*, one daemon thread per process
  that looks every :data:`TICK` seconds while some outbox waits, writes the
  steps due, and ends after :data:`LINGER` idle seconds;
* the rest with the activation's completion step, as before. A handler that
  ends within ``FLUSH_AFTER`` (most do) costs no partial step at all.

A re-run of an activation whose partial steps were stored before a crash drops
its first emits, as many as its progress row counts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ...exceptions import CheckpointError
from ..activation import RUNNING
from ..invoker import safe_text
from ..stream import FLUSH_AFTER, FLUSH_EVERY, FLUSH_FIRST, Stream, progress_key
from .failures import Failures

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..activation import Activation
    from ..held import Held

__all__ = ["LINGER", "TICK", "Streaming"]

_clock = time.monotonic
_log = logging.getLogger("routilux.runtime")

#: Seconds between the flush ticker's looks at the outboxes waiting.
TICK = 0.002
#: Idle seconds after which the flush ticker's thread ends.
LINGER = 1.0


class Streaming(Failures):
    """Writes running activations' outboxes in partial steps (with a store)."""

    __slots__ = ()

    def _emit(
        self,
        routine_id: str,
        event_name: str,
        data: dict[str, Any],
        source: Activation | None,
    ) -> None:
        raise NotImplementedError  # Emitting's

    def _emit_stored(
        self,
        routine_id: str,
        event_name: str,
        data: dict[str, Any],
        source: Activation,
    ) -> None:
        """An emit of a running activation of a checkpointed job.

        Its ordinal is counted; one that a run before a crash stored already is
        dropped. Then, when due, the outbox is written (see the module).
        """
        stream = source.stream
        if stream is None:
            with self._lock:
                stream = source.stream
                if stream is None:
                    stream = source.stream = Stream()
        with stream.emitting:
            ordinal = stream.emits
            stream.emits = ordinal + 1
            if ordinal < stream.skip:
                return  # stored before the crash, with what it made
            stream.depth += 1
            try:
                self._emit(routine_id, event_name, data, source)
            finally:
                stream.depth -= 1
            if stream.depth or not (source.children or source.held or source.spent):
                # Nested (a merge of one's own emitting): the outer emit decides,
                # as no partial step may wait for a lock this thread holds.
                return
            now = _clock()
            if stream.since is None:
                stream.since = now
            due = (
                (FLUSH_FIRST and stream.flushed == stream.skip)  # a first write
                or len(source.children or ()) >= FLUSH_EVERY
                or now - stream.since >= FLUSH_AFTER
            )
            if not due and not stream.ticking:
                stream.ticking = True
                _TICKER.watch(self, source, stream)
        if due:
            self._flush_stream(source, stream)

    def _flush_stream(self, activation: Activation, stream: Stream) -> None:
        """Write a running activation's outbox in a partial step, then run it.

        Never raises: a store failure fails the job (as a failed step does), and
        the children are then dropped.
        """
        with stream.lock:
            children, held, spent, count, lane = self._take_outbox(activation, stream)
            if not (children or held or spent):
                return
            try:
                self._write_partial(activation, stream, children, held, spent, count)
            finally:
                if lane is not None:
                    lane()

    def _write_partial(
        self,
        activation: Activation,
        stream: Stream,
        children: list[Activation],
        held: list[Held],
        spent: list[str],
        count: int,
    ) -> None:
        """Write a partial step (``stream.lock`` held), then dispatch its children."""
        if self.interrupt is None:  # after a Ctrl-C nothing more is recorded
            checkpoint = self._checkpoint
            assert checkpoint is not None
            rows = [arrival.row for arrival in held if not arrival.gone]
            try:
                checkpoint.partial_step(activation, children, count, rows, spent)
            except BaseException as exc:  # noqa: BLE001 - fails the job
                self._break(
                    activation,
                    CheckpointError(f"checkpoint failed: {safe_text(exc)}"),
                    exc,
                )
            else:
                stream.flushed = count
                if held:
                    with self._lock:
                        for arrival in held:
                            arrival.stored = True
        if children:
            # Under the lock: the activation's settling waits for it, so its
            # lane has them before it can see nothing left to run (a
            # sequential lane ends then; a timeout settles without that
            # lock, hence the hold on the lane too).
            self._dispatch(children)

    def _take_outbox(
        self, activation: Activation, stream: Stream
    ) -> tuple[list[Activation], list[Held], list[str], int, Callable[[], None] | None]:
        """Take what a running activation's emits left to write, and their count.

        Nothing when it has settled. Called with ``stream.lock`` held. Last, the
        release of the job's lane, held when children are taken (the handler
        still runs in a blocking lane's thread: it must wait for them).
        """
        with stream.emitting:  # whole emits only
            if stream.ticking:
                stream.ticking = False
                _TICKER.forget(stream)
            stream.since = None
            with self._lock:
                if stream.done or activation.state is not RUNNING:
                    return [], [], [], stream.emits, None
                children, activation.children = activation.children, None
                held, activation.held = activation.held, None
                spent, activation.spent = activation.spent, None
                for arrival in held or ():
                    # Consumed from now on, by anyone, it is named in a consumed
                    # row: this step may commit after the consuming one.
                    arrival.writer = None
                lane = self._hold_lane() if children else None
                return children or [], held or [], spent or [], stream.emits, lane

    def _end_stream(self, activation: Activation, stream: Stream) -> None:
        """The activation settled: take ``stream.lock`` for its completion step.

        No partial step is taken after this (one under way is waited for). The
        completion step then also removes the progress row, if one is stored.
        The caller releases the lock once the step is written.
        """
        stream.lock.acquire()
        stream.done = True
        if stream.ticking:
            stream.ticking = False
            _TICKER.forget(stream)
        if stream.flushed and activation.key is not None:
            spent = activation.spent if activation.spent is not None else []
            spent.append(progress_key(activation.key))
            activation.spent = spent

    def _dispatch(self, activations: list[Activation]) -> None:
        raise NotImplementedError  # Running's


class _Ticker:
    """Writes the outboxes whose oldest emit waited ``FLUSH_AFTER`` (one thread).

    ``_lock`` guards the watched streams and the thread; it is taken under a
    stream's ``emitting`` lock and never held while a step is written.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[Streaming, Activation, Stream]] = {}
        self._thread: threading.Thread | None = None

    def watch(self, ledger: Streaming, activation: Activation, stream: Stream) -> None:
        with self._lock:
            self._watched[id(stream)] = (ledger, activation, stream)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="routilux-stream-flush", daemon=True
                )
                self._thread.start()

    def forget(self, stream: Stream) -> None:
        with self._lock:
            self._watched.pop(id(stream), None)

    def _loop(self) -> None:
        idle = 0.0
        pause = threading.Event()
        while True:
            pause.wait(TICK)
            now = _clock()
            with self._lock:
                if not self._watched:
                    idle += TICK
                    if idle >= LINGER:
                        self._thread = None
                        return
                    continue
                idle = 0.0
                due = [
                    entry
                    for entry in self._watched.values()
                    if (since := entry[2].since) is not None
                    and now - since >= FLUSH_AFTER
                ]
            for entry in due:
                _flush_one(*entry)


def _flush_one(ledger: Streaming, activation: Activation, stream: Stream) -> None:
    """A due partial step on the ticker's thread, which serves every job."""
    try:
        ledger._flush_stream(activation, stream)
    except BaseException:  # noqa: BLE001 - a bug must not stop every job's flushes
        _log.exception("a partial step failed for %r", activation)


_TICKER = _Ticker()
