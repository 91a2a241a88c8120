"""Hypothesis on flow and JobState documents.

* Generated flows (up to 30 routines, random connections, mappings, JSON configs,
  stats, error handlers, timeouts, breakers, merge strategies) round-trip to
  identical bytes.
* Arbitrary JSON values, mutated valid documents and truncated JSON only ever raise
  SerializationError, and no module outside the allow-list gets imported.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routilux import (
    ErrorHandler,
    Flow,
    JobState,
    Routine,
    SerializationError,
    register_merge_strategy,
)
from routilux.exceptions import CircuitOpenError, RoutineTimeoutError

from .routines import Collector, Relay, Source

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the routines generated flows are made of ------------------------------------------


class Emitter(Routine):
    """An entry routine with two events."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["value"])
        self.define_event("alt", ["a", "b"])

    def go(self, **data: Any) -> None:
        self.emit("out", value=data)


class Mixer(Routine):
    """Two slots (one appending) and one event."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("left", handler=self.mix, merge_strategy="append")
        self.define_slot("right", handler=self.mix)
        self.define_event("out", ["value"])

    def mix(self, **data: Any) -> None:
        self.emit("out", value=data)


class Drain(Routine):
    """A sink whose handler is a lambda."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=lambda **data: None)


SLOTS: dict[type[Routine], list[str]] = {
    Emitter: ["trigger"],
    Mixer: ["left", "right"],
    Drain: ["input"],
}
EVENTS: dict[type[Routine], list[str]] = {Emitter: ["out", "alt"], Mixer: ["out"]}
register_merge_strategy("fuzz_union", lambda old, new: {**old, **new})
MERGES = [None, "override", "append", "fuzz_union"]
RETRYABLE = [ValueError, KeyError, OSError, RoutineTimeoutError, CircuitOpenError]

# -- generated flows -------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
names = st.text(min_size=1, max_size=8)
seconds = st.none() | st.integers(1, 10**6) | st.floats(0.001, 1e6)


@st.composite
def error_handlers(draw: st.DrawFn) -> ErrorHandler | None:
    if draw(st.booleans()):
        return None
    handler = ErrorHandler(
        draw(st.sampled_from(["stop", "continue", "retry", "skip"])),
        draw(st.integers(0, 5)),
        draw(st.integers(0, 3) | st.floats(0, 10)),
        draw(st.integers(1, 3) | st.floats(0.1, 5)),
        tuple(draw(st.lists(st.sampled_from(RETRYABLE), unique=True, max_size=3)))
        or None,
        draw(st.booleans()),
    )
    handler.is_optional = draw(st.booleans())
    return handler


@dataclass
class RoutineSpec:
    cls: type[Routine]
    config: dict[str, Any]
    stats: dict[str, Any]
    max_concurrency: int | None
    handler: ErrorHandler | None
    timeout: float | None
    breaker: tuple[int, float] | None
    merges: list[str | None]


@dataclass
class FlowSpec:
    """What to build: flows are made in the test body, so each one is shut down."""

    flow_id: str
    strategy: str
    workers: int
    settings: dict[str, Any]
    routines: dict[str, RoutineSpec]
    links: list[tuple[str, str, str, str, dict[str, str]]] = field(default_factory=list)

    def build(self) -> Flow:
        flow = Flow(self.flow_id, self.strategy, self.workers, **self.settings)
        for rid, spec in self.routines.items():
            routine = spec.cls()
            routine.set_config(**spec.config)
            for key, value in spec.stats.items():
                routine.set_stat(key, value)
            routine.set_max_concurrency(spec.max_concurrency)
            routine.set_error_handler(spec.handler)
            routine.set_timeout(spec.timeout)
            if spec.breaker is not None:
                routine.set_circuit_breaker(*spec.breaker)
            for slot, merge in zip(SLOTS[spec.cls], spec.merges, strict=True):
                if merge is not None:
                    routine._rx.slots[slot].merge_strategy = merge
            flow.add_routine(routine, rid)
        for source, event, target, slot, mapping in self.links:
            flow.connect(source, event, target, slot, mapping or None)
        return flow


@st.composite
def routine_specs(draw: st.DrawFn) -> RoutineSpec:
    cls = draw(st.sampled_from(list(SLOTS)))
    breaker = draw(
        st.none() | st.tuples(st.integers(1, 10), st.integers(0, 60) | st.floats(0, 60))
    )
    return RoutineSpec(
        cls,
        draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
        draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)),
        draw(st.none() | st.integers(1, 8)),
        draw(error_handlers()),
        draw(seconds),
        breaker,
        [draw(st.sampled_from(MERGES)) for _ in SLOTS[cls]],
    )


