"""Topology fingerprints: the shape of the flow a job ran on, and what changed since.

Every job a flow starts or resumes carries a :class:`FlowTopology` in
``JobState.topology``, so every stored job document has one: the routine ids
with their classes, slots and events, the connections, and a fingerprint (a
SHA-256 of all of it). Resuming a job from a document (a checkpoint store, or a
paused JobState loaded elsewhere) compares it with the flow that resumes it;
when they differ, :class:`~routilux.TopologyChangedError` lists every routine,
slot, event and connection added and removed (:class:`TopologyChanges`), unless
``flow.resume(job, allow_changes=True)``. Then the activations the job held for
a routine or slot that is gone are dropped and recorded in ``job.errors`` (one
record, ``error_type="TopologyChangedError"``, with the ``changes`` and the
``dropped`` activations and their payloads), and the rest runs.

What the shape leaves out: configuration, handlers, param mappings, lane keys,
policies, and routines' classes (recorded, not compared: a class refactored,
renamed or run from a script's ``__main__`` with the same slots and events is
the same shape). Changing those does not stop a resume. A job
stored before fingerprints existed has no topology and resumes as it always did.

.. versionadded:: 1.0
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict

from . import _spec_drops
from .exceptions import TopologyChangedError
from .records import ErrorRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from .job_state import JobState

__all__ = [
    "FlowTopology",
    "RoutineShape",
    "TopologyCache",
    "TopologyChanges",
    "reconcile",
]

#: A connection: source routine id, event, target routine id, slot.
Link = tuple[str, str, str, str]


class RoutineShape(BaseModel):
    """One routine as a topology records it.

    Attributes:
        id: The routine's id in the flow.
        class_key: ``module:QualifiedName`` of its class.
        slots: Its slot names, sorted.
        events: Its event names, sorted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    class_key: str
    slots: tuple[str, ...] = ()
    events: tuple[str, ...] = ()


class FlowTopology(BaseModel):
    """The shape of a flow: what ``JobState.topology`` holds.

    Immutable. Two flows have the same fingerprint exactly when they have the
    same routine ids, slots, events and connections. A routine's class is
    described, not compared: a class changed or moved to another module (a
    script's classes live in ``__main__``) with the same slots and events is
    the same shape, as a changed handler is.

    Attributes:
        fingerprint: ``"sha256:"`` and the hex digest of the routine ids,
            slots, events and connections.
        routines: One :class:`RoutineShape` per routine, by id.
        connections: ``(source, event, target, slot)`` tuples, sorted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: str
    routines: tuple[RoutineShape, ...] = ()
    connections: tuple[Link, ...] = ()

    @classmethod
    def of(
        cls, routines: Mapping[str, Any], connections: Iterable[Any]
    ) -> FlowTopology:
        """The topology of a flow's routines (id -> Routine) and connections."""
        shapes = tuple(
            RoutineShape(
                id=routine_id,
                class_key=spec.class_key,
                slots=tuple(sorted(spec.slots)),
                events=tuple(sorted(spec.events)),
            )
            for routine_id, spec in sorted(
                (rid, routine.get_spec()) for rid, routine in routines.items()
            )
        )
        links = tuple(
            sorted(
                (
                    c.source_routine_id or "",
                    c.source_event.name if c.source_event else "",
                    c.target_routine_id or "",
                    c.target_slot.name if c.target_slot else "",
                )
                for c in connections
            )
        )
        body = {
            "routines": [_identity(shape) for shape in shapes],
            "connections": links,
        }
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        return cls(
            fingerprint=f"sha256:{digest.hexdigest()}",
            routines=shapes,
            connections=links,
        )

    def changes_to(self, other: FlowTopology) -> TopologyChanges:
        """What ``other`` has that this one lacks (added), and the reverse."""
        mine, theirs = _parts(self), _parts(other)

        def added(key: str) -> Any:
            return tuple(sorted(theirs[key] - mine[key]))

        def removed(key: str) -> Any:
            return tuple(sorted(mine[key] - theirs[key]))

        def keyed(topology: FlowTopology, ids: Any) -> Any:
            keys = {r.id: r.class_key for r in topology.routines}
            return tuple((routine_id, keys[routine_id]) for (routine_id,) in ids)

        return TopologyChanges(
            routines_added=keyed(other, added("routines")),
            routines_removed=keyed(self, removed("routines")),
            slots_added=added("slots"),
            slots_removed=removed("slots"),
            events_added=added("events"),
            events_removed=removed("events"),
            connections_added=added("connections"),
            connections_removed=removed("connections"),
        )


