"""Emits: what a handler emits becomes activations, counted and queued.

An emit is recorded in the job's history and tracker, turned into one activation
per connected slot (after the slot's merge, or through its inbox when the slot
has a policy), counted, and handed to the job's lane: as an Activation, or as a
spec when the lane takes them (see :meth:`Emitting._queue_specs`). With a
checkpoint store, a running handler's emits go through :mod:`.streaming`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..._locks import take_contended
from ..activation import RUNNING, Activation
from .inboxes import InboxError, JobInboxes
from .running import Running

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..activation import Route

__all__ = ["Emitting"]

_wall = time.time


class Emitting(Running):
    """Turns emits into counted, queued activations (a part of the ledger)."""

    __slots__ = ()

    def emit(
        self,
        routine_id: str,
        event_name: str,
        data: dict[str, Any],
        source: Activation | None,
    ) -> None:
        """Record the emit and queue one activation per connected slot.

        Emits of a handler whose activation is settled (it timed out) are
        discarded; after a halt they are dropped and counted. With a store, a
        running source's emits stream (see :mod:`.streaming`).
        """
        if self._checkpoint is not None and source is not None:
            self._emit_stored(routine_id, event_name, data, source)
        else:
            self._emit(routine_id, event_name, data, source)

    def _emit(
        self,
        routine_id: str,
        event_name: str,
        data: dict[str, Any],
        source: Activation | None,
    ) -> None:
        key = (routine_id, event_name)
        routes = self.routes.by_event.get(key)
        if self.routes.laned and routes is not None and key in self.routes.laned:
            self.routes.check_lanes(key, data)  # a bad lane: nothing is made
        joined = routes is not None and key in self.routes.joined
        if not routes:
            activations = []
        elif joined:  # slots with a policy get their calls from their inbox
            activations = [
                self._activation(r, data, source) for r in routes if not r.policy
            ]
        elif self._specs is not None and self._checkpoint is None:
            self._queue_specs(key, data, source, routes)
            return
        else:
            activations = [self._activation(r, data, source) for r in routes]
        self._queue(key, data, source, routes, joined, activations)

    def _queue_specs(
        self,
        key: tuple[str, str],
        data: dict[str, Any],
        source: Activation | None,
        routes: Sequence[Route],
    ) -> None:
        """Queue an emit's activations as specs: no object each while queued.

        A job as wide as a chain's FIFO keeps its queued calls alive for long;
        as objects, every one would be promoted to the collector's oldest
        generation and walked by its full collections, which then ran ever
        more often as the job went on. The Activation is made as it runs.
        """
        cells = [self._delivery(route, data, source) for route in routes]
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            if not self._record_emit_locked(key, data, source, True):
                return
            if self._halted is not None or self._paused:
                held = [
                    Activation(self, route, payload, params)  # type: ignore[arg-type]  # a JobLedger
                    for route, (payload, params) in zip(routes, cells, strict=True)
                ]
                self._accept_emit_locked(key, data, source, routes, False, held, False)
                return
            self._pending += len(cells)
        finally:
            lock.release()
        submit = self._specs
        assert submit is not None
        for route, (payload, params) in zip(routes, cells, strict=True):
            submit((route.number, payload, params, None))

    def _from_spec(
        self,
        number: int,
        payload: dict[str, Any],
        params: dict[str, Any] | None,
        key: str | None,
    ) -> Activation | None:
        """The activation a spec stands for, made as its lane runs it.

        None when making it was interrupted (a Ctrl-C in the lane's thread): it
        is then made again and failed with the interrupt, which settles and
        counts it and halts the job, and the runner raises the interrupt once
        the job is settled. Left to escape, the call would be lost uncounted
        and the job would wait for it for ever.
        """
        route = self.routes.numbered[number]
        try:
            activation = Activation(self, route, payload, params)  # type: ignore[arg-type]  # a JobLedger
        except BaseException as exc:  # noqa: BLE001 - ends in the job
            activation = Activation(self, route, payload, params)  # type: ignore[arg-type]  # a JobLedger
            activation.key = key
            self._note_interrupt(exc)
            self.fail(activation, exc)
            return None
        activation.key = key
        return activation

    def _queue(
        self,
        key: tuple[str, str],
        data: dict[str, Any],
        source: Activation | None,
        routes: Sequence[Route] | None,
        joined: bool,
        activations: list[Activation],
    ) -> None:
        lock = self._lock
        if not lock.acquire(False):
            take_contended(lock)
        try:
            if not self._accept_emit_locked(
                key, data, source, routes, joined, activations
            ):
                return
        finally:
            lock.release()
        if self._pressure is not None:
            self._hand(activations)
            return
        submit = self.lane.submit  # type: ignore[union-attr]
        for activation in activations:
            submit(activation)

    def _accept_emit_locked(
        self,
        key: tuple[str, str],
        data: dict[str, Any],
        source: Activation | None,
        routes: Sequence[Route] | None,
        joined: bool,
        activations: list[Activation],
        record: bool = True,
    ) -> bool:
        """Record an emit and count its activations (lock held).

        ``record`` False: the emit is recorded already.

        Returns True when the activations go to the lane now; False when there
        are none, or they were dropped, parked or kept for the source's step.
        """
        if record and not self._record_emit_locked(key, data, source, bool(routes)):
            return False
        if self._halted is not None:
            self._drop_locked(activations)
            return False
        if joined:
            assert routes is not None
            self._offer_locked(key[0], routes, data, activations, source)
        self._pending += len(activations)
        if self._checkpoint is not None and source is not None:
            # Outbox: children exist in the store, and run, only once a
            # step of their source lists them (see .streaming, _release).
            for activation in activations:
                activation.key = self._checkpoint.key()
            if source.children is None:
                source.children = activations
            else:
                source.children.extend(activations)
            return False
        if self._paused:
            self._park_locked(activations)
            return False
        return True

    def _record_emit_locked(
        self,
        key: tuple[str, str],
        data: dict[str, Any],
        source: Activation | None,
        consumed: bool,
    ) -> bool:
        """Write an emit to history and tracker (lock held); False: nothing to queue.

        ``consumed``: some slot is connected to the event.
        """
        routine_id, event_name = key
        now = _wall()
        if source is not None and source.state is not RUNNING:
            self._history.extend(
                (routine_id, "late_emit_discarded", {"event": event_name}, now)
            )
            return False
        self._history.extend((routine_id, event_name, data, now))
        observers = self.observers
        assert observers is not None
        if source is not None and observers.watching_outcomes:
            # Only hooks read an outcome's emits: without them the list is skipped.
            if source.emitted is None:
                source.emitted = [(event_name, data)]
            else:
                source.emitted.append((event_name, data))
        cells = observers.event_cells
        if cells is None:
            cells = observers.cells()[1]
        cells.extend(
            (now, routine_id, event_name, self.routes.targets.get(key, ()), data)
        )
        if not consumed:
            self._outputs_locked().unconsumed[routine_id] = data
            return False
        return True

    def _offer_locked(
        self,
        source_id: str,
        routes: Sequence[Route],
        data: dict[str, Any],
        activations: list[Activation],
        source: Activation | None,
    ) -> None:
        """Offer an emit to the inboxes of its policy slots (lock held).

        The calls an inbox answers with join ``activations``. A policy that
        raises fails the job, its error recorded under the slot. With a store,
        the arrival's held row rides on ``source``'s step (see ``holding``).
        """
        inboxes = self._inboxes
        if inboxes is None:
            inboxes = self._inboxes = JobInboxes()
        holds = self._held is not None and source is not None
        try:
            for route in routes:
                if route.policy is not None:
                    params = route.map(data)
                    calls = inboxes.offer(route, source_id, params)
                    activations.extend(Activation(self, route, c) for c in calls)  # type: ignore[arg-type]  # a JobLedger
                    if holds:
                        assert source is not None
                        self._hold_inbox_locked(
                            route, source_id, params, bool(calls), source
                        )
        except InboxError as broken:
            self._inbox_failed_locked(broken)

    def _activation(
        self, route: Route, data: dict[str, Any], source: Activation | None
    ) -> Activation:
        payload, params = self._delivery(route, data, source)
        return Activation(self, route, payload, params)  # type: ignore[arg-type]  # a JobLedger

    def _delivery(
        self, route: Route, data: dict[str, Any], source: Activation | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """What an emit of ``data`` delivers through ``route``.

        The payload, and what arrived before merging (None: the payload).
        """
        incoming = route.map(data)
        merger = route.merger
        if merger.replaces:  # override: nothing kept to merge into
            # What arrived, for the tracker: unmapped, the emitted dict, which the
            # history keeps already; the copy, the handler's own, is not kept.
            return incoming, (None if route.mapped else data)
        if not merger.is_user_code:
            with self._lock:
                kept = self._slot_data_locked().setdefault(route.slot, {})
                payload = merger.merge(kept, incoming)[1]
                if self._held is not None:
                    self._hold_merge_locked(route, incoming, source)
        else:
            payload = self._merge_user(route, incoming, source)
        return payload, incoming

    def _merge_user(
        self, route: Route, incoming: dict[str, Any], source: Activation | None
    ) -> dict[str, Any]:
        # User merges run outside the lock: read, merge, then store only if nobody
        # stored in between (else merge again with the newer data).
        while True:
            with self._lock:
                before = self._slot_data.get(route.slot)
            kept, payload = route.merger.merge(before or {}, incoming)
            with self._lock:
                slot_data = self._slot_data_locked()
                if slot_data.get(route.slot) is before:
                    slot_data[route.slot] = kept
                    if self._held is not None:
                        self._hold_merge_locked(route, incoming, source)
                    return payload

    # -- Holding's (the ledger's other part) --

    def _hold_inbox_locked(
        self,
        route: Route,
        source_id: str,
        params: dict[str, Any],
        fired: bool,
        source: Activation,
    ) -> None:
        raise NotImplementedError  # Holding's

    def _hold_merge_locked(
        self, route: Route, params: dict[str, Any], source: Activation | None
    ) -> None:
        raise NotImplementedError  # Holding's
