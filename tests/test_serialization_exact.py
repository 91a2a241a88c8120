"""The fast ways documents are written and read keep every check of the slow ones.

``Flow.from_json`` and ``Flow.load`` read the document orjson decoded as it is;
loading compares a rebuilt routine with its entry without writing it out; the
common entry and connection are checked in one step; writing copies an entry in one
orjson round trip. Each falls back to the field-by-field way whenever anything is
off, so the messages are those of ``Flow.deserialize`` on a dict.
"""

from __future__ import annotations

import enum
import math
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routilux import Flow, Routine, SerializationError
from routilux.serialization import MAX_DEPTH

from .routines import Collector, Relay, Source
from .test_serialization import mutate, sample_flow
from .test_serialization_fuzz import ALLOWED, flow_documents, mutated

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def message_of(load: Callable[[], Any]) -> str:
    with pytest.raises(SerializationError) as caught:
        load()
    return str(caught.value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("routines.relay.config", [1]),
        ("routines.relay.config", KeyError),
        ("routines.relay.stats", None),
        ("routines.relay.max_concurrency", 0),
        ("routines.relay.max_concurrency", True),
        ("routines.relay.timeout", "1"),
        ("routines.relay.timeout", 0),
        ("routines.relay.error_handler", []),
        ("routines.relay.circuit_breaker", {"x": 1}),
        ("routines.relay.slots", {}),
        ("routines.relay.slots", KeyError),
        ("routines.relay.slots.0", "input"),
        ("routines.relay.slots.0.name", 3),
        ("routines.relay.slots.0.name", "in"),
        ("routines.relay.slots.0.merge_strategy", KeyError),
        ("routines.relay.slots.0.merge_strategy", 1),
        ("routines.relay.slots.0.merge_strategy", "zip"),
        ("routines.relay.slots.0.handler", "go"),
        ("routines.relay.events", None),
        ("routines.relay.events.0.output_params", []),
        ("routines.relay.extra", 1),
        ("routines.relay.max_concurrency", 2.0),
        ("connections.0", []),
        ("connections.0.source", ""),
        ("connections.0.event", 5),
        ("connections.0.slot", KeyError),
        ("connections.0.param_mapping", None),
        ("connections.0.param_mapping", {"a": 1}),
        ("connections.0.colour", "red"),
        ("connections.1.target", "ghost"),
    ],
)
def test_from_json_says_what_deserialize_says(path: str, value: Any) -> None:
    flow = sample_flow()
    document = mutate(flow.serialize(), path, value)
    flow.shutdown()
    said = message_of(lambda: Flow.deserialize(document))
    assert message_of(lambda: Flow.from_json(orjson.dumps(document))) == said


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("where", ["config", "stats"])
def test_a_read_document_is_still_limited_in_depth(where: str, tmp_path: Path) -> None:
    flow = sample_flow()
    document = flow.serialize()
    flow.shutdown()
    # The entry's config sits 3 levels down: 125 more levels are the most allowed.
    document["routines"]["relay"][where]["x"] = nested(124)
    loaded = Flow.from_json(orjson.dumps(document))
    assert loaded.to_json() == orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    loaded.shutdown()
    document["routines"]["relay"][where]["x"] = nested(125)
    said = message_of(lambda: Flow.deserialize(document))
    assert said.startswith(f"routines.relay.{where}.x[0]")
    assert f"nested more than {MAX_DEPTH} levels deep" in said
    assert message_of(lambda: Flow.from_json(orjson.dumps(document))) == said
    path = tmp_path / "deep.json"
    path.write_bytes(orjson.dumps(document))
    assert message_of(lambda: Flow.load(path)) == f"{path}: {said}"


@pytest.mark.parametrize(
    "path",
    [
        "routines.relay.error_handler.retryable_exceptions",
        "routines.relay.slots.0.handler",
        "routines.relay.extra",
        "routines.sink.config.x",
        "connections.1.param_mapping.value",
        "surprise",
    ],
)
def test_a_value_nested_too_deep_is_named_first_wherever_it_is(path: str) -> None:
    flow = sample_flow()
    document = flow.serialize()
    flow.shutdown()
    document["routines"]["relay"]["error_handler"] = {"strategy": "continue"}
    document = mutate(document, path, nested(MAX_DEPTH))  # and a bad handler before
    said = message_of(lambda: Flow.deserialize(document))
    assert f"nested more than {MAX_DEPTH} levels deep" in said
    assert message_of(lambda: Flow.from_json(orjson.dumps(document))) == said


