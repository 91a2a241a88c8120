"""A routine's slot and event rows are laid out once per spec and never shared out.

Writing a document again (a flow saved often, a checkpoint) reuses each
routine's layout; every document still gets rows of its own, a routine that
changes shape is laid out anew, and a spec that dies takes its layout along.
"""

from __future__ import annotations

import gc

import orjson

from routilux import Flow, Routine
from routilux.serialization import _writer

from .routines import Collector, Relay


def two_routine_flow() -> Flow:
    flow = Flow(flow_id="layout")
    flow.add_routine(Relay(), "relay")
    flow.add_routine(Collector(), "sink")
    flow.connect("relay", "output", "sink", "input")
    return flow


def test_each_serialized_document_has_rows_of_its_own() -> None:
    flow = two_routine_flow()
    first = flow.serialize()
    first["routines"]["relay"]["slots"][0]["name"] = "changed"
    first["routines"]["relay"]["events"][0]["output_params"].append("extra")
    second = flow.serialize()
    assert second["routines"]["relay"]["slots"][0]["name"] == "input"
    assert "extra" not in second["routines"]["relay"]["events"][0]["output_params"]
    assert (
        first["routines"]["relay"]["slots"] is not second["routines"]["relay"]["slots"]
    )
    assert orjson.loads(flow.to_json()) == second


def test_a_routine_that_gains_a_slot_is_laid_out_anew() -> None:
    flow = two_routine_flow()
    before = orjson.loads(flow.to_json())
    relay = flow.routines["relay"]
    relay.define_slot("late", handler=relay.relay)
    after = orjson.loads(flow.to_json())
    names = [row["name"] for row in after["routines"]["relay"]["slots"]]
    assert names == ["input", "late"]
    assert [row["name"] for row in before["routines"]["relay"]["slots"]] == ["input"]
    assert (
        flow.serialize()["routines"]["relay"]["slots"]
        == after["routines"]["relay"]["slots"]
    )


def test_a_spec_that_dies_takes_its_layout_along() -> None:
    gc.collect()
    before = len(_writer._LAYOUTS)
    flows = [two_routine_flow() for _ in range(50)]
    for flow in flows:
        flow.to_json()
    assert len(_writer._LAYOUTS) == before + 100
    del flows, flow
    gc.collect()
    assert len(_writer._LAYOUTS) == before


def test_a_reloaded_flow_writes_the_same_bytes() -> None:
    flow = two_routine_flow()
    raw = flow.to_json()
    again = Flow.from_json(raw)
    assert again.to_json() == raw
    assert again.to_json() == raw  # its layouts cached now


class NonAscii(Routine):
    """Names that are not ASCII take the checked copy, cached or not."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("entrée", handler=self.go)
        self.define_event("sortie", ["données"])

    def go(self, données: int = 0) -> None:
        self.emit("sortie", données=données)


def test_non_ascii_names_round_trip_twice() -> None:
    flow = Flow(flow_id="accents")
    flow.add_routine(NonAscii(), "n")
    for _ in range(2):
        doc = orjson.loads(flow.to_json())
        assert doc["routines"]["n"]["slots"][0]["name"] == "entrée"
        assert doc["routines"]["n"]["events"][0]["output_params"] == ["données"]


def test_loading_a_flow_caches_no_layout() -> None:
    raw = two_routine_flow().to_json()
    gc.collect()
    before = len(_writer._LAYOUTS)
    loaded = Flow.from_json(raw)  # compares each routine with its entry
    assert len(_writer._LAYOUTS) == before
    assert loaded.to_json() == raw
    assert len(_writer._LAYOUTS) == before + 2
