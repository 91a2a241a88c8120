"""Issue 8: connections live in the flow's graph only; connecting is linear.

``Flow.connect`` adds one graph edge and touches neither the event nor the slot
(``connected_slots`` and ``connected_events`` are read from the flows holding the
routine), so connecting one event to 16,000 slots does O(1) work per connect;
the time is measured by ``make bench``. A routine may be in several flows.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux import ConfigurationError, Event, Flow, Routine, Slot

pytestmark = pytest.mark.timeout(120)

N = 16_000


class Node(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_slot("input", handler=self.go)
        self.define_event("output", ["value"])

    def go(self, **_: Any) -> None:
        pass


def test_issue_8_connect_one_event_to_16000_slots() -> None:
    flow = Flow(flow_id="fan")
    source = Node()
    flow.add_routine(source, "src")
    targets = [Node() for _ in range(N)]
    for i, target in enumerate(targets):
        flow.add_routine(target, f"t{i}")
    event = source.get_event("output")
    assert event is not None
    for i in range(N):
        flow.connect("src", "output", f"t{i}", "input")
    assert event._links == {}  # nothing linked by hand: the graph holds it all
    assert flow.graph.number_of_edges() == N
    slots = [t.get_slot("input") for t in targets]
    assert event.connected_slots == slots  # in connection order
    assert all(s is not None and s.connected_events == [event] for s in slots)
    connections = flow.connections
    assert [c.target_routine_id for c in connections] == [f"t{i}" for i in range(N)]


def test_issue_8_link_16000_events_into_one_slot_by_hand() -> None:
    slot = Slot("input")
    events = [Event(f"e{i}") for i in range(N)]
    for event in events:
        event.connect(slot)
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


class Recorder(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None) -> None:
        self.seen.append(value)


def test_issue_8_a_routine_in_two_flows_is_wired_separately() -> None:
    source = Node()
    first, second = Recorder(), Recorder()
    one, two = Flow(flow_id="one"), Flow(flow_id="two")
    for flow, sink in ((one, first), (two, second)):
        flow.add_routine(source, "src")
        flow.add_routine(sink, "sink")
        flow.connect("src", "output", "sink", "input")
    event = source.get_event("output")
    assert event is not None
    assert event.connected_slots == [first.get_slot("input"), second.get_slot("input")]
    with pytest.raises(ConfigurationError, match=r"2 flows \['one', 'two'\]"):
        source.emit("output", value=1)
    assert first.seen == [] and second.seen == []
    source.emit("output", flow=two, value=2)
    assert first.seen == [] and second.seen == [2]
    one.remove_routine("src")
    source.emit("output", value=3)  # now in one flow: it goes there
    assert first.seen == [] and second.seen == [2, 3]


def test_issue_8_emit_outside_any_flow_uses_links_made_by_hand() -> None:
    source, sink = Node(), Recorder()
    event, slot = source.get_event("output"), sink.get_slot("input")
    assert event is not None and slot is not None
    event.connect(slot, {"value": "value"})
    source.emit("output", value=5)
    assert sink.seen == [5]


def test_connections_are_the_objects_connect_returned_across_changes() -> None:
    flow = Flow(flow_id="same")
    for rid in ("a", "b", "c"):
        flow.add_routine(Node(), rid)
    first = flow.connect("a", "output", "b", "input", {"value": "x"})
    listed = flow.connections
    assert listed == [first] and listed[0] is first
    listed.clear()  # a new list each time: the caller's to change
    second = flow.connect("b", "output", "c", "input")
    flow.connect("a", "output", "c", "input")
    flow.disconnect("a", "output", "c", "input")
    assert flow.connections == [first, second]
    assert first.param_mapping == {"value": "x"} and second.param_mapping == {}
    assert "connections=2" in repr(flow)
    flow.remove_routine("c")
    assert flow.connections == [first]
