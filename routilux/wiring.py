"""The wiring of a flow: routines by id and connections, in a networkx graph.

Every change is checked in full before anything is touched, so a failed call leaves
the wiring as it was.
"""

from __future__ import annotations

import itertools
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import networkx as nx

from . import membership
from .connection import Connection
from .exceptions import (
    ConfigurationError,
    DuplicateNameError,
    EntryPointError,
    UnknownEventError,
    UnknownRoutineError,
    UnknownSlotError,
)
from .routine import Routine, spec_of
from .runtime import sessions as lanes

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["Wiring"]


class _Named(Protocol):
    flow_id: str


class Wiring:
    """Routines by id and the connections between them.

    Args:
        owner: The flow, named in error messages.

    Not thread-safe: build the wiring, then run it.
    """

    def __init__(self, owner: _Named) -> None:
        self._owner = owner
        self._routines: dict[str, Routine] = {}
        self._ids: dict[int, str] = {}  # id(routine) -> routine id: one object, one id
        # The graph is the only store of connections: each edge holds its
        # Connection, its param mapping and the order it was made in.
        self._graph = nx.MultiDiGraph()
        self._order = itertools.count()
        #: Bumped by every change; runtimes compile their routes per version.
        self.version = 0

    @property
    def routines(self) -> Mapping[str, Routine]:
        """Routine id -> routine (read-only view)."""
        return MappingProxyType(self._routines)

    @property
    def connections(self) -> list[Connection]:
        """The connections, in the order they were made (a new list)."""
        edges = self._graph.edges(data=True)
        ordered = sorted(edges, key=lambda edge: edge[2]["order"])
        return [data["connection"] for *_, data in ordered]

    @property
    def owner(self) -> Any:
        """The flow this wiring belongs to."""
        return self._owner

    def targets_of(self, routine_id: str, event_name: str) -> list[Any]:
        """The slots ``routine_id``'s event ``event_name`` is connected to, in order."""
        edges = self._graph.out_edges(routine_id, keys=True, data=True)
        chosen = _in_order(data for *_, key, data in edges if key[0] == event_name)
        return [connection.target_slot for connection in chosen]

    def sources_of(self, routine_id: str, slot_name: str) -> list[Any]:
        """The events connected to ``routine_id``'s slot ``slot_name``, in order."""
        edges = self._graph.in_edges(routine_id, keys=True, data=True)
        chosen = _in_order(data for *_, key, data in edges if key[1] == slot_name)
        return [connection.source_event for connection in chosen]

    def id_of(self, routine: Routine) -> str | None:
        """The id of ``routine`` in this wiring, or None."""
        return self._ids.get(id(routine))

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The graph itself (the flow hands out read-only views)."""
        return self._graph

    def add_routine(self, routine: Routine, routine_id: str | None = None) -> str:
        """Add ``routine`` under ``routine_id`` (its default id when None).

        Returns:
            The id used.

        Raises:
            ConfigurationError: When ``routine`` is not a Routine.
            DuplicateNameError: When the id is taken or the object is already here.
        """
        if not isinstance(routine, Routine):
            raise ConfigurationError(
                f"add_routine expects a Routine, got {type(routine).__name__}"
            )
        spec = spec_of(routine)
        if spec is None:
            raise ConfigurationError(
                f"{type(routine).__name__}.__init__ must call super().__init__() "
                "before use"
            )
        rid = routine_id if routine_id is not None else spec.default_id
        if not isinstance(rid, str) or not rid:
            raise ConfigurationError(
                f"routine id must be a non-empty string, got {rid!r}"
            )
        if rid in self._routines:
            raise DuplicateNameError(
                f"flow {self._owner.flow_id!r} already has a routine with id {rid!r}"
            )
        other_id = self._ids.get(id(routine))
        if other_id is not None:
            raise DuplicateNameError(
                f"this {type(routine).__name__} is already in flow "
                f"{self._owner.flow_id!r} as {other_id!r}"
            )
        # A subclass may set ``self.max_concurrency`` like the class attribute.
        routine.set_max_concurrency(routine.get_max_concurrency())
        self._routines[rid] = routine
        self._ids[id(routine)] = rid
        self._graph.add_node(rid, routine=routine)
        membership.join(routine, self)
        self.version += 1
        return rid

    def remove_routine(self, routine_id: str) -> Routine:
        """Remove a routine and every connection to or from it.

        Raises:
            UnknownRoutineError: When no routine has that id.
        """
        routine = self.routine(routine_id)
        graph = self._graph
        touching = {  # its edges only, not every connection of the flow
            id(c): c
            for edges in (graph.in_edges, graph.out_edges)
            for *_, c in edges(routine_id, data="connection")
        }
        for connection in touching.values():
            self._drop_connection(connection)
        del self._routines[routine_id]
        del self._ids[id(routine)]
        self._graph.remove_node(routine_id)
        membership.leave(routine, self)
        self.version += 1
        return routine

    def connect(
        self,
        source_routine_id: str,
        source_event: str,
        target_routine_id: str,
        target_slot: str,
        param_mapping: dict[str, str] | None = None,
        *,
        lane_key: str | None = None,
    ) -> Connection:
        """Wire an event of one routine to a slot of another (or the same).

        Raises:
            UnknownRoutineError, UnknownEventError, UnknownSlotError: Naming what is
                missing.
            DuplicateNameError: When exactly this connection exists.
            ConfigurationError: When ``param_mapping`` is not a str -> str dict,
                or ``lane_key`` is not None or a non-empty str into an ``each``
                slot.
        """
        routines = self._routines  # the usual case in two lookups each
        source = routines.get(source_routine_id)
        event = source.get_event(source_event) if source is not None else None
        if event is None:
            event = self.event(source_routine_id, source_event)  # raises, naming it
        target = routines.get(target_routine_id)
        slot = target.get_slot(target_slot) if target is not None else None
        if slot is None:
            slot = self.slot(target_routine_id, target_slot)  # raises, naming it
        mapping = (
            None
            if param_mapping is None
            else _check_mapping(param_mapping, source_routine_id, source_event)
        )
        lanes.check_connection(lane_key, slot, f"{target_routine_id}.{target_slot}")
        key = (source_event, target_slot)
        if self._graph.has_edge(source_routine_id, target_routine_id, key=key):
            raise DuplicateNameError(
                f"flow {self._owner.flow_id!r} already connects "
                f"{source_routine_id}.{source_event}"
                f" -> {target_routine_id}.{target_slot}"
            )
        connection = Connection(event, slot, mapping, link=False)
        connection.source_routine_id = source_routine_id
        connection.target_routine_id = target_routine_id
        connection.lane_key = lane_key
        self._graph.add_edge(
            source_routine_id,
            target_routine_id,
            key=key,
            connection=connection,
            param_mapping=mapping,
            lane_key=lane_key,
            order=next(self._order),
        )
        self.version += 1
        return connection

    def disconnect(
        self,
        source_routine_id: str,
        source_event: str,
        target_routine_id: str,
        target_slot: str,
    ) -> None:
        """Remove one connection.

        Raises:
            ConfigurationError: When no such connection exists.
        """
        key = (source_event, target_slot)
        if not self._graph.has_edge(source_routine_id, target_routine_id, key=key):
            raise ConfigurationError(
                f"flow {self._owner.flow_id!r} has no connection "
                f"{source_routine_id}.{source_event}"
                f" -> {target_routine_id}.{target_slot}"
            )
        connection = self._graph.edges[source_routine_id, target_routine_id, key][
            "connection"
        ]
        self._drop_connection(connection)

    def _drop_connection(self, connection: Connection) -> None:
        key = (connection.source_event.name, connection.target_slot.name)  # type: ignore[union-attr]
        self._graph.remove_edge(
            connection.source_routine_id, connection.target_routine_id, key=key
        )
        self.version += 1

    def routine(self, routine_id: str) -> Routine:
        """The routine ``routine_id``; raises UnknownRoutineError naming it."""
        routine = self._routines.get(routine_id)
        if routine is None:
            raise UnknownRoutineError(
                f"flow {self._owner.flow_id!r} has no routine {routine_id!r}; it has "
                f"{sorted(self._routines)}"
            )
        return routine

    def entry(self, routine_id: str) -> Routine:
        """The routine, if it can start a job (a ``trigger`` slot, or 0.9's call).

        Raises:
            UnknownRoutineError: For an unknown id.
            EntryPointError: When the routine has no ``trigger`` slot and no
                ``__call__``.
        """
        routine = self.routine(routine_id)
        if routine.entry_slot() is None:
            raise EntryPointError(
                f"routine {routine_id!r} cannot start a job: it has no 'trigger' slot "
                f"(slots: {sorted(routine.get_spec().slots)}) and no __call__"
            )
        return routine

    def event(self, routine_id: str, event_name: str) -> Any:
        """The event of a routine; raises UnknownEventError naming both."""
        routine = self.routine(routine_id)
        event = routine.get_event(event_name)
        if event is None:
            _undeclared(routine_id, routine.get_spec().events, "event", event_name)
        return event

    def slot(self, routine_id: str, slot_name: str) -> Any:
        """The slot of a routine; raises UnknownSlotError naming both."""
        routine = self.routine(routine_id)
        slot = routine.get_slot(slot_name)
        if slot is None:
            _undeclared(routine_id, routine.get_spec().slots, "slot", slot_name)
        return slot


def _by_order(data: dict[str, Any]) -> int:
    order: int = data["order"]
    return order


def _in_order(edges: Iterable[dict[str, Any]]) -> list[Connection]:
    """The connections of ``edges`` (edge data), in the order they were made."""
    return [data["connection"] for data in sorted(edges, key=_by_order)]


def _undeclared(
    routine_id: str, declared: Mapping[str, Any], kind: str, name: str
) -> NoReturn:
    error = UnknownEventError if kind == "event" else UnknownSlotError
    raise error(
        f"routine {routine_id!r} has no {kind} {name!r}; it declares {sorted(declared)}"
    )


def _check_mapping(
    mapping: object, routine_id: str, event_name: str
) -> dict[str, str] | None:
    if mapping is None:
        return None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise ConfigurationError(
            f"param_mapping of {routine_id}.{event_name} must map str to str, got "
            f"{mapping!r}"
        )
    return dict(mapping) or None
