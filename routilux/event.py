"""Event: a named output of a routine, carrying documented parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import membership
from ._compat import deliver_directly

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
        # id(slot) -> (slot, its param mapping) for slots linked by hand (0.9's
        # flow-less links), in link order. Holding the slot keeps its id unique.
        self._links: dict[int, tuple[Slot, dict[str, str] | None]] = {}

    @property
    def connected_slots(self) -> list[Slot]:
        """The slots this event reaches, in order (a new list).

        Slots linked by hand (:meth:`connect`) come first, then the slots each
        flow holding the routine connects the event to. A flow keeps its
        connections in its graph only; this list is read from there.
        """
        return membership.gather(
            self.routine,
            [slot for slot, _ in self._links.values()],
            lambda wiring, routine_id: wiring.targets_of(routine_id, self.name),
        )

    def connect(self, slot: Slot, param_mapping: dict[str, str] | None = None) -> None:
        """Link this event to ``slot`` on both sides (idempotent).

        Connecting an already linked slot again only replaces the param mapping.
        """
        self._links[id(slot)] = (slot, dict(param_mapping) if param_mapping else None)
        slot._linked[id(self)] = self

    def disconnect(self, slot: Slot) -> None:
        """Unlink ``slot`` from this event on both sides (idempotent)."""
        self._links.pop(id(slot), None)
        slot._linked.pop(id(self), None)

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
        deliver_directly(self._links.values(), data)

    def deliver_by_hand(self, data: dict[str, Any]) -> None:
        """Deliver ``data`` to the slots linked by hand, in this thread (0.9)."""
        deliver_directly(self._links.values(), data)

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