@st.composite
def flow_specs(draw: st.DrawFn, least: int = 0, most: int = 30) -> FlowSpec:
    ids = draw(st.lists(names, min_size=least, max_size=most, unique=True))
    strategy = draw(st.sampled_from(["sequential", "concurrent"]))
    spec = FlowSpec(
        draw(names),
        strategy,
        1 if strategy == "sequential" else draw(st.integers(1, 3)),
        {
            "error_handler": draw(error_handlers()),
            "history_limit": draw(st.none() | st.integers(1, 1000)),
            "default_timeout": draw(seconds),
        },
        {rid: draw(routine_specs()) for rid in ids},
    )
    sources = [
        (rid, e) for rid, r in spec.routines.items() for e in EVENTS.get(r.cls, [])
    ]
    targets = [(rid, s) for rid, r in spec.routines.items() for s in SLOTS[r.cls]]
    if sources and targets:
        mappings = st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)
        links = draw(
            st.lists(
                st.tuples(st.sampled_from(sources), st.sampled_from(targets), mappings),
                max_size=40,
                unique_by=lambda link: (link[0], link[1]),
            )
        )
        spec.links = [(s, e, t, sl, m) for (s, e), (t, sl), m in links]
    return spec


def check_round_trip(spec: FlowSpec) -> None:
    built: list[Flow] = []
    try:
        flow = spec.build()
        built.append(flow)
        raw = flow.to_json()
        document = flow.serialize()
        assert orjson.loads(raw) == document
        built.append(Flow.deserialize(document))
        built.append(Flow.from_json(raw))
        built.append(Flow())
        built[-1].deserialize(orjson.loads(raw))
        for restored in built[1:]:
            assert restored.to_json() == raw
        assert orjson.dumps(built[1].serialize()) == orjson.dumps(document)
    finally:
        for each in built:
            each.shutdown()


@FUZZ
@given(flow_specs())
def test_generated_flows_round_trip_to_identical_bytes(spec: FlowSpec) -> None:
    check_round_trip(spec)


@settings(FUZZ, max_examples=5)
@given(flow_specs(least=30, most=30))
def test_thirty_routine_flows_round_trip(spec: FlowSpec) -> None:
    check_round_trip(spec)


# -- fuzzed input: only SerializationError, and no imports -----------------------------

ALLOWED = ["json", "tests.routines"]  # already imported: nothing new may appear
CLASS_KEYS = [
    "os:system",
    "subprocess:Popen",
    "this:Zen",
    "http.server:HTTPServer",
    "tests.never_imported:Thing",
    "json:JSONDecoder",
    "json.tool:main",
    "tests.routines:Boom",
    "tests.routines:Collector",
    "tests.routines:threading",
    f"{__name__}:Mixer",
    f"{__name__}:RoutineSpec",
    "__main__:Thing",
    "builtins:object",
    "routilux.flow:Flow",
    ":",
    "",
]
EXCEPTION_NAMES = [
    "builtins.KeyError",
    "builtins.len",
    "os.error",
    "json.JSONDecodeError",
    "json.decoder.JSONDecodeError",
    "this.Error",
    "http.client.HTTPException",
    "routilux.exceptions.CircuitOpenError",
    "routilux.exceptions.nothing",
    "tests.routines.Boom",
]
ODD_VALUES = [
    None,
    "",
    0,
    -1,
    2**70,
    1.5,
    math.nan,
    math.inf,
    True,
    [],
    {},
    object(),
    {1, 2},
    b"bytes",
    (1, 2),
    {1: 2},
    "\ud800",
    *CLASS_KEYS,
    *EXCEPTION_NAMES,
]
FLOW_KEYS = [
    "schema_version",
    "kind",
    "flow_id",
    "execution_strategy",
    "max_workers",
    "routines",
    "connections",
    "class",
    "config",
    "slots",
    "events",
]
JOB_KEYS = ["job_id", "status", "execution_history", "timestamp", "pending_tasks"]
any_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(FLOW_KEYS + JOB_KEYS) | st.text(max_size=6),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)
replacements = any_json | st.sampled_from(ODD_VALUES)


