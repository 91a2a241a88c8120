"""Issue 11: slots and events defined on a routine instance survive a flow document.

Written from routilux 0.9 usage: a bare ``Routine()`` gets its slots and events
with ``define_slot`` / ``define_event`` on the instance, is wired into a flow,
saved and loaded, and the loaded flow runs with the same results. Handlers are
named as methods of the routine's class or module-level functions (loaded from
``allowed_modules`` only); lambdas and closures are refused when saving.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import TYPE_CHECKING, Any

import pytest

from routilux import (
    AllSources,
    Batch,
    Flow,
    Routine,
    SerializationError,
    Window,
    register_merge_strategy,
)
from routilux.serialization import to_json

if TYPE_CHECKING:
    from pathlib import Path

HERE = [__name__]
RECEIVED: list[Any] = []
BATCHES: list[list[Any]] = []


def record(value: Any) -> None:
    """A module-level handler: a document names it ``<module>:record``."""
    RECEIVED.append(value)


def record_items(items: list[dict[str, Any]]) -> None:
    """A module-level handler of a Batch slot."""
    BATCHES.append([item["value"] for item in items])


def _keep_latest_two(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {**old, **new}


register_merge_strategy("issue11_latest_two", _keep_latest_two)


class Counter(Routine):
    """No constructor of its own: every slot and event is defined on the instance."""

    def count(self, n: int) -> None:
        for value in range(n):
            self.emit("output", value=value)


class Doubler(Routine):
    """A class that declares one slot; another is defined on the instance."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.double)
        self.define_event("output", ["value"])

    def double(self, value: int) -> None:
        self.emit("output", value=value * 2)

    def triple(self, value: int) -> None:
        self.emit("output", value=value * 3)


@pytest.fixture(autouse=True)
def _clear() -> None:
    RECEIVED.clear()
    BATCHES.clear()


def build_09_flow() -> Flow:
    """A 0.9-style flow: routines configured on the instance, then wired."""
    counter = Counter()
    counter.define_event("output", ["value"])
    counter.define_slot("trigger", handler=counter.count)
    sink = Routine()
    sink.define_slot("input", handler=record)
    batcher = Routine()
    batcher.define_slot("input", handler=record_items, policy=Batch(2))
    flow = Flow("instance-defined")
    flow.add_routine(counter, "counter")
    flow.add_routine(sink, "sink")
    flow.add_routine(batcher, "batcher")
    flow.connect("counter", "output", "sink", "input")
    flow.connect("counter", "output", "batcher", "input")
    return flow


def run(flow: Flow) -> tuple[str, list[Any], list[list[Any]]]:
    RECEIVED.clear()
    BATCHES.clear()
    job = flow.execute("counter", {"n": 5})
    return str(job.status), list(RECEIVED), [list(b) for b in BATCHES]


def _dict_round_trip(flow: Flow, tmp_path: Path) -> Flow:
    return Flow.deserialize(flow.serialize(), allowed_modules=HERE)


def _json_round_trip(flow: Flow, tmp_path: Path) -> Flow:
    return Flow.from_json(flow.to_json(), allowed_modules=HERE)


def _file_round_trip(flow: Flow, tmp_path: Path) -> Flow:
    flow.save(tmp_path / "flow.json")
    return Flow.load(tmp_path / "flow.json", allowed_modules=HERE)


def _instance_round_trip(flow: Flow, tmp_path: Path) -> Flow:
    loaded = Flow()
    loaded.deserialize(flow.serialize(), allowed_modules=HERE)
    return loaded


@pytest.mark.parametrize(
    "round_trip",
    [_dict_round_trip, _json_round_trip, _file_round_trip, _instance_round_trip],
)
def test_bare_routines_are_saved_loaded_and_run_alike(
    round_trip: Any, tmp_path: Path
) -> None:
    flow = build_09_flow()
    before = run(flow)
    assert before == ("completed", [0, 1, 2, 3, 4], [[0, 1], [2, 3], [4]])
    loaded = round_trip(flow, tmp_path)
    assert type(loaded.routines["sink"]) is Routine
    assert run(loaded) == before
    # Rebuilt, not shared: the loaded counter's handler is its own bound method.
    counter = loaded.routines["counter"]
    assert counter is not flow.routines["counter"]
    trigger = counter.get_slot("trigger")
    assert trigger is not None and getattr(trigger.handler, "__self__", None) is counter
    # A document that loads writes back byte for byte.
    assert to_json(loaded.serialize()) == to_json(flow.serialize())


