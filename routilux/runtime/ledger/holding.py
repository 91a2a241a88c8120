"""Holding: a job's inbox and merge-slot arrivals kept in its checkpoint store.

With a store, each arrival that waits in an inbox or is folded into a slot's
kept data gets a held row (see :mod:`routilux.runtime.held`) riding on the step
of the activation that sent it; the step that stores the call an inbox fired
removes the rows it consumed. A resumed job rebuilds its inboxes and slot data
from the rows before anything runs. Without a store nothing here runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import CheckpointError
from ..activation import RUNNING, Activation
from ..context import current_frame
from ..held import CONSUMED, INBOX, MERGE, Held, consume, held_row, marker_of
from .base import LedgerBase
from .inboxes import JobInboxes

if TYPE_CHECKING:
    from ..activation import Route

__all__ = ["Holding"]


class Holding(LedgerBase):
    """Keeps a job's held arrivals in step with its inboxes and slot data."""

    __slots__ = ()

    def _hold_inbox_locked(
        self,
        route: Route,
        source_id: str,
        params: dict[str, Any],
        fired: bool,
        source: Activation,
    ) -> None:
        """Account for an arrival just offered to ``route``'s inbox (lock held).

        The arrivals an inbox let go are those held before a call it answered
        with, and the new one too when it no longer waits: an inbox that fires
        and still waits is taken to keep only the arrival just offered (what
        ``Window`` does; :mod:`routilux.policies` states it for policies of
        one's own).
        """
        held = self._held
        inboxes = self._inboxes
        assert held is not None
        assert inboxes is not None
        slot = (route.routine_id, route.slot.name)
        waiting = held.inboxes.get(slot) or []
        keeps = inboxes.waiting_in(route)
        consumed: list[Held] = []
        if not keeps or fired:
            consumed, waiting = waiting, []
        if keeps:
            waiting.append(
                self._new_held(route, source, INBOX, source=source_id, params=params)
            )
        held.inboxes[slot] = waiting
        if consumed:
            self._consume_locked(route, consumed, source)

    def _hold_merge_locked(
        self, route: Route, params: dict[str, Any], source: Activation | None
    ) -> None:
        """Keep an arrival merged into ``route``'s slot data (lock held)."""
        held = self._held
        if held is None or source is None or source.state is not RUNNING:
            return  # no store, or a late emit: its step is written already
        # Append keeps a first list value by reference and extends it later:
        # the row keeps the list as it arrived.
        snapshot = {k: list(v) if type(v) is list else v for k, v in params.items()}
        arrival = self._new_held(route, source, MERGE, params=snapshot)
        held.merges.setdefault(route.slot, []).append(arrival)

    def _spend_merges_locked(self, slot: Any, by: Activation | None) -> None:
        """A handler reset (or took) ``slot``'s data: its held rows go (lock held)."""
        held = self._held
        if held is None:
            return
        merged = held.merges.pop(slot, None)
        if merged and by is not None and by.state is RUNNING:
            self._consume_locked(by.route, merged, by)

    def take_slot_data(self, slot: Any) -> dict[str, Any]:
        """What ``slot`` keeps in this job, removed in the same step."""
        with self._lock:
            self._spend_merges_locked(slot, _running())
            return self._slot_data.pop(slot, None) or {}

    def set_slot_data(self, slot: Any, data: dict[str, Any]) -> None:
        """Replace what ``slot`` keeps in this job (``{}``: start afresh)."""
        with self._lock:
            by = _running()
            self._spend_merges_locked(slot, by)
            if data:
                self._slot_data_locked()[slot] = data
                held = self._held
                if held is not None and by is not None and by.state is RUNNING:
                    route = by.route if by.route.slot is slot else None
                    if route is not None:  # rebuilt as the data set, then merges
                        arrival = self._new_held(
                            route, by, MERGE, params=dict(data), set=True
                        )
                        held.merges[slot] = [arrival]
            else:
                self._slot_data.pop(slot, None)

    def _consume_locked(
        self, route: Route, consumed: list[Held], by: Activation
    ) -> None:
        spent: list[str] = []
        late = consume(consumed, by, spent)
        if not spent:
            return
        if by.spent is None:
            by.spent = spent
        else:
            by.spent.extend(spent)
        if late:  # a writer's step may come after ours: name them in a row
            self._new_held(route, by, CONSUMED, keys=list(spent))

    def _new_held(
        self, route: Route, writer: Activation, kind: str, **marker: Any
    ) -> Held:
        checkpoint = self._checkpoint
        assert checkpoint is not None
        key = checkpoint.key()
        row = held_row(key, route.routine_id, route.slot.name, kind, **marker)
        arrival = Held(key, row, writer)
        if writer.held is None:
            writer.held = [arrival]
        else:
            writer.held.append(arrival)
        return arrival

    def _stored(self, activation: Activation) -> None:
        """``activation``'s step is committed: its held rows are in the store."""
        rows = activation.held
        if rows:
            with self._lock:
                for arrival in rows:
                    arrival.stored = True

    def _flushed_locked(self) -> list[str]:
        """Every inbox was flushed: the keys of the rows they held (lock held)."""
        held = self._held
        return [] if held is None else held.all_inbox_keys()

    # -- resuming --

    def rebuild_held(self, items: list[dict[str, Any]]) -> list[Activation]:
        """Rebuild inboxes and slot data from a resumed job's held rows.

        Called before the job runs, with the rows in arrival order. Rows an
        inbox answers with a call (a policy that is not deterministic), or whose
        slot has no policy any more, become activations to run (returned); rows
        of slots whose merge keeps nothing any more are dropped.

        Raises:
            CheckpointError: Naming the row, when its slot is gone, its params are
                not a dict, or the slot's policy or merge raised.
        """
        held = self._held
        if not items or held is None:
            return []
        assert self._checkpoint is not None
        policies = {
            (route.routine_id, route.slot.name): route
            for routes in self.routes.by_event.values()
            for route in routes
            if route.policy is not None
        }
        runs: list[Activation] = []
        drop: list[str] = []
        for item in items:
            key, routine_id, slot = str(item["id"]), item["routine_id"], item["slot"]
            marker = marker_of(item) or {}
            params = marker.get("params")
            where = (
                f"job {self.job_state.job_id!r}: held arrival {key!r} for "
                f"{routine_id!r}.{slot!r}"
            )
            route = policies.get((routine_id, slot)) or self.routes.route_to(
                routine_id, slot
            )
            if route is None or not isinstance(params, dict):
                what = "a slot the flow lacks" if route is None else "params not a dict"
                raise CheckpointError(f"{where}: {what}")
            try:
                if marker.get("kind") == INBOX:
                    runs.extend(self._reoffer(route, key, item, params, drop))
                elif route.merger.replaces:
                    drop.append(key)
                elif marker.get("set"):  # a handler set the data: merges follow
                    self._slot_data_locked()[route.slot] = dict(params)
                    held.merges[route.slot] = [Held(key, item, None)]
                else:
                    kept = self._slot_data.get(route.slot) or {}
                    merged_data = route.merger.merge(kept, params)[0]
                    self._slot_data_locked()[route.slot] = merged_data
                    merged = held.merges.setdefault(route.slot, [])
                    merged.append(Held(key, item, None))
            except Exception as exc:
                raise CheckpointError(f"{where}: {type(exc).__name__}: {exc}") from exc
        self._checkpoint.drop(drop)
        return runs

    def _reoffer(
        self,
        route: Route,
        key: str,
        item: dict[str, Any],
        params: dict[str, Any],
        drop: list[str],
    ) -> list[Activation]:
        held = self._held
        assert held is not None
        if route.policy is None:  # the slot lost its policy: deliver it as each
            drop.append(key)
            return [Activation(self, route, params)]  # type: ignore[arg-type]
        marker = marker_of(item) or {}
        inboxes = self._inboxes
        if inboxes is None:
            inboxes = self._inboxes = JobInboxes()
        with self._lock:
            calls = inboxes.offer(route, str(marker.get("source")), params)
            slot = (route.routine_id, route.slot.name)
            waiting = held.inboxes.setdefault(slot, [])
            waiting.append(Held(key, item, None))
            if calls or not inboxes.waiting_in(route):
                # Never answered before the crash, or it would not be held.
                kept = [waiting.pop()] if inboxes.waiting_in(route) else []
                drop.extend(h.key for h in waiting)
                held.inboxes[slot] = kept
        return [Activation(self, route, c) for c in calls]  # type: ignore[arg-type]


def _running() -> Activation | None:
    """The activation whose handler runs in this thread (None outside one)."""
    frame = current_frame()
    return None if frame is None else frame.activation