@functools.cache
def flow_documents() -> list[dict[str, Any]]:
    """Valid documents to mutate (the flows are shut down at once)."""
    flow = Flow("fuzz", "concurrent", 2, error_handler=ErrorHandler("retry"))
    source, relay = Source(), Relay()
    relay.set_error_handler(ErrorHandler("retry", retryable_exceptions=(KeyError,)))
    relay.set_circuit_breaker(3, 5)
    relay.set_timeout(1)
    source.set_stat("n", [1, {"a": None}])
    flow.add_routine(source, "src")
    flow.add_routine(relay, "relay")
    flow.add_routine(Collector("append"), "sink")
    flow.add_routine(Mixer(), "mix")
    flow.connect("src", "output", "relay", "input", {"value": "value"})
    flow.connect("relay", "output", "sink", "input")
    flow.connect("relay", "output", "mix", "right", {"tag": "t"})
    flow.connect("mix", "out", "mix", "left")
    document = flow.serialize()
    flow.shutdown()
    old = orjson.loads(orjson.dumps(document))
    old["schema_version"] = 1
    del old["default_timeout"], old["history_limit"]
    for entry in old["routines"].values():
        for key in ("stats", "slots", "events", "timeout", "circuit_breaker"):
            del entry[key]
    return [document, old]


@functools.cache
def job_documents() -> list[dict[str, Any]]:
    with Flow("job") as flow:
        flow.add_routine(Source(), "src")
        flow.add_routine(Collector(), "sink")
        flow.connect("src", "output", "sink", "input")
        done = flow.execute("src", {"tag": "x"}).serialize()
    paused = JobState("job", status="paused", current_routine_id="src")
    paused.pending_tasks = [
        {"routine_id": "sink", "slot": "input", "payload": {"v": 1}, "params": None}
    ]
    paused.record_execution("src", "output", {"value": 1})
    return [done, paused.serialize()]


def copy(document: Any) -> Any:
    return orjson.loads(orjson.dumps(document))


def places(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a document, the document's own keys included."""
    found: list[tuple[Any, Any]] = []
    stack = [node]
    while stack:
        container = stack.pop()
        keys = (
            container.keys() if isinstance(container, dict) else range(len(container))
        )
        for key in keys:
            found.append((container, key))
            if isinstance(container[key], (dict, list)):
                stack.append(container[key])
    return found


@st.composite
def mutated(draw: st.DrawFn, documents: list[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = copy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(1, 3))):
        container, key = draw(st.sampled_from(places(document)))
        action = draw(st.sampled_from(["replace", "replace", "delete", "insert"]))
        if action == "delete":
            del container[key]
        elif action == "insert" and isinstance(container, dict):
            container[draw(st.text(max_size=6) | st.sampled_from(FLOW_KEYS))] = draw(
                replacements
            )
        elif action == "insert":
            container.insert(key, draw(replacements))
        else:
            container[key] = draw(replacements)
    return document


def only_serialization_errors(document: Any) -> None:
    before = set(sys.modules)
    try:
        flow = Flow.deserialize(document, allowed_modules=ALLOWED)
    except SerializationError:
        pass
    else:  # a mutation that still loads must write back stably
        try:
            raw = flow.to_json()
            again = Flow.from_json(raw, allowed_modules=ALLOWED)
            assert again.to_json() == raw
            again.shutdown()
        finally:
            flow.shutdown()
    try:
        job = JobState.deserialize(document)
    except SerializationError:
        pass
    else:
        assert JobState.deserialize(job.serialize()).serialize() == job.serialize()
    assert set(sys.modules) - before <= set(ALLOWED)


@FUZZ
@given(any_json)
def test_arbitrary_json_raises_only_serialization_errors(value: Any) -> None:
    only_serialization_errors(value)


@FUZZ
@given(st.data())
def test_mutated_flow_documents_raise_only_serialization_errors(
    data: st.DataObject,
) -> None:
    only_serialization_errors(data.draw(mutated(flow_documents())))


@FUZZ
@given(st.data())
def test_mutated_job_documents_raise_only_serialization_errors(
    data: st.DataObject,
) -> None:
    only_serialization_errors(data.draw(mutated(job_documents())))


@settings(FUZZ, max_examples=30)
@given(st.data())
def test_truncated_json_is_a_serialization_error(data: st.DataObject) -> None:
    raw = orjson.dumps(data.draw(st.sampled_from(flow_documents())))
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(SerializationError, match="not valid JSON"):
        Flow.from_json(raw[:cut])
