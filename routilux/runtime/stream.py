"""Streaming a running activation's emits into a checkpoint store.

With a store, what an activation emits waits in its *outbox* (its ``children``)
until a store transaction lists it: a child exists in the store only together
with a record that its parent made it. A :class:`Stream` writes the outbox of
an activation that is still running in *partial steps*, so that its children
run while it goes on emitting (the ledger's ``Streaming`` part decides when).

A partial step is one transaction that adds the buffered children (and the
held rows of those emits, see :mod:`.held`), removes the held rows the emits
consumed, and replaces the parent's *progress row*: a pending entry with the id
``<parent id>.emitted`` whose payload is ``{EMITTED: {"of": parent id,
"count": n}}``, n being how many emits the parent had made when the step was
taken (its *ordinals* ``0 .. n-1``). The parent's own row is left as it is (a
large payload is not rewritten with every partial step). Its completion step
removes the progress row with the parent's row.

A resumed job reads the progress rows first (:func:`split_progress`): the
parent, still pending, runs again, and its first n emits are dropped (they are
stored already); a progress row whose parent is not pending is dropped.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .activation import Activation

__all__ = [
    "EMITTED",
    "FLUSH_AFTER",
    "FLUSH_EVERY",
    "FLUSH_FIRST",
    "Stream",
    "partial_rows",
    "progress_key",
    "progress_of",
    "progress_row",
    "split_progress",
]

#: The payload key of a progress row (no handler is ever called with it).
EMITTED = "__routilux_emitted__"
#: Whether a running activation's first emit is written at once. Off: a step
#: of its own for every emitting activation doubled the store's cost per
#: activation of a chain of short handlers (most end before FLUSH_AFTER).
FLUSH_FIRST = False
#: A running activation's buffered children are written once this many wait...
FLUSH_EVERY = 1024
#: ... or once the oldest of them has waited this many seconds.
FLUSH_AFTER = 0.005


class Stream:
    """The streaming state of one running activation of a checkpointed job.

    Attributes:
        lock: Serialises the activation's partial steps and its completion
            step: a progress count is never overtaken by an older one.
        emitting: Held through each emit of the activation, so a partial step
            taken from another thread (the flush timer) sees whole emits only.
        emits: The emits made so far (the next emit's ordinal), over all the
            activation's attempts.
        depth: Emits under way (more than one: an emit within an emit).
        skip: Emits that a run before a crash stored already: ordinals below
            it are dropped.
        flushed: The emit count the last partial step stored (0: none yet).
        since: When the oldest unwritten emit was made (None: none waits).
        ticking: The flush ticker watches the activation (unwritten emits).
        done: The activation settled: no partial step is taken any more.
    """

    __slots__ = (
        "depth",
        "done",
        "emits",
        "emitting",
        "flushed",
        "lock",
        "since",
        "skip",
        "ticking",
    )

    def __init__(self, skip: int = 0) -> None:
        self.lock = threading.Lock()
        # Re-entrant: a merge of one's own, run within an emit, may emit too.
        self.emitting = threading.RLock()
        self.emits = 0
        self.depth = 0  # emits of this activation under way in this thread
        self.skip = skip
        self.flushed = skip
        self.since: float | None = None
        self.ticking = False
        self.done = False


def progress_key(key: str) -> str:
    """The id of the progress row of the activation stored as ``key``."""
    return f"{key}.emitted"


def progress_row(key: str, routine_id: str, slot: str, count: int) -> dict[str, Any]:
    """The progress row saying the activation ``key`` has stored ``count`` emits."""
    return {
        "id": progress_key(key),
        "routine_id": routine_id,
        "slot": slot,
        "payload": {EMITTED: {"of": key, "count": count}},
    }


def partial_rows(
    activation: Activation,
    children: Sequence[Activation],
    emitted: int,
    held: Sequence[dict[str, Any]] = (),
    spent: Sequence[str] = (),
) -> tuple[list[str], list[dict[str, Any]]]:
    """A partial step's finished ids and added rows (see the module)."""
    assert activation.key is not None
    progress = progress_row(
        activation.key, activation.routine_id, activation.route.slot.name, emitted
    )
    added = [child.checkpoint() for child in children]
    added.extend(held)
    added.append(progress)
    return [progress["id"], *spent], added


def progress_of(item: dict[str, Any]) -> tuple[str, int] | None:
    """``(parent id, count)`` of a progress row; None for any other entry."""
    payload = item.get("payload")
    if not isinstance(payload, dict) or len(payload) != 1:
        return None
    marker = payload.get(EMITTED)
    if not isinstance(marker, dict):
        return None
    parent, count = marker.get("of"), marker.get("count")
    if not isinstance(parent, str) or type(count) is not int or count < 0:
        return None
    return parent, count


def split_progress(
    items: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, int], list[str]]:
    """Split stored pending entries: the others, emit counts by parent, orphans.

    Orphans are ids of progress rows whose parent is not pending (a resume
    removes them).
    """
    rest: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    rows: dict[str, str] = {}
    for item in items:
        found = progress_of(item)
        if found is None:
            rest.append(item)
        else:
            parent, count = found
            counts[parent] = max(count, counts.get(parent, 0))
            rows[parent] = str(item.get("id"))
    pending = {str(item.get("id")) for item in rest}
    orphans = [row for parent, row in rows.items() if parent not in pending]
    for parent in list(counts):
        if parent not in pending:
            del counts[parent]
    return rest, counts, orphans
