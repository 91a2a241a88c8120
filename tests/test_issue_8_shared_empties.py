"""Issue 8: what a job shares while it has none of its own is never written.

A job keeps no slot data until a merge keeps some, and the history's start
record keeps the runtime's copy of the entry parameters: nothing a job, a
handler or the caller does may reach another job through them.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux import Flow, Routine
from routilux.runtime.ledger import base


class _Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("output", ["value"])

    def fire(self, value: int = 0) -> None:
        self.emit("output", value=value)
        self.emit("output", value=value + 1)


class _Gather(Routine):
    def __init__(self, merge: Any) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take, merge_strategy=merge)

    def take(self, value: Any) -> Any:
        return value


def _keep_all(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {"value": [*old.get("value", []), new["value"]]}


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
@pytest.mark.parametrize("merge", ["append", _keep_all])
def test_issue_8_slot_data_stays_with_its_job(strategy: str, merge: Any) -> None:
    flow = Flow(execution_strategy=strategy, max_workers=4)
    flow.add_routine(_Source(), "source")
    flow.add_routine(_Gather(merge), "gather")
    flow.connect("source", "output", "gather", "input")
    with flow:
        jobs = [(v, flow.execute("source", {"value": v * 10})) for v in range(50)]
        assert flow.wait_for_completion(30)
        for value, job in jobs:
            # each job merged its own two arrivals, and no other job's (on
            # threads, the call with one arrival may be the last to return)
            mine = [value * 10, value * 10 + 1]
            got = job.result()["gather"]
            assert got == mine if strategy == "sequential" else got in (mine, mine[:1])
    assert base._NO_SLOT_DATA == {}


def test_issue_8_the_start_record_is_not_the_callers_dict() -> None:
    class Mutating(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self, data: dict[str, Any]) -> None:
            data["touched"] = True  # the handler's own copy

    flow = Flow()
    flow.add_routine(Mutating(), "entry")
    params = {"data": {"n": 1}}
    job = flow.execute("entry", params)
    params["later"] = 2  # the caller's dict, changed after the start
    start = job.execution_history[0]
    assert start.event_name == "start"
    assert start.data == {"data": {"n": 1}}


def test_issue_8_an_outcome_makes_its_emitted_list_when_read() -> None:
    from routilux.hooks import Outcome

    first, second = Outcome(1), Outcome(2)
    assert first.emitted == [] and first.emitted is first.emitted
    first.emitted.append(("output", {"value": 1}))
    assert second.emitted == []  # each outcome's own list
    assert "emits=1" in repr(first) and "emits=0" in repr(second)
    given = [("output", {"value": 3})]
    assert Outcome(3, emitted=given).emitted is given
