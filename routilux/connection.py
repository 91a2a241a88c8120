"""Connection: an event of one routine wired to a slot of another."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .event import Event
    from .slot import Slot

__all__ = ["Connection", "apply_mapping"]

# Shared by every connection without a mapping: a flow may hold tens of thousands.
_NO_TARGETS: frozenset[str] = frozenset()


def apply_mapping(
    data: dict[str, Any], mapping: dict[str, str], targets: frozenset[str]
) -> dict[str, Any]:
    """Rename parameters: mapped keys move, other keys pass unless they are targets.

    Each ``source -> target`` whose source key is present sets ``out[target]``; every
    other input key that is not named as a target is copied through unchanged.
    """
    out = {target: data[source] for source, target in mapping.items() if source in data}
    out.update(
        (key, value)
        for key, value in data.items()
        if key not in mapping and key not in targets
    )
    return out


class Connection:
    """A link from ``source_event`` to ``target_slot``, optionally renaming parameters.

    Creating a connection with both ends links them by hand (0.9's way, for use
    without a flow: ``event.connected_slots`` and ``slot.connected_events``);
    ``Flow.connect`` makes its connections with ``link=False``, since a flow's
    graph is the only store of its connections.

    Args:
        source_event: The emitting event.
        target_slot: The receiving slot.
        param_mapping: ``{source_param: target_param}``.
        link: Link the two ends by hand (see above).

    Attributes:
        source_event: The emitting event.
        target_slot: The receiving slot.
        param_mapping: The renaming, a dict (empty when none).
        source_routine_id: The source routine's id (set by ``Flow.connect``).
        target_routine_id: The target routine's id (set by ``Flow.connect``).
        lane_key: The payload key whose value is the session lane of what goes
            through (set by ``Flow.connect``; None: the job's session).
    """

    def __init__(
        self,
        source_event: Event | None = None,
        target_slot: Slot | None = None,
        param_mapping: dict[str, str] | None = None,
        *,
        link: bool = True,
    ) -> None:
        self.source_event = source_event
        self.target_slot = target_slot
        mapping = self.param_mapping = dict(param_mapping or {})
        self._targets = frozenset(mapping.values()) if mapping else _NO_TARGETS
        self.source_routine_id: str | None = None
        self.target_routine_id: str | None = None
        self.lane_key: str | None = None
        if link and source_event is not None and target_slot is not None:
            source_event.connect(target_slot, self.param_mapping or None)

    def map(self, data: dict[str, Any]) -> dict[str, Any]:
        """Apply the param mapping to ``data`` (a new dict; ``data`` is untouched)."""
        if not self.param_mapping:
            return dict(data)
        return apply_mapping(data, self.param_mapping, self._targets)

    def activate(self, data: dict[str, Any]) -> None:
        """Deliver ``data``, mapped, straight to the target slot in this thread."""
        if self.target_slot is not None:
            self.target_slot.receive(self.map(data))

    def disconnect(self) -> None:
        """Unlink both ends (idempotent)."""
        if self.source_event is not None and self.target_slot is not None:
            self.source_event.disconnect(self.target_slot)

    def serialize(self) -> dict[str, Any]:
        """Describe the connection by routine ids, event, slot and mapping.

        With ``lane_key`` when it has one.
        """
        described: dict[str, Any] = {
            "source_routine_id": self.source_routine_id,
            "source_event": self.source_event.name if self.source_event else None,
            "target_routine_id": self.target_routine_id,
            "target_slot": self.target_slot.name if self.target_slot else None,
            "param_mapping": dict(self.param_mapping),
        }
        if self.lane_key is not None:
            described["lane_key"] = self.lane_key
        return described

    def __repr__(self) -> str:
        event = self.source_event.name if self.source_event else None
        slot = self.target_slot.name if self.target_slot else None
        source, target = self.source_routine_id, self.target_routine_id
        return f"Connection({source}.{event} -> {target}.{slot})"