def _identity(shape: RoutineShape) -> dict[str, Any]:
    """What the fingerprint covers of a routine: not its class (see the module)."""
    return {"id": shape.id, "slots": shape.slots, "events": shape.events}


def _parts(topology: FlowTopology) -> dict[str, set[tuple[str, ...]]]:
    return {
        "routines": {(r.id,) for r in topology.routines},
        "slots": {(r.id, slot) for r in topology.routines for slot in r.slots},
        "events": {(r.id, event) for r in topology.routines for event in r.events},
        "connections": set(topology.connections),
    }


@dataclass(frozen=True)
class TopologyChanges:
    """How a flow differs from the one a job was stored with.

    Each field is sorted, and is the exact set difference between the two
    flows: a removed routine's slots, events and connections are listed as
    removed too. Routines are compared by id; each is listed with the class it
    has in the flow it belongs to.

    Attributes:
        routines_added: ``(routine_id, class_key)`` in the flow, not in the job's.
        routines_removed: ``(routine_id, class_key)`` in the job's flow only.
        slots_added: ``(routine_id, slot)``.
        slots_removed: ``(routine_id, slot)``.
        events_added: ``(routine_id, event)``.
        events_removed: ``(routine_id, event)``.
        connections_added: ``(source, event, target, slot)``.
        connections_removed: ``(source, event, target, slot)``.
    """

    routines_added: tuple[tuple[str, str], ...] = ()
    routines_removed: tuple[tuple[str, str], ...] = ()
    slots_added: tuple[tuple[str, str], ...] = ()
    slots_removed: tuple[tuple[str, str], ...] = ()
    events_added: tuple[tuple[str, str], ...] = ()
    events_removed: tuple[tuple[str, str], ...] = ()
    connections_added: tuple[Link, ...] = ()
    connections_removed: tuple[Link, ...] = ()

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in self.__dataclass_fields__)

    def to_dict(self) -> dict[str, list[list[str]]]:
        """The changes as JSON-ready lists (what ``job.errors`` records)."""
        return {
            name: [list(item) for item in getattr(self, name)]
            for name in self.__dataclass_fields__
            if getattr(self, name)
        }

    def __str__(self) -> str:
        parts = []
        for name in self.__dataclass_fields__:
            items = getattr(self, name)
            if items:
                kind, change = name.split("_")
                shown = ", ".join(_show(kind, item) for item in items)
                parts.append(f"{kind} {change}: {shown}")
        return "; ".join(parts) or "no changes"


def _show(kind: str, item: tuple[str, ...]) -> str:
    if kind == "routines":
        return f"{item[0]} ({item[1]})"
    if kind == "connections":
        return f"{item[0]}.{item[1]} -> {item[2]}.{item[3]}"
    return f"{item[0]}.{item[1]}"


