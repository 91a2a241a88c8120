"""Pictures of a flow: mermaid, DOT or text, with policies and job states marked.

Each routine is drawn with its class, its error policy (when it has one of its
own) and its slots whose policy or merge strategy is not the default; each
connection with its event, slot and parameter mapping. With a job's states,
routines are coloured (mermaid ``classDef``/``class`` lines, DOT fill colours)
or marked (text) by what the job recorded for them: ``completed``, ``failed``,
``error_continued``, ``skipped``, ``pending`` (an activation waits for it), or
nothing when the job never ran it.

The mermaid text keeps to a small grammar (``tests/test_issue_13_cli_graph.py``
checks it): ``flowchart LR``; node lines ``nK["label"]``; edge lines
``nA -->|"label"| nB``; ``classDef NAME k:v,...``; ``class nA,nB NAME``. In
labels every character mermaid reads as markup is written as an entity code
(``#34;`` for ``"``), so any routine, slot or event name is safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..flow import Flow
    from ..routine import Routine

__all__ = ["STATE_COLOURS", "describe_routine", "draw"]

#: Job state -> (fill, stroke) colours.
STATE_COLOURS: dict[str, tuple[str, str]] = {
    "completed": ("#c8e6c9", "#2e7d32"),
    "failed": ("#ffcdd2", "#c62828"),
    "error_continued": ("#ffe0b2", "#ef6c00"),
    "skipped": ("#eeeeee", "#757575"),
    "pending": ("#fff9c4", "#f9a825"),
}

# Characters mermaid would read as markup in a label, written as entity codes
# ('#' first, so the codes written are not escaped again).
_MERMAID_CODES = {c: f"#{ord(c)};" for c in '#"<>&[]{}|`'}


def describe_routine(routine: Routine) -> list[str]:
    """The class, error policy and non-default slot policies of ``routine``."""
    lines = [type(routine).__name__]
    handler = routine.get_error_handler()
    if handler is not None:
        policy = handler.strategy.value
        if policy == "retry":
            policy += f" x{handler.max_retries}"
        if handler.is_optional:
            policy += ", optional"
        if handler.is_critical:
            policy += ", critical"
        lines.append(f"on error: {policy}")
    for name, spec in routine.get_spec().slots.items():
        marks = []
        slot = routine.get_slot(name)
        if spec.policy != "each" and slot is not None:
            marks.append(_policy_text(slot.policy.describe()))
        if spec.merge_strategy != "override":
            marks.append(f"merge {spec.merge_strategy or 'custom'}")
        if marks:
            lines.append(f"{name}: {', '.join(marks)}")
    return lines


def _policy_text(policy: Mapping[str, Any]) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in policy.items() if k != "name")
    return f"{policy['name']}({settings})" if settings else str(policy["name"])


def _edges(flow: Flow) -> list[tuple[str, str, str]]:
    edges = []
    for source, target, (event, slot), attrs in flow.graph.edges(keys=True, data=True):
        label = f"{event} → {slot}"
        mapping = attrs.get("param_mapping")
        if mapping:
            label += " (" + ", ".join(f"{k}→{v}" for k, v in mapping.items()) + ")"
        if attrs.get("lane_key"):
            label += f" lane {attrs['lane_key']}"
        edges.append((source, target, label))
    return edges


def draw(flow: Flow, fmt: str, states: Mapping[str, str] | None = None) -> str:
    """``flow`` as mermaid, dot or text; ``states``: routine id -> job state."""
    states = states or {}
    if fmt == "mermaid":
        return _mermaid(flow, states)
    if fmt == "dot":
        return _dot(flow, states)
    return _text(flow, states)


def _mermaid_label(text: str) -> str:
    return "".join(_MERMAID_CODES.get(c, c) for c in text)


def _mermaid(flow: Flow, states: Mapping[str, str]) -> str:
    names = {rid: f"n{i}" for i, rid in enumerate(flow.routines)}
    lines = ["flowchart LR"]
    for rid, routine in flow.routines.items():
        parts = [rid, *describe_routine(routine)]
        label = "<br/>".join(_mermaid_label(p) for p in parts)
        lines.append(f'    {names[rid]}["{label}"]')
    for source, target, label in _edges(flow):
        lines.append(
            f'    {names[source]} -->|"{_mermaid_label(label)}"| {names[target]}'
        )
    for state, (fill, stroke) in STATE_COLOURS.items():
        marked = [names[rid] for rid in flow.routines if states.get(rid) == state]
        if marked:
            lines.append(f"    classDef {_class(state)} fill:{fill},stroke:{stroke}")
            lines.append(f"    class {','.join(marked)} {_class(state)}")
    return "\n".join(lines) + "\n"


def _class(state: str) -> str:
    return state.replace("_", "")


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dot(flow: Flow, states: Mapping[str, str]) -> str:
    lines = [
        f"digraph {_dot_quote(flow.flow_id)} {{",
        "    rankdir=LR;",
        "    node [shape=box];",
    ]
    for rid, routine in flow.routines.items():
        label = "\n".join([rid, *describe_routine(routine)])
        extra = ""
        if rid in states and states[rid] in STATE_COLOURS:
            fill, stroke = STATE_COLOURS[states[rid]]
            extra = f', style=filled, fillcolor="{fill}", color="{stroke}"'
        lines.append(f"    {_dot_quote(rid)} [label={_dot_quote(label)}{extra}];")
    for source, target, label in _edges(flow):
        lines.append(
            f"    {_dot_quote(source)} -> {_dot_quote(target)} "
            f"[label={_dot_quote(label)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _text(flow: Flow, states: Mapping[str, str]) -> str:
    lines = [f"flow {flow.flow_id}"]
    for rid, routine in flow.routines.items():
        mark = f" [{states[rid]}]" if rid in states else ""
        described = describe_routine(routine)
        lines.append(f"  {rid} ({described[0]}){mark}")
        lines.extend(f"      {line}" for line in described[1:])
    lines.append("connections")
    lines.extend(f"  {s} --{label}--> {t}" for s, t, label in _edges(flow))
    return "\n".join(lines) + "\n"
