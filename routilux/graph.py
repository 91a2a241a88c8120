"""The flow's wiring as a graph: validation findings and mermaid/dot text.

Nodes are routine ids; edges are connections keyed by ``(event, slot)``. Nothing here
changes a flow; every function reads a ``networkx.MultiDiGraph`` and the routines.
Every check is linear in the routines and connections.

Handler binding (see :mod:`routilux.slot`) is checked against what the connected
events document (``output_params``, after each connection's ``param_mapping``).
An event that documents nothing may carry anything, so a slot fed by one is not
name-checked; nor is a ``trigger`` slot, whose entry parameters come from
``execute``. Emitting undocumented keys is allowed, so these are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import networkx as nx

from .connection import apply_mapping

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from .routine import Routine
    from .slot import HandlerBinding
    from .spec import SlotSpec

__all__ = ["Finding", "find_problems", "to_dot", "to_mermaid"]

_MAX_CYCLES_REPORTED = 20


@dataclass(frozen=True)
class Finding:
    """One thing :meth:`Flow.validate` noticed.

    Attributes:
        severity: ``"error"`` (the flow cannot work as wired) or ``"warning"``.
        code: A stable identifier: ``unknown-event``, ``unknown-slot``,
            ``unconnected-slot``, ``unknown-parameter``, ``unreachable``, ``cycle``,
            ``no-entry``; for handler binding ``unmatched-parameter`` (a handler's
            only parameter is carried by no connected event, so it is given the
            whole payload), ``missing-parameter`` (a required parameter no
            connected event carries) and ``overridden-default`` (a handler's only
            parameter has a default the whole payload replaces when the key is
            absent).
        message: What was found, naming routine ids, events and slots.
        routine_id: The routine concerned, when there is one.
        slot: The slot concerned, for handler-binding findings.
        parameter: The handler parameter concerned, for handler-binding findings.
    """

    severity: Literal["error", "warning"]
    code: str
    message: str
    routine_id: str | None = None
    slot: str | None = None
    parameter: str | None = None

    def __str__(self) -> str:
        return f"{self.severity}: {self.message} [{self.code}]"


def find_problems(
    graph: nx.MultiDiGraph, routines: Mapping[str, Routine]
) -> list[Finding]:
    """Everything worth telling about the wiring, errors first."""
    findings: list[Finding] = []
    findings += _check_edges(graph, routines)
    findings += _check_unconnected_slots(graph, routines)
    findings += _check_reachability(graph, routines)
    findings += _check_cycles(graph)
    findings += _check_bindings(graph, routines)
    return sorted(
        findings, key=lambda f: (f.severity != "error", f.code, f.routine_id or "")
    )


def _check_edges(
    graph: nx.MultiDiGraph, routines: Mapping[str, Routine]
) -> list[Finding]:
    found: list[Finding] = []
    for source, target, (event_name, slot_name), attrs in graph.edges(
        keys=True, data=True
    ):
        event = routines[source].get_spec().events.get(event_name)
        if event is None:
            found.append(
                Finding(
                    "error",
                    "unknown-event",
                    f"routine {source!r} has no event {event_name!r}",
                    source,
                )
            )
        elif event.output_params:
            wire = f"{source}.{event_name} -> {target}.{slot_name}"
            found.extend(
                Finding(
                    "warning",
                    "unknown-parameter",
                    f"mapping on {wire} renames {param!r}, which event "
                    f"{event_name!r} does not declare (declares {event.output_params})",
                    source,
                )
                for param in attrs.get("param_mapping") or {}
                if param not in event.output_params
            )
        if routines[target].get_slot(slot_name) is None:
            found.append(
                Finding(
                    "error",
                    "unknown-slot",
                    f"routine {target!r} has no slot {slot_name!r}",
                    target,
                )
            )
    return found


def _check_unconnected_slots(
    graph: nx.MultiDiGraph, routines: Mapping[str, Routine]
) -> list[Finding]:
    fed: set[tuple[str, str]] = {
        (target, key[1]) for _, target, key in graph.edges(keys=True)
    }
    return [
        Finding(
            "warning",
            "unconnected-slot",
            f"slot {routine_id}.{slot_name} has no incoming connection",
            routine_id,
        )
        for routine_id, routine in routines.items()
        for slot_name in routine.get_spec().slots
        if slot_name != "trigger" and (routine_id, slot_name) not in fed
    ]


def _entries(routines: Mapping[str, Routine]) -> list[str]:
    return [
        rid for rid, routine in routines.items() if routine.entry_slot() is not None
    ]


def _check_reachability(
    graph: nx.MultiDiGraph, routines: Mapping[str, Routine]
) -> list[Finding]:
    if not routines:
        return []
    entries = _entries(routines)
    if not entries:
        return [
            Finding(
                "error",
                "no-entry",
                "no routine has a 'trigger' slot, so no job can start",
            )
        ]
    reachable = _reachable_from(graph, entries)
    return [
        Finding(
            "warning",
            "unreachable",
            f"routine {rid!r} cannot be reached from any entry",
            rid,
        )
        for rid in routines
        if rid not in reachable
    ]


def _reachable_from(graph: nx.MultiDiGraph, sources: list[str]) -> set[str]:
    """Every node reachable from any of ``sources``: one traversal, O(V + E)."""
    reached = set(sources)
    stack = list(sources)
    successors = graph.succ
    while stack:
        for nxt in successors[stack.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                stack.append(nxt)
    return reached


def _check_cycles(graph: nx.MultiDiGraph) -> list[Finding]:
    found: list[Finding] = []
    if nx.is_directed_acyclic_graph(graph):  # O(V + E): skip the copy below
        return found
    for cycle in nx.simple_cycles(nx.DiGraph(graph)):
        if len(found) == _MAX_CYCLES_REPORTED:
            break
        path = " -> ".join([*cycle, cycle[0]])
        found.append(
            Finding(
                "warning",
                "cycle",
                f"cycle {path}: make sure it ends (routers may loop)",
                cycle[0],
            )
        )
    return found


def _check_bindings(
    graph: nx.MultiDiGraph, routines: Mapping[str, Routine]
) -> list[Finding]:
    found: list[Finding] = []
    carried = _carried(graph, routines)
    for routine_id, routine in routines.items():
        for slot_name, slot in routine.get_spec().slots.items():
            binding = slot.binding
            if binding.rule == "single" and binding.defaults:
                found.append(_overridden_default(routine_id, slot))
            names = carried.get((routine_id, slot_name))
            # Entry parameters come from execute(): a trigger slot is not checked.
            if names is not None and slot_name != "trigger":
                found += _check_names(routine_id, slot, binding, names)
    return found


def _carried(
    graph: nx.MultiDiGraph, routines: Mapping[str, Routine]
) -> dict[tuple[str, str], set[str] | None]:
    """(routine id, slot) -> the names its connections document, after renaming.

    One pass over the edges. None for a slot fed by an event that documents nothing.
    """
    carried: dict[tuple[str, str], set[str] | None] = {}
    for source, target, (event_name, slot_name), mapping in graph.edges(
        keys=True, data="param_mapping"
    ):
        key = (target, slot_name)
        names = carried.get(key, set())
        if names is None:
            continue
        event = routines[source].get_spec().events.get(event_name)
        if event is None or not event.output_params:
            carried[key] = None
            continue
        names.update(_renamed(event.output_params, mapping))
        carried[key] = names
    return carried


def _renamed(params: Iterable[str], mapping: dict[str, str] | None) -> Iterable[str]:
    if not mapping:
        return params
    return apply_mapping(dict.fromkeys(params), mapping, frozenset(mapping.values()))


def _check_names(
    routine_id: str, slot: SlotSpec, binding: HandlerBinding, carried: set[str]
) -> list[Finding]:
    where = f"handler {slot.handler_label} of slot {routine_id}.{slot.name}"
    events_carry = f"connected events carry {sorted(carried)}"
    if binding.rule == "single" and binding.parameters[0] not in carried:
        name = binding.parameters[0]
        return [
            Finding(
                "warning",
                "unmatched-parameter",
                f"{where} takes one parameter {name!r}, which no connected event "
                f"carries ({events_carry}): it is given the whole payload dict",
                routine_id,
                slot.name,
                name,
            )
        ]
    if binding.rule not in ("several", "kwargs"):
        return []
    return [
        Finding(
            "warning",
            "missing-parameter",
            f"{where} requires parameter {name!r}, which no connected event "
            f"carries ({events_carry})",
            routine_id,
            slot.name,
            name,
        )
        for name in binding.required
        if name not in carried
    ]


def _overridden_default(routine_id: str, slot: SlotSpec) -> Finding:
    name = slot.binding.parameters[0]
    return Finding(
        "warning",
        "overridden-default",
        f"handler {slot.handler_label} of slot {routine_id}.{slot.name} takes "
        f"one parameter {name!r} with a default: a payload without {name!r} is "
        f"passed whole instead ({name}={{...}}), so the default is never used "
        f"(add **kwargs to the handler to use it)",
        routine_id,
        slot.name,
        name,
    )


def to_mermaid(graph: nx.MultiDiGraph, direction: str = "LR") -> str:
    """Mermaid ``flowchart`` text: one node per routine, one arrow per connection."""
    names = {rid: f"n{i}" for i, rid in enumerate(graph.nodes)}
    lines = [f"flowchart {direction}"]
    for rid, attrs in graph.nodes(data=True):
        label = f"{rid}<br/>{type(attrs.get('routine')).__name__}"
        lines.append(f'    {names[rid]}["{_mermaid_escape(label)}"]')
    for source, target, (event_name, slot_name), attrs in graph.edges(
        keys=True, data=True
    ):
        label = f"{event_name} → {slot_name}"
        mapping = attrs.get("param_mapping")
        if mapping:
            label += " (" + ", ".join(f"{k}→{v}" for k, v in mapping.items()) + ")"
        lines.append(
            f'    {names[source]} -->|"{_mermaid_escape(label)}"| {names[target]}'
        )
    return "\n".join(lines) + "\n"


def _mermaid_escape(text: str) -> str:
    return text.replace('"', "#quot;")


def to_dot(graph: nx.MultiDiGraph, name: str = "flow") -> str:
    """Graphviz DOT text: one node per routine, one edge per connection."""
    lines = [
        f"digraph {_dot_quote(name)} {{",
        "    rankdir=LR;",
        "    node [shape=box];",
    ]
    for rid, attrs in graph.nodes(data=True):
        label = f"{rid}\n{type(attrs.get('routine')).__name__}"
        lines.append(f"    {_dot_quote(rid)} [label={_dot_quote(label)}];")
    for source, target, (event_name, slot_name), attrs in graph.edges(
        keys=True, data=True
    ):
        label = f"{event_name} -> {slot_name}"
        mapping = attrs.get("param_mapping")
        if mapping:
            label += "\n" + ", ".join(f"{k}->{v}" for k, v in mapping.items())
        lines.append(
            f"    {_dot_quote(source)} -> {_dot_quote(target)} "
            f"[label={_dot_quote(label)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
