"""Held arrivals: inbox and merge-slot state as rows of a checkpoint store.

A payload waiting in a slot's inbox (a policy other than ``each``) or folded
into a slot's kept data (a merge strategy other than ``override``) leaves no
pending activation behind: the activation that sent it completes, and after a
crash nothing would bring it back. So, with a checkpoint store, each such
arrival is also kept as a *held row*: a pending-activation entry whose payload
is ``{HELD: {"kind": ..., "source": ..., "params": ...}}``, stored in the same
atomic step as the sending activation's children, and removed (its id in the
step's finished list) in the step that stores the call its inbox fired. Held
rows are never run: a resume re-offers them, in the order they arrived, to
fresh inboxes and re-merges them into the slots' kept data.

Steps of concurrent activations may be committed out of order: an arrival can
be consumed (its join fired) before the step that stores it is written. The
consuming step then also stores a *consumed* row naming it, so that a resume
drops it whichever step came first. A resume drops consumed rows and the rows
they name; the job's end drops every row left.

The lists and :func:`consume` are used under the job ledger's lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .activation import Activation

__all__ = [
    "CONSUMED",
    "HELD",
    "INBOX",
    "MERGE",
    "Held",
    "HeldLists",
    "held_row",
    "marker_of",
    "split_held",
    "step_rows",
]

#: The payload key of a held row (no handler is ever called with it).
HELD = "__routilux_held__"
#: A held row's kinds: an inbox arrival, a merged arrival, a consumed list.
INBOX, MERGE, CONSUMED = "inbox", "merge", "consumed"


class Held:
    """One held arrival: its row, and whether a committed step stored it."""

    __slots__ = ("gone", "key", "row", "stored", "writer")

    def __init__(
        self, key: str, row: dict[str, Any], writer: Activation | None
    ) -> None:
        self.key = key
        self.row = row
        #: The activation whose step stores the row (None: rebuilt, stored).
        self.writer = writer
        self.stored = writer is None
        #: Consumed before its writer's step: the step leaves the row out.
        self.gone = False


def held_row(
    key: str, routine_id: str, slot: str, kind: str, **marker: Any
) -> dict[str, Any]:
    """A pending-activation entry holding an arrival (or a consumed list)."""
    return {
        "id": key,
        "routine_id": routine_id,
        "slot": slot,
        "payload": {HELD: {"kind": kind, **marker}},
    }


def marker_of(item: dict[str, Any]) -> dict[str, Any] | None:
    """The held marker of a pending entry, or None for a runnable activation."""
    payload = item.get("payload")
    if isinstance(payload, dict) and len(payload) == 1:
        marker = payload.get(HELD)
        if isinstance(marker, dict):
            return marker
    return None


def step_rows(
    activation: Activation, children: Sequence[Activation]
) -> tuple[list[str], list[dict[str, Any]]]:
    """A step's finished ids and added rows, with its held rows and spent keys."""
    finished = [activation.key] if activation.key is not None else []
    added = [child.checkpoint() for child in children]
    if activation.spent:
        finished.extend(activation.spent)
    if activation.held:
        added.extend(held.row for held in activation.held if not held.gone)
    return finished, added


def _number(item: dict[str, Any]) -> int:
    text = str(item.get("id", ""))
    return int(text[1:]) if text[1:].isdigit() else -1


def split_held(
    items: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Split stored pending entries: runnable, held (in arrival order), dropped ids.

    Dropped: consumed rows and the rows they name (their join fired already).
    """
    runnable: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    consumed: set[str] = set()
    dropped: list[str] = []
    for item in items:
        marker = marker_of(item)
        if marker is None:
            runnable.append(item)
        elif marker.get("kind") == CONSUMED:
            consumed.update(str(key) for key in marker.get("keys") or ())
            dropped.append(str(item.get("id")))
        else:
            held.append(item)
    kept = []
    for item in held:
        if str(item.get("id")) in consumed:
            dropped.append(str(item.get("id")))
        else:
            kept.append(item)
    # Keys are handed out under the job's lock as arrivals come: their order is
    # the arrival order, whatever order the steps were committed in.
    kept.sort(key=_number)
    return runnable, kept, dropped


class HeldLists:
    """A job's held arrivals by slot: those in each inbox, those merged.

    Guarded by the ledger's lock.
    """

    __slots__ = ("inboxes", "merges")

    def __init__(self) -> None:
        #: ``(routine_id, slot name)`` -> arrivals waiting in that inbox.
        self.inboxes: dict[tuple[str, str], list[Held]] = {}
        #: slot -> arrivals merged into what it keeps.
        self.merges: dict[Any, list[Held]] = {}

    def all_inbox_keys(self) -> list[str]:
        """Keys of every arrival waiting in an inbox; the lists are emptied."""
        keys = [h.key for held in self.inboxes.values() for h in held]
        self.inboxes.clear()
        return keys


def consume(consumed: list[Held], by: Activation | None, spent: list[str]) -> bool:
    """Account for arrivals an inbox fired (or a reset dropped) within ``by``.

    Keys of stored rows go to ``spent`` (the consuming step finishes them); a
    row still waiting for its writer's step is left out of that step when the
    writer is ``by`` itself (one step: it is never stored), else its key also
    goes to ``spent`` and True is returned: the consuming step must store a
    consumed row naming ``spent`` (its writer's step may be committed later).
    """
    late = False
    for held in consumed:
        if held.stored:
            spent.append(held.key)
        elif by is not None and held.writer is by:
            held.gone = True
        else:
            spent.append(held.key)
            late = True
    return late
