"""Building flows: the graph, bad input, validation and pictures."""

from __future__ import annotations

from typing import Any

import networkx as nx
import pytest

from routilux import (
    ConfigurationError,
    DuplicateNameError,
    EntryPointError,
    Flow,
    Routine,
    StrategyShutdownError,
    UnknownEventError,
    UnknownRoutineError,
    UnknownSlotError,
    UnknownStrategyError,
)

from .routines import Collector, Relay, Source


def small_flow() -> Flow:
    flow = Flow(flow_id="small")
    flow.add_routine(Source(), "src")
    flow.add_routine(Relay(), "relay")
    flow.add_routine(Collector(), "sink")
    flow.connect("src", "output", "relay", "input")
    flow.connect("relay", "output", "sink", "input", {"value": "result"})
    return flow


def snapshot(flow: Flow) -> tuple[Any, ...]:
    graph = flow.graph
    return (
        sorted(graph.nodes),
        sorted((u, v, k) for u, v, k in graph.edges(keys=True)),
        len(flow.connections),
        dict(flow.routines),
    )


def test_graph_holds_routines_and_connections() -> None:
    flow = small_flow()
    graph = flow.graph
    assert isinstance(graph, nx.MultiDiGraph)
    assert set(graph.nodes) == {"src", "relay", "sink"}
    assert graph.has_edge("src", "relay", key=("output", "input"))
    assert graph.edges["relay", "sink", ("output", "input")]["param_mapping"] == {
        "value": "result"
    }


def test_graph_view_is_read_only() -> None:
    flow = small_flow()
    with pytest.raises(nx.NetworkXError):
        flow.graph.add_node("intruder")
    assert "intruder" not in flow.graph


@pytest.mark.parametrize(
    ("args", "error", "named"),
    [
        (("nosuch", "output", "relay", "input"), UnknownRoutineError, "nosuch"),
        (("src", "output", "nosuch", "input"), UnknownRoutineError, "nosuch"),
        (("src", "nosuch", "relay", "input"), UnknownEventError, "nosuch"),
        (("src", "output", "relay", "nosuch"), UnknownSlotError, "nosuch"),
        (("src", "output", "relay", "input"), DuplicateNameError, "src.output"),
    ],
)
def test_bad_connect_raises_and_leaves_flow_unchanged(
    args: tuple[str, str, str, str], error: type[Exception], named: str
) -> None:
    flow = small_flow()
    before = snapshot(flow)
    with pytest.raises(error, match=named):
        flow.connect(*args)
    assert snapshot(flow) == before


def test_bad_mapping_raises_and_leaves_flow_unchanged() -> None:
    flow = small_flow()
    before = snapshot(flow)
    with pytest.raises(ConfigurationError, match="param_mapping"):
        flow.connect("src", "output", "sink", "input", {"value": 3})  # type: ignore[dict-item]
    assert snapshot(flow) == before


def test_duplicate_routine_id_raises_and_leaves_flow_unchanged() -> None:
    flow = small_flow()
    before = snapshot(flow)
    with pytest.raises(DuplicateNameError, match="relay"):
        flow.add_routine(Relay(), "relay")
    assert snapshot(flow) == before


def test_same_routine_object_twice_in_one_flow_is_refused() -> None:
    flow = Flow()
    relay = Relay()
    flow.add_routine(relay, "a")
    with pytest.raises(DuplicateNameError, match="'a'"):
        flow.add_routine(relay, "b")


def test_routine_may_belong_to_several_flows() -> None:
    relay = Relay()
    Flow().add_routine(relay, "a")
    Flow().add_routine(relay, "a")


def test_duplicate_slot_and_event_names() -> None:
    routine = Relay()
    with pytest.raises(DuplicateNameError, match="input"):
        routine.define_slot("input")
    with pytest.raises(DuplicateNameError, match="output"):
        routine.define_event("output")
    with pytest.raises(ValueError, match="input"):  # also a ValueError, as 0.9 raised
        routine.define_slot("input")


