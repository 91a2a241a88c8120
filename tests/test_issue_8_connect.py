"""Issue 8: connecting one event to 16,000 slots is linear.

``Event.connect`` used to scan ``connected_slots`` (and the slot's
``connected_events``) on every call. The lists stay as they were, in link order,
but membership now comes from an index: the tests check that no connect walks
either list, and that the lists and ``flow.connections`` keep their order.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux import Event, Flow, Routine, Slot

pytestmark = pytest.mark.timeout(120)

N = 16_000


class WalkCountingList(list[Any]):
    """A list that counts how often it is walked (iterated or searched)."""

    walks = 0

    def __iter__(self) -> Any:
        type(self).walks += 1
        return super().__iter__()

    def __contains__(self, item: object) -> bool:
        type(self).walks += 1
        return super().__contains__(item)


class Node(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_slot("input", handler=self.go)
        self.define_event("output", ["value"])

    def go(self, **_: Any) -> None:
        pass


def test_issue_8_connect_one_event_to_16000_slots_never_walks_the_lists() -> None:
    flow = Flow(flow_id="fan")
    source = Node()
    flow.add_routine(source, "src")
    targets = [Node() for _ in range(N)]
    for i, target in enumerate(targets):
        flow.add_routine(target, f"t{i}")
    event = source.get_event("output")
    assert event is not None
    event.connected_slots = WalkCountingList()
    WalkCountingList.walks = 0
    for i in range(N):
        flow.connect("src", "output", f"t{i}", "input")
    assert WalkCountingList.walks == 0  # O(1) per connect: no scan of the links
    slots = [t.get_slot("input") for t in targets]
    assert event.connected_slots == slots  # in connection order
    assert all(s is not None and s.connected_events == [event] for s in slots)
    connections = flow.connections
    assert [c.target_routine_id for c in connections] == [f"t{i}" for i in range(N)]


def test_issue_8_connect_16000_events_into_one_slot_never_walks_the_lists() -> None:
    slot = Slot("input")
    slot.connected_events = WalkCountingList()
    events = [Event(f"e{i}") for i in range(N)]
    WalkCountingList.walks = 0
    for event in events:
        event.connect(slot)
    assert WalkCountingList.walks == 0
    assert slot.connected_events == events
    assert all(e.connected_slots == [slot] for e in events)


def test_connect_again_is_idempotent_and_replaces_the_mapping() -> None:
    event, slot = Event("out"), Slot("in")
    event.connect(slot, {"a": "b"})
    slot.connect(event, {"a": "c"})
    assert event.connected_slots == [slot] and slot.connected_events == [event]
    assert event.mapping_for(slot) == {"a": "c"}
    event.disconnect(slot)
    event.disconnect(slot)  # idempotent
    assert event.connected_slots == [] and slot.connected_events == []
    assert event.mapping_for(slot) is None
    event.connect(slot)
    assert event.connected_slots == [slot] and slot.connected_events == [event]
    assert event.mapping_for(slot) is None


def test_disconnect_and_remove_routine_keep_lists_and_order() -> None:
    flow = Flow(flow_id="hub")
    hub, a, b, c = Node(), Node(), Node(), Node()
    for rid, routine in (("hub", hub), ("a", a), ("b", b), ("c", c)):
        flow.add_routine(routine, rid)
    flow.connect("a", "output", "hub", "input")
    flow.connect("hub", "output", "b", "input")
    flow.connect("a", "output", "c", "input")
    flow.connect("hub", "output", "hub", "input")  # a self-loop
    flow.connect("b", "output", "c", "input")
    flow.connect("c", "output", "hub", "trigger")
    flow.disconnect("a", "output", "c", "input")
    order = [(c.source_routine_id, c.target_routine_id) for c in flow.connections]
    assert order == [
        ("a", "hub"),
        ("hub", "b"),
        ("hub", "hub"),
        ("b", "c"),
        ("c", "hub"),
    ]
    flow.remove_routine("hub")
    order = [(c.source_routine_id, c.target_routine_id) for c in flow.connections]
    assert order == [("b", "c")]
    a_out, b_out = a.get_event("output"), b.get_event("output")
    c_in = c.get_slot("input")
    assert a_out is not None and b_out is not None and c_in is not None
    assert a_out.connected_slots == []
    assert b_out.connected_slots == [c_in] and c_in.connected_events == [b_out]
    hub_in, hub_out = hub.get_slot("input"), hub.get_event("output")
    assert hub_in is not None and hub_out is not None
    assert hub_in.connected_events == [] and hub_out.connected_slots == []
    flow.add_routine(hub, "hub")  # back in, and wired again from scratch
    flow.connect("hub", "output", "hub", "input")
    assert hub_out.connected_slots == [hub_in] and hub_in.connected_events == [hub_out]