def test_the_document_describes_instance_rows_in_full() -> None:
    document = build_09_flow().serialize()
    routines = document["routines"]
    assert routines["sink"]["class"] == "routilux.routine:Routine"
    assert routines["sink"]["slots"] == [
        {
            "name": "input",
            "merge_strategy": "override",
            "handler": "record",
            "instance": {
                "handler": {"function": f"{__name__}:record"},
                "policy": {"name": "each"},
            },
        }
    ]
    assert routines["batcher"]["slots"][0]["instance"]["policy"] == {
        "name": "batch",
        "size": 2,
    }
    assert routines["counter"]["slots"][0]["instance"]["handler"] == {"method": "count"}
    # An event's row is all it takes to rebuild it: no mark.
    assert routines["counter"]["events"] == [
        {"name": "output", "output_params": ["value"]}
    ]


def test_class_declared_rows_are_unchanged_and_instance_extras_are_added() -> None:
    doubler = Doubler()
    doubler.define_slot("extra", handler=doubler.triple)
    doubler.define_event("done")
    spec = doubler.get_spec()
    assert not spec.slots["input"].on_instance and spec.slots["extra"].on_instance
    assert not spec.events["output"].on_instance and spec.events["done"].on_instance
    assert spec.instance_defined and not Doubler().get_spec().instance_defined
    flow = Flow("extras")
    flow.add_routine(doubler, "doubler")
    sink = Routine()
    sink.define_slot("input", handler=record)
    flow.add_routine(sink, "sink")
    flow.connect("doubler", "output", "sink", "input")
    document = flow.serialize()
    entry = document["routines"]["doubler"]
    assert entry["slots"][0] == {
        "name": "input",
        "merge_strategy": "override",
        "handler": "double",
    }
    assert entry["slots"][1]["instance"]["handler"] == {"method": "triple"}
    loaded = Flow.deserialize(document, allowed_modules=HERE)
    loaded.routines["doubler"].get_slot("extra").receive({"value": 2})  # type: ignore[union-attr]
    assert RECEIVED == [6]
    assert to_json(loaded.serialize()) == to_json(document)


def test_merge_strategies_and_policies_of_instance_slots_survive() -> None:
    routine = Routine()
    routine.define_slot("named", handler=record, merge_strategy="issue11_latest_two")
    routine.define_slot("appended", handler=record, merge_strategy="append")
    routine.define_slot("joined", handler=record, policy=AllSources(keep="all"))
    routine.define_slot("windowed", handler=record_items, policy=Window(2.5))
    routine.define_slot("nothing")
    flow = Flow("merges")
    flow.add_routine(routine, "r")
    loaded = Flow.deserialize(flow.serialize(), allowed_modules=HERE)
    rebuilt = loaded.routines["r"]
    slots = {name: rebuilt.get_slot(name) for name in ("named", "appended", "joined")}
    assert slots["named"].merger.name == "issue11_latest_two"  # type: ignore[union-attr]
    assert slots["appended"].merger.name == "append"  # type: ignore[union-attr]
    assert slots["joined"].policy == AllSources(keep="all")  # type: ignore[union-attr]
    assert rebuilt.get_slot("windowed").policy == Window(2.5)  # type: ignore[union-attr]
    assert rebuilt.get_slot("nothing").handler is None  # type: ignore[union-attr]
    assert to_json(loaded.serialize()) == to_json(flow.serialize())


def _flow_of(routine: Routine) -> Flow:
    flow = Flow("refused")
    flow.add_routine(routine, "sink")
    return flow