def test_execute_unknown_routine_or_without_trigger() -> None:
    flow = small_flow()
    before = snapshot(flow)
    with pytest.raises(UnknownRoutineError, match="ghost"):
        flow.execute("ghost")
    with pytest.raises(EntryPointError, match="relay"):
        flow.execute("relay")
    with pytest.raises(ValueError, match="relay"):
        flow.execute("relay")
    assert snapshot(flow) == before


def test_unknown_strategy_name() -> None:
    with pytest.raises(UnknownStrategyError, match="warp"):
        Flow(execution_strategy="warp")
    flow = small_flow()
    with pytest.raises(UnknownStrategyError, match="warp"):
        flow.set_execution_strategy("warp")
    assert flow.execution_strategy == "sequential"
    with pytest.raises(UnknownStrategyError, match="warp"):
        flow.execute("src", execution_strategy="warp")


@pytest.mark.parametrize("workers", [0, -1, 2.5, True])
def test_max_workers_must_be_positive_int(workers: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_workers"):
        Flow(execution_strategy="concurrent", max_workers=workers)
    flow = Flow(execution_strategy="concurrent", max_workers=2)
    with pytest.raises(ConfigurationError, match="max_workers"):
        flow.set_execution_strategy("concurrent", max_workers=workers)
    assert flow.max_workers == 2
    flow.shutdown()


def test_strategy_attributes() -> None:
    assert Flow().max_workers == 1
    flow = Flow(execution_strategy="concurrent", max_workers=7)
    assert (flow.execution_strategy, flow.max_workers) == ("concurrent", 7)
    flow.set_execution_strategy("sequential")
    assert (flow.execution_strategy, flow.max_workers) == ("sequential", 1)
    flow.set_execution_strategy("concurrent")
    assert flow.max_workers == 5
    flow.shutdown()


def test_execute_after_shutdown_names_the_flow() -> None:
    flow = small_flow()
    flow.shutdown()
    flow.shutdown()
    with pytest.raises(StrategyShutdownError, match="small"):
        flow.execute("src")


def test_disconnect_and_remove_routine() -> None:
    flow = small_flow()
    flow.disconnect("src", "output", "relay", "input")
    assert not flow.graph.has_edge("src", "relay")
    with pytest.raises(ConfigurationError, match="no connection"):
        flow.disconnect("src", "output", "relay", "input")
    flow.remove_routine("relay")
    assert set(flow.graph.nodes) == {"src", "sink"}
    assert flow.connections == []


def test_default_ids_are_unique() -> None:
    flow = Flow()
    ids = {flow.add_routine(Relay()) for _ in range(50)}
    assert len(ids) == 50


def test_users_may_set_attributes_on_a_flow() -> None:
    flow = Flow()
    flow.note = "mine"  # type: ignore[attr-defined]
    assert flow.note == "mine"  # type: ignore[attr-defined]


class Looper(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input")
        self.define_slot("spare")
        self.define_event("output", ["n"])


def test_validate_reports_problems() -> None:
    flow = small_flow()
    flow.add_routine(Looper(), "a")
    flow.add_routine(Looper(), "b")
    flow.connect("a", "output", "b", "input")
    flow.connect("b", "output", "a", "input", {"undeclared": "n"})
    codes = {(f.code, f.routine_id) for f in flow.validate()}
    assert ("cycle", "a") in codes or ("cycle", "b") in codes
    assert ("unreachable", "a") in codes and ("unreachable", "b") in codes
    assert ("unconnected-slot", "a") in codes
    assert ("unknown-parameter", "b") in codes
    assert all(f.severity in ("error", "warning") for f in flow.validate())


def test_valid_flow_has_no_findings() -> None:
    assert small_flow().validate() == []


def test_mermaid_and_dot_text() -> None:
    flow = small_flow()
    mermaid = flow.to_mermaid()
    assert mermaid.startswith("flowchart LR")
    assert mermaid.count("-->") == 2 and "value→result" in mermaid
    dot = flow.to_dot()
    assert dot.startswith('digraph "small"')
    assert '"src" -> "relay"' in dot and '"relay" -> "sink"' in dot