class Shifty(Routine):
    """Rebuilds its config through ``shift``: a value equal to the original, or not."""

    shift: ClassVar[Callable[[Any], Any]] = staticmethod(lambda value: value)

    def __init__(self) -> None:
        super().__init__()
        self.set_config(x=1)
        self.define_slot("trigger")

    def deserialize(self, data: dict[str, Any]) -> None:
        super().deserialize(data)
        self.set_config(x=Shifty.shift(self.get_config("x")))


@pytest.mark.parametrize(
    ("original", "shift", "holds"),
    [
        (1, float, "1.0"),
        (1, bool, "True"),
        (0.0, lambda v: -v, "-0.0"),
        (None, lambda v: math.nan, "nan"),
        ([1, 2], lambda v: [1, 2.0], "2.0"),
        ({"a": 1}, lambda v: {"a": True}, "True"),
    ],
)
def test_a_rebuilt_value_must_be_written_exactly_as_read(
    original: Any, shift: Callable[[Any], Any], holds: str
) -> None:
    flow = Flow()
    routine = Shifty()
    routine.set_config(x=original)
    flow.add_routine(routine, "shifty")
    document = flow.serialize()
    raw = flow.to_json()
    flow.shutdown()
    Shifty.shift = staticmethod(shift)  # type: ignore[assignment]
    try:
        said = message_of(lambda: Flow.deserialize(document))
        assert message_of(lambda: Flow.from_json(raw)) == said
    finally:
        Shifty.shift = staticmethod(lambda value: value)  # type: ignore[assignment]
    assert said.startswith("routines.shifty.config") or "written back" in said
    assert holds in said


def test_a_list_rebuilt_as_a_tuple_no_longer_writes_back_alike() -> None:
    # Before issue 10 a tuple was written as a list, so this loaded; now a
    # tuple is kept as one, and the rebuilt routine holds another value.
    flow = Flow()
    routine = Shifty()
    routine.set_config(x=[1, 2])
    flow.add_routine(routine, "shifty")
    raw = flow.to_json()
    flow.shutdown()
    Shifty.shift = staticmethod(tuple)  # type: ignore[assignment]
    try:
        with pytest.raises(SerializationError, match=r"routines.shifty.config"):
            Flow.from_json(raw)
    finally:
        Shifty.shift = staticmethod(lambda value: value)  # type: ignore[assignment]


class Plain(enum.Enum):
    ONE = 1


@pytest.mark.parametrize(
    "value", [uuid.UUID(int=1), Plain.ONE, {"a": (1, math.inf)}, {"$a": [1]}]
)
def test_values_orjson_would_write_changed_are_tagged_and_read_back(
    value: Any,
) -> None:
    # Before issue 10 these were refused; orjson alone would change them.
    relay = Relay()
    relay.set_config(x=value)
    flow = Flow()
    flow.add_routine(relay, "relay")
    raw = flow.to_json()
    flow.shutdown()
    loaded = Flow.from_json(raw)
    again = loaded.routines["relay"].get_config("x")
    assert repr(again) == repr(value) and type(again) is type(value)
    assert loaded.to_json() == raw
    loaded.shutdown()


class Named(Routine):
    """Slots and events with names beyond ASCII."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("entrée", handler=self.go)
        self.define_event("sortie", ["valeur_é"])

    def go(self, **data: Any) -> None:
        self.emit("sortie", **data)


def test_names_beyond_ascii_round_trip() -> None:
    flow = Flow()
    flow.add_routine(Named(), "named")
    flow.add_routine(Collector(), "sink")
    flow.connect("named", "sortie", "sink", "input", {"valeur_é": "v"})
    raw = flow.to_json()
    loaded = Flow.from_json(raw)
    assert loaded.to_json() == raw
    assert loaded.serialize()["routines"]["named"]["slots"][0]["name"] == "entrée"
    flow.shutdown()
    loaded.shutdown()


class Tag(str, enum.Enum):
    IN = "in"


class Tagged(Routine):
    """A slot named by a str subclass, and an event documenting a lone surrogate."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot(Tag.IN, handler=self.go)
        self.define_event("out", ["fine"])

    def go(self, **data: Any) -> None:
        self.emit("out", **data)