def _closure() -> Any:
    seen: list[Any] = []

    def keep(value: Any) -> None:
        seen.append(value)

    return keep


class _Holder:
    def take(self, value: Any) -> None:
        RECEIVED.append(value)


class _OwnPolicy:
    name = "own"

    def open(self, sources: tuple[str, ...]) -> Any:
        return Batch(1).open(sources)

    def describe(self) -> dict[str, Any]:
        return {"name": "own"}


@pytest.mark.parametrize(
    ("define", "says"),
    [
        (lambda r: r.define_slot("input", handler=lambda value: None), "(a lambda)"),
        (lambda r: r.define_slot("input", handler=_closure()), "(a closure)"),
        (
            lambda r: r.define_slot("input", handler=functools.partial(record)),
            "a partial, not a function",
        ),
        (
            lambda r: r.define_slot("input", handler=_Holder().take),
            "a method, not a function",
        ),
        (
            lambda r: r.define_slot("input", handler=r.set_config),
            "methods of the Routine base",
        ),
        (
            lambda r: r.define_slot(
                "input", handler=record, merge_strategy=_keep_latest_two
            ),
            "register_merge_strategy",
        ),
        (
            lambda r: r.define_slot("input", handler=record, policy=_OwnPolicy()),
            "not one a document rebuilds",
        ),
    ],
    ids=[
        "lambda",
        "closure",
        "partial",
        "other-object",
        "base-method",
        "merge",
        "policy",
    ],
)
def test_what_a_document_cannot_name_is_refused_at_save(define: Any, says: str) -> None:
    routine = Routine()
    define(routine)
    flow = _flow_of(routine)
    for save in (flow.serialize, flow.to_json):
        with pytest.raises(SerializationError) as caught:
            save()
        message = str(caught.value)
        assert message.startswith("routines.sink.slots[0] (slot 'input'): ")
        assert says in message
    # Refusing changed nothing: the routine keeps its slot.
    assert list(flow.routines) == ["sink"] and routine.get_slot("input") is not None


def _document() -> dict[str, Any]:
    return build_09_flow().serialize()


