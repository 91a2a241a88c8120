"""Event: a named output of a routine, carrying documented parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .flow import Flow
    from .routine import Routine
    from .slot import Slot

__all__ = ["Event"]


class Event:
    """A named output of a routine.

    Args:
        name: The event's name, unique within its routine.
        routine: The routine that emits it.
        output_params: The parameter names the event documents. Emitting other keys
            is allowed; :meth:`Flow.validate` uses these to check param mappings.

    Attributes:
        name: The event's name.
        routine: The owning routine, or None.
        output_params: The documented parameter names.
        connected_slots: Slots linked to this event by :class:`Connection` objects,
            in the order they were linked. :meth:`connect` and :meth:`disconnect`
            keep it (and each slot's ``connected_events``) in step with an index,
            so linking is O(1); change links through them, not by editing the list.
    """

    def __init__(
        self,
        name: str = "",
        routine: Routine | None = None,
        output_params: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        self.name = name
        self.routine = routine
        self.output_params: list[str] = list(output_params or [])
        self.connected_slots: list[Slot] = []
        # id(slot) -> (slot, its param mapping), for every linked slot: the index
        # that makes connect O(1). Holding the slot keeps its id from being reused.
        self._links: dict[int, tuple[Slot, dict[str, str] | None]] = {}

    def connect(self, slot: Slot, param_mapping: dict[str, str] | None = None) -> None:
        """Link this event to ``slot`` on both sides (idempotent).

        Connecting an already linked slot again only replaces the param mapping.
        """
        key = id(slot)
        if key not in self._links:
            # Both lists change together, so one index answers for both sides.
            self.connected_slots.append(slot)
            slot.connected_events.append(self)
        self._links[key] = (slot, dict(param_mapping) if param_mapping else None)

    def disconnect(self, slot: Slot) -> None:
        """Unlink ``slot`` from this event on both sides (idempotent)."""
        if self._links.pop(id(slot), None) is None:
            return
        self.connected_slots = [s for s in self.connected_slots if s is not slot]
        slot.connected_events = [e for e in slot.connected_events if e is not self]

    def mapping_for(self, slot: Slot) -> dict[str, str] | None:
        """The param mapping of the link to ``slot``, if any."""
        link = self._links.get(id(slot))
        return link[1] if link is not None else None

    def emit(self, flow: Flow | None = None, **data: Any) -> None:
        """Emit through the owning routine (see :meth:`Routine.emit`).

        Without a routine, connected slots receive the data directly.
        """
        if self.routine is not None:
            self.routine.emit(self.name, flow, **data)
            return
        for slot in list(self.connected_slots):
            slot.receive(data)

    def serialize(self) -> dict[str, Any]:
        """Describe the event: name and documented parameters."""
        return {"name": self.name, "output_params": list(self.output_params)}

    def deserialize(self, data: dict[str, Any]) -> None:
        """Restore name and parameters from :meth:`serialize` output."""
        self.name = str(data.get("name", self.name))
        self.output_params = [str(p) for p in data.get("output_params", [])]

    def __repr__(self) -> str:
        owner = type(self.routine).__name__ if self.routine is not None else None
        return f"Event({self.name!r}, routine={owner}, params={self.output_params})"