def test_names_that_are_not_plain_text_are_written_as_plain_text() -> None:
    flow = Flow()
    tagged = Tagged()
    flow.add_routine(tagged, "tagged")
    row = flow.serialize()["routines"]["tagged"]["slots"][0]
    assert row["name"] == "in" and type(row["name"]) is str
    event = tagged.get_event("out")
    assert event is not None
    event.output_params.append("\ud800")
    tagged.define_event("later")  # a new spec, listing the surrogate
    with pytest.raises(
        SerializationError,
        match=r"^routines.tagged.events\[0\].output_params\[1\]: text with a lone",
    ):
        flow.serialize()
    flow.shutdown()


def test_connections_are_written_in_the_order_they_were_made() -> None:
    flow = Flow()
    flow.add_routine(Source(), "src")
    for name in ("a", "b", "c"):
        flow.add_routine(Collector(), name)
        flow.connect("src", "output", name, "input")
    flow.disconnect("src", "output", "a", "input")
    flow.connect("src", "output", "a", "input", {"value": "v"})
    written = flow.serialize()["connections"]
    assert [c["target"] for c in written] == ["b", "c", "a"]
    assert [c["param_mapping"] for c in written] == [{}, {}, {"value": "v"}]
    assert written == [
        {
            "source": c.source_routine_id,
            "event": c.source_event.name if c.source_event else None,
            "target": c.target_routine_id,
            "slot": c.target_slot.name if c.target_slot else None,
            "param_mapping": c.param_mapping,
        }
        for c in flow.connections
    ]
    loaded = Flow.from_json(flow.to_json())
    assert loaded.serialize()["connections"] == written
    flow.shutdown()
    loaded.shutdown()


def test_a_written_document_shares_nothing_with_the_flow() -> None:
    flow = Flow()
    source = Source()
    source.set_config(nested={"list": [1, 2]})
    source.set_stat("seen", [3])
    flow.add_routine(source, "src")
    document = flow.serialize()
    entry = document["routines"]["src"]
    entry["config"]["nested"]["list"].append(9)
    entry["stats"]["seen"].append(9)
    entry["slots"][0]["name"] = "changed"
    entry["events"][0]["output_params"].append("changed")
    assert source.get_config("nested") == {"list": [1, 2]}
    assert source.get_stat("seen") == [3]
    assert flow.serialize()["routines"]["src"]["slots"][0]["name"] == "trigger"
    assert flow.serialize()["routines"]["src"]["events"][0]["output_params"] == [
        "value",
        "tag",
    ]
    flow.shutdown()


def test_setting_the_same_value_keeps_a_routines_spec() -> None:
    relay = Relay()
    spec = relay.get_spec()
    relay.set_timeout(None)
    relay.set_error_handler(None)
    relay.set_max_concurrency(None)
    assert relay.get_spec() is spec
    relay.set_timeout(1.5)
    changed = relay.get_spec()
    assert changed is not spec and changed.timeout == 1.5
    relay.set_max_concurrency(2)
    assert relay.get_spec().max_concurrency == 2


def outcome(load: Callable[[], Flow]) -> str:
    """What loading gives: the document written back, or the error's message."""
    try:
        flow = load()
    except SerializationError as exc:
        return f"error: {exc}"
    try:
        return flow.to_json().decode()
    finally:
        flow.shutdown()


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_from_json_and_deserialize_agree_on_any_mutated_document(
    data: st.DataObject,
) -> None:
    document = data.draw(mutated(flow_documents()))
    if data.draw(st.booleans()):  # and now and then a value nested near the limit
        routines = document.get("routines")
        if isinstance(routines, dict) and isinstance(routines.get("relay"), dict):
            depth = data.draw(
                st.sampled_from([MAX_DEPTH - 4, MAX_DEPTH - 3, MAX_DEPTH])
            )
            routines["relay"]["config"] = {"deep": nested(depth)}
    try:
        raw = orjson.dumps(document)
    except TypeError:
        return  # not JSON: from_json never sees it
    plain = orjson.loads(raw)
    read = outcome(lambda: Flow.deserialize(plain, allowed_modules=ALLOWED))
    assert outcome(lambda: Flow.from_json(raw, allowed_modules=ALLOWED)) == read
