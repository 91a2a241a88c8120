"""Issue 8: ``validate()`` reports handler-binding mistakes and is linear.

A misspelled single parameter silently received the whole payload dict, and a
single parameter's default was replaced by the payload (``count={}``); validate()
said nothing. It now names the routine, slot and parameter of each.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux import Flow, HandlerBinding, Routine, Slot
from routilux.slot import describe_handler


class Source(Routine):
    def __init__(self, params: list[str] | None = None) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"] if params is None else params)

    def fire(self, **_: Any) -> None:
        self.emit("output", value=1)


class Typo(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.go)

    def go(self, valeu: Any) -> None:
        pass


class Pair(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.pair)

    def pair(self, value: Any, weight: Any, label: str = "") -> None:
        pass


class Counter(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)

    def start(self, count: int = 3) -> None:
        pass


class Fine(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_slot("one", handler=self.one)
        self.define_slot("data", handler=self.whole)
        self.define_slot("kw", handler=self.kw)
        self.define_event("output", ["value"])

    def fire(self, **_: Any) -> None:
        self.emit("output", value=0)

    def one(self, value: Any) -> None:
        pass

    def whole(self, data: Any) -> None:
        pass

    def kw(self, value: Any, count: int = 3, **rest: Any) -> None:
        pass


def binding_findings(flow: Flow) -> set[tuple[str, str | None, str | None, str | None]]:
    codes = {"unmatched-parameter", "missing-parameter", "overridden-default"}
    return {
        (f.code, f.routine_id, f.slot, f.parameter)
        for f in flow.validate()
        if f.code in codes
    }


def test_issue_8_validate_misspelled_single_parameter() -> None:
    flow = Flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(Typo(), "typo")
    flow.connect("src", "output", "typo", "input")
    findings = [f for f in flow.validate() if f.code == "unmatched-parameter"]
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.routine_id, finding.slot, finding.parameter) == (
        "typo",
        "input",
        "valeu",
    )
    assert finding.severity == "warning"
    assert "typo.input" in finding.message and "'valeu'" in finding.message
    assert "Typo.go" in finding.message and "whole payload" in finding.message


def test_issue_8_validate_mapping_is_applied_before_matching() -> None:
    flow = Flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(Typo(), "typo")
    flow.connect("src", "output", "typo", "input", {"value": "valeu"})
    assert binding_findings(flow) == set()


def test_issue_8_validate_required_parameter_no_event_carries() -> None:
    flow = Flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(Source(["weight"]), "weights")
    flow.add_routine(Pair(), "pair")
    flow.connect("src", "output", "pair", "input")
    assert binding_findings(flow) == {("missing-parameter", "pair", "input", "weight")}
    # A second event that carries it: the union of what arrives is enough.
    flow.connect("weights", "output", "pair", "input")
    assert binding_findings(flow) == set()


def test_issue_8_validate_default_the_payload_overrides() -> None:
    flow = Flow()
    flow.add_routine(Counter(), "counter")
    assert binding_findings(flow) == {
        ("overridden-default", "counter", "trigger", "count")
    }
    (finding,) = [f for f in flow.validate() if f.code == "overridden-default"]
    assert finding.severity == "warning"
    assert "counter.trigger" in finding.message and "'count'" in finding.message


def test_issue_8_validate_what_happens_matches_the_finding() -> None:
    seen: list[Any] = []
    slot = Slot("trigger", handler=lambda count=3: seen.append(count))
    slot.call_handler({}, propagate_exceptions=True)
    assert seen == [{}]  # the default was replaced: what validate() warns about
    assert slot.binding == HandlerBinding("single", ("count",), (), ("count",))


def test_undocumented_events_and_trigger_slots_are_not_name_checked() -> None:
    flow = Flow()
    flow.add_routine(Source([]), "quiet")  # documents nothing: may carry anything
    flow.add_routine(Typo(), "typo")
    flow.add_routine(Pair(), "pair")
    flow.connect("quiet", "output", "typo", "input")
    flow.connect("quiet", "output", "pair", "input")
    assert binding_findings(flow) == set()


def test_well_bound_handlers_have_no_findings() -> None:
    flow = Flow()
    flow.add_routine(Fine(), "a")
    flow.add_routine(Fine(), "b")
    for slot in ("one", "data", "kw"):
        flow.connect("a", "output", "b", slot)
    assert binding_findings(flow) == set()


def take_kwargs(**data: Any) -> None:
    pass


def take_data(data: Any) -> None:
    pass


def take_args(*args: Any) -> None:
    pass


def take_nothing() -> None:
    pass


def take_one(value: Any) -> None:
    pass


def take_keyword(*, value: Any = 1) -> None:
    pass


def take_several(a: Any, b: Any = 2, *, c: Any) -> None:
    pass


def take_mixed(a: Any, **rest: Any) -> None:
    pass


class Bound:
    def method(self, value: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (None, HandlerBinding("none")),
        (take_kwargs, HandlerBinding("kwargs")),
        (take_data, HandlerBinding("data", ("data",), ("data",))),
        (take_args, HandlerBinding("data")),
        (take_nothing, HandlerBinding("none")),
        (take_one, HandlerBinding("single", ("value",), ("value",))),
        (take_keyword, HandlerBinding("single", ("value",), (), ("value",))),
        (
            take_several,
            HandlerBinding("several", ("a", "b", "c"), ("a", "c"), ("b",)),
        ),
        (take_mixed, HandlerBinding("kwargs", ("a",), ("a",))),
        (Bound().method, HandlerBinding("single", ("value",), ("value",))),
        (vars, HandlerBinding("opaque")),  # a builtin without a signature
    ],
)
def test_describe_handler(handler: Any, expected: HandlerBinding) -> None:
    assert describe_handler(handler) == expected
    assert Slot("s", handler=handler).binding == expected


class Link(Routine):
    def __init__(self, entry: bool) -> None:
        super().__init__()
        self.define_slot("trigger" if entry else "input", handler=self.go)
        self.define_event("output", ["value"])

    def go(self, value: Any = None, **rest: Any) -> None:
        self.emit("output", value=value)


def test_issue_8_validate_2000_routine_chain_has_no_findings() -> None:
    flow = Flow()
    for i in range(2000):
        flow.add_routine(Link(entry=i == 0), f"r{i}")
    for i in range(1999):
        flow.connect(f"r{i}", "output", f"r{i + 1}", "input")
    assert flow.validate() == []
    flow.connect("r1999", "output", "r1", "input")  # a loop back
    assert [f.code for f in flow.validate()] == ["cycle"]