class TopologyCache:
    """A flow's current topology, made again only when the flow changed.

    The key is the wiring's version (routines and connections) and every
    routine's spec object (a routine builds a new one when a slot or event is
    declared). Specs are compared one by one only when some routine dropped
    its spec since the last look (:mod:`routilux._spec_drops`), so a job start
    costs two comparisons, not a description nor a pass over the routines.
    """

    def __init__(self) -> None:
        # One tuple (version, spec getters, specs, topology, spec drops seen):
        # threads starting jobs read it without a lock, and must never pair one
        # change's key with another's topology.
        self._entry: tuple[int, list[Any], list[Any], FlowTopology, int] | None = None

    def current(self, version: int, wiring: Any) -> FlowTopology:
        """The topology of the flow now.

        Args:
            version: The wiring's version.
            wiring: The flow's wiring: its ``routines`` (routine id -> Routine)
                and ``connections`` are read only when the topology must be
                made again (a job start that finds it made reads nothing).
        """
        entry = self._entry
        drops = _spec_drops.drops  # read first: a later drop moves it again
        if entry is not None and entry[0] == version:
            if entry[4] == drops:
                return entry[3]  # no routine anywhere dropped its spec since
            # The same routines: a routine whose slots or events changed has
            # a new spec. The getters are bound once.
            for get_spec, kept in zip(entry[1], entry[2], strict=True):
                if get_spec() is not kept:
                    break
            else:
                self._entry = (*entry[:4], drops)
                return entry[3]
        routines = wiring.routines
        getters = [routine.get_spec for routine in routines.values()]
        specs = [get_spec() for get_spec in getters]
        topology = FlowTopology.of(routines, wiring.connections)
        self._entry = (version, getters, specs, topology, drops)
        return topology


def reconcile(
    job_state: JobState,
    current: FlowTopology,
    items: list[dict[str, Any]],
    delivers: Callable[[str, str], bool],
    allow_changes: bool,
    flow_id: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], ErrorRecord | None]:
    """Check a job from a document against the flow that resumes it.

    Changes nothing: the runtime's ledger records what this returns.

    Args:
        job_state: The job, as its document had it.
        current: The resuming flow's topology.
        items: The activations the job holds (``routine_id``, ``slot``,
            ``payload`` and, from a store, ``id``).
        delivers: ``(routine_id, slot) -> bool``: whether the flow can deliver
            there now.
        allow_changes: Resume a changed flow, dropping what has no target.
        flow_id: The flow, for messages.

    Returns:
        The activations to run, those dropped (only with ``allow_changes``), and
        the error record of the changes and the drops (None when there were
        none), for ``job.errors``.

    Raises:
        TopologyChangedError: When the topologies differ and not
            ``allow_changes``; nothing is changed then.
    """
    saved = job_state.topology
    changes = TopologyChanges()
    if saved is not None and saved.fingerprint != current.fingerprint:
        changes = saved.changes_to(current)
    if changes and not allow_changes:
        raise TopologyChangedError(
            f"job {job_state.job_id!r} was stored by a different shape of flow "
            f"{flow_id!r}: {changes}. Resume it with allow_changes=True to run "
            "what still exists and drop the rest",
            job_id=job_state.job_id,
            changes=changes,
        )
    if not allow_changes:
        return items, [], None
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for item in items:
        target = (str(item.get("routine_id")), str(item.get("slot")))
        (kept if delivers(*target) else dropped).append(item)
    record = _record(changes, dropped) if changes or dropped else None
    return kept, dropped, record


def _record(changes: TopologyChanges, dropped: list[dict[str, Any]]) -> ErrorRecord:
    targets = ", ".join(
        f"{item.get('routine_id')}.{item.get('slot')}" for item in dropped
    )
    message = f"resumed with allow_changes=True on a changed flow: {changes}"
    if dropped:
        message += f"; dropped {len(dropped)} held activation(s) for {targets}"
    return ErrorRecord.model_validate(
        {
            "error_type": TopologyChangedError.__name__,
            "message": message,
            "time": time.time(),
            "changes": changes.to_dict(),
            "dropped": [
                {
                    key: item.get(key)
                    for key in ("id", "routine_id", "slot", "payload")
                    if key in item
                }
                for item in dropped
            ],
        }
    )
