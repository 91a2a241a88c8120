"""A job's inboxes: payloads waiting in slots whose policy is not ``each``.

One inbox per (routine, slot) of the job, opened at the first arrival from the
slot's policy (see :mod:`routilux.policies`). The ledger offers every arrival to it
and runs the calls it answers with; when the job has nothing else to do it
flushes every inbox that still waits, so a join never holds a job open.

Everything here runs under the ledger's lock (inboxes keep no lock of their own).
"""

from __future__ import annotations

import time
from collections.abc import Sized
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...policies import Inbox
    from ..activation import Route

__all__ = ["InboxError", "JobInboxes"]


class InboxError(Exception):
    """A slot policy's inbox raised: carries the route of the slot (internal)."""

    def __init__(self, route: Route, error: BaseException) -> None:
        super().__init__(route, error)
        self.route = route
        self.error = error


#: A history entry an inbox asks for: (routine_id, event_name, data, timestamp).
Note = tuple[str, str, dict[str, Any], float]


class JobInboxes:
    """The open inboxes of one job (guarded by the ledger's lock)."""

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], tuple[Route, Inbox]] = {}

    def offer(
        self, route: Route, source_id: str, payload: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Offer an arrival to its slot's inbox; the payloads to call with now.

        Raises:
            InboxError: The policy's inbox raised (it wraps the error).
        """
        key = (route.routine_id, route.slot.name)
        held = self._open.get(key)
        try:
            if held is None:
                assert route.policy is not None
                held = self._open[key] = (route, route.policy.open(route.sources))
            return held[1].offer(source_id, payload)
        except Exception as exc:
            raise InboxError(route, exc) from exc

    def waiting_in(self, route: Route) -> bool:
        """True while the inbox of ``route``'s slot holds payloads.

        Raises:
            InboxError: The policy's inbox raised (it wraps the error).
        """
        held = self._open.get((route.routine_id, route.slot.name))
        try:
            return held is not None and held[1].waiting()
        except Exception as exc:
            raise InboxError(route, exc) from exc

    def waiting(self) -> bool:
        """True while any inbox holds payloads."""
        return any(inbox.waiting() for _, inbox in self._open.values())

    def flush(self, notes: list[Note]) -> list[tuple[Route, dict[str, Any]]]:
        """Flush and close every inbox: the calls to make, in the order opened.

        Rounds a policy dropped are added to ``notes`` as ``join_incomplete``
        history entries.

        Raises:
            InboxError: A policy's inbox raised while flushing (a join that must
                fail, or a bug in a policy of one's own).
        """
        calls: list[tuple[Route, dict[str, Any]]] = []
        opened, self._open = self._open, {}  # flushed inboxes close; later arrivals
        for route, inbox in opened.values():  # open new ones
            if not inbox.waiting():
                continue
            try:
                payloads = inbox.flush()
            except Exception as exc:
                raise InboxError(route, exc) from exc
            calls.extend((route, payload) for payload in payloads)
            now, slot = time.time(), route.slot.name
            notes.extend(
                (route.routine_id, "join_incomplete", {"slot": slot, "missing": m}, now)
                for m in _take_skipped(inbox)
            )
        return calls

    def fill(self) -> tuple[int, int]:
        """``(inboxes holding payloads, payloads held)``, for stats.

        An inbox of a user policy that has no ``__len__`` counts one payload.
        """
        waiting = items = 0
        for _, inbox in self._open.values():
            if inbox.waiting():
                waiting += 1
                items += len(inbox) if isinstance(inbox, Sized) else 1
        return waiting, items


def _take_skipped(inbox: Inbox) -> list[list[str]]:
    skipped: list[list[str]] | None = getattr(inbox, "skipped", None)
    if not skipped:
        return []
    taken = list(skipped)
    skipped.clear()
    return taken