def _sink_slot(document: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = document["routines"]["sink"]["slots"][0]
    return row


@pytest.mark.parametrize(
    ("mutate", "path", "says"),
    [
        (lambda d: None, "routines.sink.slots[0].instance.handler.function", "allowed"),
        (
            lambda d: _sink_slot(d)["instance"].update(
                handler={"function": "os:system"}
            ),
            "routines.sink.slots[0].instance.handler.function",
            "allowed_modules",
        ),
        (
            lambda d: _sink_slot(d)["instance"].update(handler={"method": "emit"}),
            "routines.sink.slots[0].instance.handler.method",
            "defines no method 'emit'",
        ),
        (
            lambda d: d["routines"]["counter"]["slots"][0]["instance"].update(
                handler={"method": "nope"}
            ),
            "routines.counter.slots[0].instance.handler.method",
            "Counter defines no method 'nope'",
        ),
        (
            lambda d: _sink_slot(d)["instance"].update(handler="record"),
            "routines.sink.slots[0].instance.handler",
            "expected null",
        ),
        (
            lambda d: _sink_slot(d)["instance"].update(policy={"name": ["each"]}),
            "routines.sink.slots[0].instance.policy.name",
            "expected one of ['all_sources', 'batch', 'each', 'window']",
        ),
        (
            lambda d: _sink_slot(d)["instance"].update(policy={"name": "sometimes"}),
            "routines.sink.slots[0].instance.policy.name",
            "expected",
        ),
        (
            lambda d: d["routines"]["batcher"]["slots"][0]["instance"].update(
                policy={"name": "batch", "size": 0}
            ),
            "routines.batcher.slots[0].instance.policy",
            "Batch size",
        ),
        (
            lambda d: _sink_slot(d)["instance"].update(extra=1),
            "routines.sink.slots[0].instance.extra",
            "not a known key",
        ),
        (
            lambda d: _sink_slot(d).update(merge_strategy="no-such-merge"),
            "routines.sink.slots[0]",
            "no-such-merge",
        ),
        (
            lambda d: _sink_slot(d).pop("instance"),
            "routines.sink.slots",
            "the class does not declare 'input' and its row has no 'instance'",
        ),
        (
            lambda d: d["routines"]["counter"]["events"][0].update(output_params=[1]),
            "routines.counter.events[0].output_params",
            "a list of names",
        ),
        (
            lambda d: d["routines"]["counter"]["events"].append(
                {"name": "output", "output_params": []}
            ),
            "routines.counter.events",
            "the document lists ['output', 'output']",
        ),
        (
            lambda d: d["routines"]["sink"]["slots"].append(
                {**_sink_slot(d), "handler": "other"}
            ),
            "routines.sink.slots",
            "the document lists ['input', 'input']",
        ),
    ],
    ids=[
        "module-not-allowed",
        "os-system",
        "base-method",
        "unknown-method",
        "bad-reference",
        "unhashable-policy",
        "unknown-policy",
        "bad-batch",
        "unknown-key",
        "unknown-merge",
        "no-instance-description",
        "bad-output-params",
        "duplicate-event",
        "duplicate-slot",
    ],
)
def test_a_bad_instance_row_is_refused_naming_its_path(
    mutate: Any, path: str, says: str
) -> None:
    document = _document()
    mutate(document)
    allowed = [] if says == "allowed" else HERE
    kept = copy.deepcopy(document)
    with pytest.raises(SerializationError) as caught:
        Flow.deserialize(document, allowed_modules=allowed)
    assert str(caught.value).startswith(f"{path}: "), caught.value
    assert says in str(caught.value)
    assert document == kept  # the document is not changed by reading it
    into = Flow("kept")
    with pytest.raises(SerializationError):
        into.deserialize(document, allowed_modules=allowed)
    assert into.flow_id == "kept" and not into.routines


def test_a_builtin_function_is_never_a_handler_even_from_an_allowed_module() -> None:
    document = _document()
    _sink_slot(document)["instance"]["handler"] = {"function": "os:system"}
    with pytest.raises(SerializationError, match="defines no function 'system'"):
        Flow.deserialize(document, allowed_modules=["os"])


def test_a_function_re_exported_under_another_name_is_refused() -> None:
    document = _document()
    _sink_slot(document)["instance"]["handler"] = {"function": f"{__name__}:alias"}
    with pytest.raises(SerializationError, match="defines no function 'alias'"):
        Flow.deserialize(document, allowed_modules=HERE)


alias = record


def test_a_routine_without_instance_items_writes_no_instance_keys() -> None:
    flow = Flow("plain")
    flow.add_routine(Doubler(), "d")
    assert '"instance"' not in json.dumps(flow.serialize())


class _Mixin:
    def __init__(self) -> None:
        super().__init__()
        self.ready = True


class MixedIn(_Mixin, Routine):
    """The constructor that runs is the mixin's: it still notes what was declared."""

    def take(self, value: Any) -> None:
        RECEIVED.append(value)


class Declares(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)

    def start(self) -> None:
        pass


class Inherits(Declares):
    """No constructor of its own: its base's notes what was declared."""


def test_declared_is_noted_whichever_constructor_runs_last() -> None:
    mixed = MixedIn()
    mixed.define_slot("input", handler=mixed.take)
    assert mixed.ready and mixed.get_spec().slots["input"].on_instance
    inherits = Inherits()
    inherits.define_slot("input", handler=record)
    spec = inherits.get_spec()
    assert not spec.slots["trigger"].on_instance and spec.slots["input"].on_instance
    flow = Flow("mixed")
    flow.add_routine(mixed, "m")
    flow.add_routine(inherits, "i")
    loaded = Flow.deserialize(flow.serialize(), allowed_modules=HERE)
    loaded.routines["m"].get_slot("input").receive({"value": 1})  # type: ignore[union-attr]
    loaded.routines["i"].get_slot("input").receive({"value": 2})  # type: ignore[union-attr]
    assert RECEIVED == [1, 2]
