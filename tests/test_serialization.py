"""Flow documents and JobState documents: round trips and safe refusals."""

from __future__ import annotations

import enum
import functools
import importlib.util
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from routilux import (
    ErrorHandler,
    Flow,
    JobState,
    Routine,
    SerializationError,
    register_merge_strategy,
)
from routilux.exceptions import RoutineTimeoutError
from routilux.serialization import MAX_DEPTH, SCHEMA_VERSION

from .routines import Boom, Collector, Relay, Source

if TYPE_CHECKING:
    from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def sample_flow() -> Flow:
    flow = Flow(flow_id="doc", execution_strategy="concurrent", max_workers=3)
    source = Source()
    source.set_config(count=2, tag="x")
    relay = Relay()
    relay.set_config(add=5)
    relay.set_error_handler(ErrorHandler(strategy="continue"))
    relay.set_max_concurrency(2)
    flow.add_routine(source, "src")
    flow.add_routine(relay, "relay")
    flow.add_routine(Collector(), "sink")
    flow.connect("src", "output", "relay", "input")
    flow.connect("relay", "output", "sink", "input", {"value": "result"})
    flow.set_error_handler(ErrorHandler(strategy="stop"))
    return flow


def test_round_trip_is_stable_and_json_ready() -> None:
    flow = sample_flow()
    document = flow.serialize()
    assert document["schema_version"] == SCHEMA_VERSION == 2
    assert orjson.loads(orjson.dumps(document)) == document
    restored = Flow.deserialize(document)
    assert restored.serialize() == document
    assert (restored.execution_strategy, restored.max_workers) == ("concurrent", 3)
    relay = restored.routines["relay"]
    assert relay.get_config("add") == 5 and relay.get_max_concurrency() == 2
    handler = relay.get_error_handler()
    assert handler is not None and handler.strategy == "continue"
    flow.shutdown()
    restored.shutdown()


def test_instance_call_fills_the_flow() -> None:
    flow = sample_flow()
    empty = Flow()
    returned = empty.deserialize(flow.serialize())
    assert returned is empty
    assert set(empty.routines) == {"src", "relay", "sink"}
    assert empty.flow_id == "doc" and empty.execution_strategy == "concurrent"
    flow.shutdown()
    empty.shutdown()


def test_restored_flow_runs() -> None:
    flow = sample_flow()
    restored = Flow.from_json(flow.to_json())
    with restored:
        job = restored.execute("src")
        assert restored.wait_for_completion(timeout=10)
    sink = restored.routines["sink"]
    assert isinstance(sink, Collector)
    assert job.status == "completed"
    assert sorted(item["result"] for item in sink.received) == [5, 6]
    flow.shutdown()


def test_save_and_load(tmp_path: Path) -> None:
    flow = sample_flow()
    path = tmp_path / "nested" / "flow.json"
    flow.save(path)
    loaded = Flow.load(path)
    assert loaded.serialize() == flow.serialize()
    flow.shutdown()
    loaded.shutdown()


def mutate(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = orjson.loads(orjson.dumps(document))
    target: Any = copy
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last: Any = int(keys[-1]) if isinstance(target, list) else keys[-1]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return copy


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("schema_version", 99, "schema_version"),
        ("schema_version", KeyError, "schema_version"),
        ("routines.relay.class", "nowhere:Ghost", "routines.relay.class"),
        ("routines.relay.config", [1], "routines.relay.config"),
        ("routines", [], "routines"),
        ("connections", {}, "connections"),
        ("connections.0.event", "nosuch", "connections[0]"),
        ("connections.1.target", "ghost", "connections[1]"),
        ("max_workers", 0, "max_workers"),
        ("execution_strategy", "warp", "warp"),
    ],
)
def test_bad_documents_name_the_path(path: str, value: Any, named: str) -> None:
    flow = sample_flow()
    document = flow.serialize()
    target = Flow(flow_id="target")
    with pytest.raises(SerializationError, match=named.replace("[", r"\[")):
        target.deserialize(mutate(document, path, value))
    assert dict(target.routines) == {} and target.flow_id == "target"
    flow.shutdown()
    target.shutdown()


@pytest.mark.parametrize("raw", [b"", b"[1]", b"{", b'{"schema_version": 1}', b"null"])
def test_bad_json_is_a_serialization_error(raw: bytes) -> None:
    with pytest.raises(SerializationError):
        Flow.from_json(raw)


def test_routine_needing_constructor_arguments_says_so() -> None:
    class Needy(Routine):
        def __init__(self, url: str) -> None:
            super().__init__()
            self.url = url

    flow = Flow()
    flow.add_routine(Needy("http://x"), "needy")
    with pytest.raises(SerializationError, match=r"needy.*url"):
        flow.serialize()


def test_config_that_is_not_json_ready() -> None:
    flow = Flow()
    relay = Relay()
    relay.set_config(handle=object())
    flow.add_routine(relay, "relay")
    with pytest.raises(SerializationError, match=r"routines\.relay\.config"):
        flow.serialize()


def test_job_state_round_trip(tmp_path: Path) -> None:
    flow = sample_flow()
    flow.set_execution_strategy("sequential")
    job = flow.execute("src")
    document = job.serialize()
    assert orjson.loads(orjson.dumps(document)) == document
    restored = JobState.deserialize(document)
    assert restored.job_id == job.job_id and restored.status == "completed"
    assert restored.routine_states == job.routine_states
    assert [(r.routine_id, r.event_name) for r in restored.execution_history] == [
        (r.routine_id, r.event_name) for r in job.execution_history
    ]
    path = tmp_path / "a" / "job.json"
    job.save(path)
    assert JobState.load(path).serialize() == document
    flow.shutdown()


def test_job_state_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        JobState.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"status": "exploded"}')
    with pytest.raises(SerializationError, match=r"bad\.json"):
        JobState.load(bad)
    with pytest.raises(ValueError, match=r"bad\.json"):
        JobState.load(bad)


def test_job_status_assignment_is_validated() -> None:
    job = JobState("f")
    job.status = "paused"  # type: ignore[assignment]
    assert job.status == "paused"
    with pytest.raises(ValueError, match="status"):
        job.status = "exploded"  # type: ignore[assignment]
    assert job.status == "paused"


# -- every example flow round-trips to the same bytes ----------------------------------


@functools.cache
def example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` once, as module ``example_<name>``."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def basic_example_flow() -> Flow:
    basic = example("basic_example")
    flow = Flow("basic")
    flow.add_routine(basic.NumberSource(), "source")
    flow.add_routine(basic.Squarer(), "squarer")
    flow.add_routine(basic.Printer(), "printer")
    flow.connect("source", "numbers", "squarer", "input", {"values": "items"})
    flow.connect("squarer", "squares", "printer", "input")
    return flow


def demo_flow() -> Flow:
    demo = example("concurrent_flow_demo")
    flow: Flow = demo.build_flow("demo", max_workers=3, failing=("inventory",))
    flow.set_error_handler(ErrorHandler(strategy="continue"))
    return flow


def error_handling_example_flow() -> Flow:
    errors = example("error_handling_example")
    flow, _ = errors.gated_flow("errors")
    fragile, service, backend = (
        errors.Fragile(),
        errors.FlakyService(),
        errors.Unreliable(),
    )
    fragile.set_error_handler(ErrorHandler(strategy="skip"))
    service.set_error_handler(
        ErrorHandler("retry", 3, 0.05, 2.0, retryable_exceptions=(ConnectionError,))
    )
    backend.set_circuit_breaker(failure_threshold=3, reset_timeout=30.0)
    backend.set_error_handler(ErrorHandler("continue"))
    flow.add_routine(errors.Start(), "start")
    flow.add_routine(fragile, "fragile")
    flow.add_routine(errors.Sink(), "sink")
    flow.add_routine(service, "service")
    flow.add_routine(backend, "backend")
    flow.connect("start", "output", "fragile", "input")
    flow.connect("fragile", "output", "sink", "input")
    flow.connect("service", "output", "sink", "input")
    return flow


register_merge_strategy("keep_first", lambda old, new: {**new, **old})


def everything_flow() -> Flow:
    """Every setting a document keeps, away from its default."""
    flow = Flow(
        "everything",
        "concurrent",
        2,
        error_handler=ErrorHandler("retry", 2, 0, 3, (KeyError,), is_critical=True),
        history_limit=50,
        default_timeout=30,
    )
    source = Source()
    source.set_config(count=3, tag=("t", 1), nested={"a": [1, 2.5, None, True]})
    source.set_timeout(2)
    source.set_circuit_breaker(4, 10)
    source.set_stat("runs", 7)
    source.increment_stat("seen", 2.5)
    relay = Relay()
    relay.set_as_critical(max_retries=1, retry_delay=0, retry_backoff=1)
    relay.set_error_handler(
        ErrorHandler("retry", retryable_exceptions=(RoutineTimeoutError, OSError))
    )
    optional = Boom()
    optional.set_as_optional("skip")
    flow.add_routine(source, "source")
    flow.add_routine(relay, "relay")
    flow.add_routine(Collector("append"), "appender")
    flow.add_routine(Collector("keep_first"), "first")
    flow.add_routine(optional, "boom")
    flow.connect("source", "output", "relay", "input", {"value": "value"})
    flow.connect("relay", "output", "appender", "input", {"value": "v", "tag": "t"})
    flow.connect("relay", "output", "first", "input")
    flow.connect("source", "output", "boom", "input")
    flow.connect("boom", "output", "boom", "trigger")
    return flow


FLOWS = {
    "sample": sample_flow,
    "basic_example": basic_example_flow,
    "concurrent_flow_demo": demo_flow,
    "error_handling_example": error_handling_example_flow,
    "everything": everything_flow,
}


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_example_flows_round_trip_to_identical_bytes(name: str) -> None:
    original = FLOWS[name]()
    raw = original.to_json()
    document = original.serialize()
    assert orjson.loads(raw) == document
    from_dict = Flow.deserialize(document)
    from_bytes = Flow.from_json(raw)
    filled = Flow().deserialize(orjson.loads(raw))
    try:
        for restored in (from_dict, from_bytes, filled):
            assert restored.to_json() == raw
        assert orjson.dumps(from_dict.serialize()) == orjson.dumps(document)
    finally:
        for flow in (original, from_dict, from_bytes, filled):
            flow.shutdown()


def test_everything_is_restored() -> None:
    with everything_flow() as original:
        flow = Flow.from_json(original.to_json())
    try:
        assert (flow.history_limit, flow.default_timeout) == (50, 30)
        assert flow.error_handler is not None
        assert flow.error_handler.retryable_exceptions == (KeyError,)
        source, relay = flow.routines["source"], flow.routines["relay"]
        tag = source.get_config("tag")
        assert tag == ("t", 1) and type(tag) is tuple  # issue 10: types kept
        assert source.get_timeout() == 2.0
        breaker = source.get_circuit_breaker()
        assert breaker is not None
        assert (breaker.failure_threshold, breaker.reset_timeout) == (4, 10.0)
        assert source.get_stat("runs") == 7 and source.get_stat("seen") == 2.5
        handler = relay.get_error_handler()
        assert handler is not None
        assert handler.retryable_exceptions == (RoutineTimeoutError, OSError)
        boom_handler = flow.routines["boom"].get_error_handler()
        assert boom_handler is not None and boom_handler.is_optional
        for rid, merge in (("appender", "append"), ("first", "keep_first")):
            slot = flow.routines[rid].get_slot("input")
            assert slot is not None and slot.merger.name == merge
    finally:
        flow.shutdown()


def test_save_writes_indented_json_in_one_step(tmp_path: Path) -> None:
    flow = everything_flow()
    path = tmp_path / "a" / "b" / "flow.json"
    flow.save(path)
    flow.save(path)  # replacing works too
    assert path.read_bytes().startswith(b'{\n  "connections"')
    assert [p.name for p in path.parent.iterdir()] == ["flow.json"]
    loaded = Flow.load(str(path))
    assert loaded.to_json() == flow.to_json()
    flow.shutdown()
    loaded.shutdown()


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Flow.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    for text in ('{"schema_version": 2', "[]", '{"schema_version": 2}'):
        bad.write_text(text)
        with pytest.raises(SerializationError, match=r"bad\.json: "):
            Flow.load(bad)


class SubFlow(Flow):
    pass


def test_class_call_on_a_subclass_builds_the_subclass() -> None:
    flow = sample_flow()
    restored = SubFlow.deserialize(flow.serialize())
    from_bytes = SubFlow.from_json(flow.to_json())
    assert type(restored) is SubFlow and type(from_bytes) is SubFlow
    for each in (flow, restored, from_bytes):
        each.shutdown()


# -- versions --------------------------------------------------------------------------


def version_1(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as the first cut wrote it."""
    old: dict[str, Any] = orjson.loads(orjson.dumps(document))
    old["schema_version"] = 1
    del old["default_timeout"], old["history_limit"]
    for entry in old["routines"].values():
        for key in ("stats", "slots", "events", "timeout", "circuit_breaker"):
            del entry[key]
    return old


def test_version_1_documents_still_load() -> None:
    flow = sample_flow()
    restored = Flow.deserialize(version_1(flow.serialize()))
    assert restored.to_json() == flow.to_json()
    flow.shutdown()
    restored.shutdown()


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (3, r"schema_version: 3 is newer .* upgrade routilux"),
        (0, r"schema_version: 0 is not a version this routilux reads \(1 to 2\)"),
        (True, r"schema_version: expected an integer"),
        ("2", r"schema_version: expected an integer"),
    ],
)
def test_other_versions_are_refused(version: Any, message: str) -> None:
    flow = sample_flow()
    document = flow.serialize()
    document["schema_version"] = version
    with pytest.raises(SerializationError, match=message):
        Flow.deserialize(document)
    flow.shutdown()


# -- refusals --------------------------------------------------------------------------


def test_failed_fill_leaves_the_flow_unchanged() -> None:
    flow = sample_flow()
    document = flow.serialize()
    document["connections"][1]["slot"] = "nosuch"
    handler = ErrorHandler("skip")
    target = Flow("target", "concurrent", 2, error_handler=handler, history_limit=3)
    with pytest.raises(SerializationError, match=r"connections\[1\]: .*nosuch"):
        target.deserialize(document)
    assert target.flow_id == "target" and target.error_handler is handler
    assert (target.execution_strategy, target.max_workers) == ("concurrent", 2)
    assert (target.history_limit, target.default_timeout) == (3, None)
    assert dict(target.routines) == {} and target.connections == []
    assert list(target.graph.nodes) == []
    flow.shutdown()
    target.shutdown()


def test_fill_refuses_a_flow_with_routines() -> None:
    flow = sample_flow()
    with pytest.raises(SerializationError, match="already has routines"):
        flow.deserialize(flow.serialize())
    assert len(flow.routines) == 3
    flow.shutdown()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("surprise", 1, r"^surprise: not a known key"),
        ("kind", "routilux.job", r"^kind: expected 'routilux.flow'"),
        ("flow_id", "", r"^flow_id: expected a non-empty string"),
        ("max_workers", 2000, r"^max_workers: expected an int from 1 to 1024"),
        ("max_workers", True, r"^max_workers"),
        ("history_limit", 0, r"^history_limit"),
        ("default_timeout", -1, r"^default_timeout"),
        ("error_handler", [], r"^error_handler: expected null or an object"),
        ("error_handler.strategy", "panic", r"^error_handler.strategy: expected one"),
        ("routines.", {}, r"^routines: a routine id must not be empty"),
        ("routines.relay", 3, r"^routines.relay: expected an object"),
        ("routines.relay.class", 3, r"^routines.relay.class: expected"),
        ("routines.relay.class", "no_colon", r"^routines.relay.class: unknown"),
        ("routines.relay.extra", 1, r"^routines.relay.extra: not a known key"),
        ("routines.relay.config", KeyError, r"^routines.relay.config: missing"),
        ("routines.relay.stats", None, r"^routines.relay.stats: expected an object"),
        ("routines.relay.max_concurrency", 0, r"^routines.relay.max_concurrency"),
        ("routines.relay.timeout", "1", r"^routines.relay.timeout"),
        ("routines.relay.circuit_breaker", {"x": 1}, r"circuit_breaker.x: not a"),
        ("routines.relay.slots", {}, r"^routines.relay.slots: expected a list"),
        ("routines.relay.slots.0.name", "in", r"^routines.relay.slots: the doc"),
        ("routines.relay.slots.0.merge_strategy", "zip", r"slots\[0\].merge_strat"),
        ("routines.relay.slots.0.handler", "go", r"^routines.relay.slots\[0\]: the"),
        ("routines.relay.events", [], r"^routines.relay.events: the document lists"),
        ("routines.relay.events.0.output_params", [], r"relay.events\[0\]: the"),
        ("routines.relay.error_handler.retry_backoff", 0, r"relay.error_handler.ret"),
        ("connections.0", [], r"^connections\[0\]: expected an object"),
        ("connections.0.source", None, r"^connections\[0\].source: expected"),
        ("connections.0.param_mapping", {"a": 1}, r"^connections\[0\].param_map"),
        ("connections.0.colour", "red", r"^connections\[0\].colour: not a known"),
    ],
)
def test_every_problem_names_its_path(path: str, value: Any, message: str) -> None:
    flow = sample_flow()
    document = flow.serialize()
    flow.shutdown()
    document["routines"]["relay"]["error_handler"] = ErrorHandler().serialize()
    with pytest.raises(SerializationError, match=message):
        Flow.deserialize(mutate(document, path, value))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), r"config.x: nan is not a JSON number"),
        (2**64, r"config.x: integer outside 64 bits"),
        ({1: "a"}, r"config.x: key 1 is not text"),
        ("\ud800", r"config.x: text with a lone surrogate"),
        ({"deep": object()}, r"config.x.deep: object is not a JSON value"),
        ([[1, {2}]], r"config.x\[0\]\[1\]: set is not a JSON value"),
    ],
)
def test_values_json_cannot_hold_are_refused_both_ways(
    value: Any, message: str
) -> None:
    # Issue 10: writing tags what JSON cannot hold as itself (NaN, big ints,
    # int keys, sets) and refuses the rest; a document handed in as Python
    # values must still be plain JSON.
    relay = Relay()
    relay.set_config(x=value)
    flow = Flow()
    flow.add_routine(relay, "relay")
    if isinstance(value, str) or "object" in message:
        written = message.replace("is not a JSON value", "is not a value routilux")
        with pytest.raises(SerializationError, match=r"^routines.relay." + written):
            flow.serialize()
    else:
        again = Flow.from_json(flow.to_json()).routines["relay"].get_config("x")
        assert repr(again) == repr(value) and type(again) is type(value)
    relay.set_config(x=1)
    document = flow.serialize()
    document["routines"]["relay"]["config"]["x"] = value
    with pytest.raises(SerializationError, match=r"^routines.relay." + message):
        Flow.deserialize(document)


def test_nesting_is_limited() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH):
        deep = [deep]
    relay = Relay()
    relay.set_config(x=deep)
    flow = Flow()
    flow.add_routine(relay, "relay")
    with pytest.raises(SerializationError, match=r"nested more than 128 levels"):
        flow.serialize()
    cycle: list[Any] = []
    cycle.append(cycle)
    relay.set_config(x=cycle)
    with pytest.raises(SerializationError, match=r"nested more than"):
        flow.serialize()


class Colour(str, enum.Enum):
    RED = "red"


def test_enum_members_and_tuples_in_configs_keep_their_types() -> None:
    # Before issue 10 they were written as the plain values ("red", [1, 2]).
    relay = Relay()
    relay.set_config(colour=Colour.RED, pair=(1, 2))
    flow = Flow()
    flow.add_routine(relay, "relay")
    document = flow.serialize()
    config = document["routines"]["relay"]["config"]
    assert config == {
        "add": 0,
        "colour": {"$enum": [f"{__name__}:Colour", "red"]},
        "pair": {"$tuple": [1, 2]},
    }
    loaded = Flow.deserialize(document)
    assert loaded.routines["relay"].get_config("colour") is Colour.RED
    assert loaded.routines["relay"].get_config("pair") == (1, 2)
    assert loaded.to_json() == flow.to_json()


def test_sequential_flows_have_one_worker() -> None:
    document = Flow("s").serialize()
    document["max_workers"] = 4
    with pytest.raises(SerializationError, match=r"sequential strategy runs on 1"):
        Flow.deserialize(document)


def test_exception_types_outside_builtins_need_the_allow_list() -> None:
    flow = Flow("x", error_handler=ErrorHandler("retry"))
    document = flow.serialize()
    document["error_handler"]["retryable_exceptions"] = ["json.JSONDecodeError"]
    with pytest.raises(SerializationError, match=r"list its module in allowed_mod"):
        Flow.deserialize(document)
    restored = Flow.deserialize(document, allowed_modules=["json"])
    assert restored.error_handler is not None
    assert restored.error_handler.retryable_exceptions[0].__name__ == "JSONDecodeError"
    for name in ("builtins.len", "builtins.Nothing", "routilux.exceptions.x"):
        document["error_handler"]["retryable_exceptions"] = [name]
        with pytest.raises(SerializationError, match=r"is not an exception type"):
            Flow.deserialize(document)


class Picky(Routine):
    def __init__(self) -> None:
        super().__init__()
        if Picky.refuse:
            raise RuntimeError("not today")
        self.define_slot("trigger")

    refuse = False


def test_a_constructor_that_raises_is_reported() -> None:
    flow = Flow()
    flow.add_routine(Picky(), "picky")
    document = flow.serialize()
    Picky.refuse = True
    try:
        with pytest.raises(
            SerializationError, match=r"routines.picky.class: Picky\(\) raised Runt"
        ):
            Flow.deserialize(document)
    finally:
        Picky.refuse = False


# -- allowed_modules -------------------------------------------------------------------

ALLOWED_SOURCE = """
from routilux import Routine

class Thing(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("done", ["x"])

    def go(self, **data):
        self.emit("done", x=1)

class NotARoutine:
    pass
"""


@pytest.fixture
def fresh_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of an importable module nobody has imported yet."""
    name = f"allowed_{uuid.uuid4().hex}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "things.py").write_text(ALLOWED_SOURCE)
    (package / "broken.py").write_text("raise ImportError('half installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def thing_document(key: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "class": key,
        "config": {},
        "max_concurrency": None,
        "error_handler": None,
        "timeout": None,
        "circuit_breaker": None,
        "stats": {},
        "slots": [{"name": "trigger", "merge_strategy": "override", "handler": "go"}],
        "events": [{"name": "done", "output_params": ["x"]}],
    }
    document = Flow("things").serialize()
    document["routines"] = {"thing": entry}
    return document


def test_allowed_modules_imports_exactly_the_listed_module(fresh_module: str) -> None:
    module = f"{fresh_module}.things"
    document = thing_document(f"{module}:Thing")
    with pytest.raises(SerializationError, match=r"not in allowed_modules"):
        Flow.deserialize(document)
    with pytest.raises(SerializationError, match=r"not in allowed_modules"):
        Flow.deserialize(document, allowed_modules=[fresh_module])  # no submodules
    assert fresh_module not in sys.modules and module not in sys.modules
    flow = Flow.deserialize(document, allowed_modules=[module])
    assert type(flow.routines["thing"]).__module__ == module
    assert flow.to_json() == Flow.from_json(flow.to_json()).to_json()


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        ("things:NotARoutine", r"has no Routine subclass 'NotARoutine'"),
        ("things:Ghost", r"has no 'Ghost'"),
        ("things:Thing.__init__", r"has no Routine subclass 'Thing.__init__'"),
        ("broken:Thing", r"importing allowed module .* ImportError: half installed"),
    ],
)
def test_allowed_modules_refusals(fresh_module: str, suffix: str, message: str) -> None:
    module, _, _ = suffix.partition(":")
    document = thing_document(f"{fresh_module}.{suffix}")
    with pytest.raises(
        SerializationError, match=r"^routines.thing.class: .*" + message
    ):
        Flow.deserialize(document, allowed_modules=[f"{fresh_module}.{module}"])


@pytest.mark.parametrize("allowed", ["tests.routines", ["../x"], [3], 7])
def test_allowed_modules_must_be_a_list_of_names(allowed: Any) -> None:
    with pytest.raises(SerializationError, match=r"allowed_modules"):
        Flow.deserialize(Flow("x").serialize(), allowed_modules=allowed)


# -- JobState documents ---------------------------------------------------------------


def finished_job() -> dict[str, Any]:
    with Flow("jobs") as flow:
        flow.add_routine(Source(), "src")
        flow.add_routine(Collector(), "sink")
        flow.connect("src", "output", "sink", "input")
        return flow.execute("src").serialize()


def test_job_documents_carry_a_version_and_older_ones_load() -> None:
    document = finished_job()
    assert (document["schema_version"], document["kind"]) == (1, "routilux.job")
    del document["schema_version"], document["kind"]
    restored = JobState.deserialize(document)
    assert restored.serialize() == finished_job() | {
        k: restored.serialize()[k]
        for k in ("job_id", "created_at", "updated_at", "execution_history")
    }


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("schema_version", 2, r"^schema_version: 2 is not supported"),
        ("schema_version", True, r"^schema_version: True is not supported"),
        ("kind", "routilux.flow", r"^kind: expected 'routilux.job'"),
        ("surprise", 1, r"^surprise: not a JobState field"),
        ("status", "exploded", r"^status: Input should be 'pending'"),
        ("routine_states.src", [], r"^routine_states.src: Input should be a valid"),
        ("created_at", "soon", r"^created_at: Input should be a valid datetime"),
        ("execution_history", {}, r"^execution_history: expected a list"),
        ("execution_history.0", 3, r"^execution_history\[0\]: expected an object"),
        ("execution_history.1.colour", 1, r"^execution_history\[1\].colour: not a"),
        ("execution_history.0.routine_id", 5, r"^execution_history\[0\].routine_id"),
        (
            "execution_history.0.timestamp",
            "0001-01-01T00:00:00+01:00",
            r"^execution_history\[0\].timestamp: out of range",
        ),
        ("pending_tasks", [{"slot": "input"}], r"^pending_tasks\[0\].routine_id"),
        (
            "pending_tasks",
            [{"routine_id": "a", "slot": "b", "payload": [1]}],
            r"^pending_tasks\[0\].payload: expected an object",
        ),
        ("job_id", float("nan"), r"^job_id: nan is not a JSON number"),
        (
            "pending_tasks",
            [{"routine_id": "a", "slot": "b", "payload": []}],
            "got list",
        ),
    ],
)
def test_bad_job_documents_name_the_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        JobState.deserialize(mutate(finished_job(), path, value))


@pytest.mark.parametrize("value", [None, [], "job", 3, 2.5, True])
def test_a_job_document_is_an_object(value: Any) -> None:
    with pytest.raises(SerializationError, match=r"must be an object"):
        JobState.deserialize(value)


def test_history_timestamps_without_a_zone_are_utc() -> None:
    document = finished_job()
    document["execution_history"][0]["timestamp"] = "2024-05-06T07:08:09"
    first = JobState.deserialize(document).execution_history[0]
    assert first.timestamp.isoformat() == "2024-05-06T07:08:09+00:00"


def test_a_loaded_paused_job_counts_as_stopped() -> None:
    paused = JobState("f", status="paused")
    paused.pending_tasks = [{"routine_id": "a", "slot": "b", "payload": {"x": 1}}]
    restored = JobState.deserialize(paused.serialize())
    assert restored.is_done and restored.wait(0)
    assert restored.pending_tasks == paused.pending_tasks
    assert not JobState.deserialize(JobState("f").serialize()).is_done


def test_payloads_no_encoding_holds_are_refused_not_written_as_repr() -> None:
    # Before issue 10 they were written as their repr(); a 128-bit int failed.
    job = JobState("f")
    job.routine_states["a"] = {"status": "completed", "result": {1, 2}}
    job.record_execution("a", "output", {"big": 2**70})
    document = job.serialize()
    assert document["created_at"].endswith("Z")  # pydantic writes the other fields
    assert JobState.deserialize(document).serialize() == document
    restored = JobState.deserialize(document)
    assert restored.routine_states["a"]["result"] == {1, 2}
    assert restored.execution_history[0].data == {"big": 2**70}
    job.record_execution("a", "output", {"value": object})
    with pytest.raises(
        SerializationError,
        match=r"cannot be written: execution_history\[1\].data.value: type is not",
    ):
        job.serialize()


def test_job_save_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    job = JobState.deserialize(finished_job())
    path = tmp_path / "deep" / "job.json"
    job.save(path)
    job.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["job.json"]
    assert JobState.load(path).serialize() == job.serialize()
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(SerializationError, match=r"job\.json: not valid JSON"):
        JobState.load(path)


def test_settings_a_document_cannot_rebuild_are_refused_when_writing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import routilux.serialization._writer as writer

    flow = Flow("w", "concurrent", 3)
    try:
        monkeypatch.setattr(writer, "MAX_WORKERS", 2)
        with pytest.raises(SerializationError, match=r"^max_workers: 3 cannot be"):
            flow.serialize()
        monkeypatch.undo()
        flow.default_timeout = -1
        with pytest.raises(SerializationError, match=r"^default_timeout: -1 cannot"):
            flow.serialize()
        flow.default_timeout = None
        flow.history_limit = 0
        with pytest.raises(SerializationError, match=r"^history_limit: 0 cannot"):
            flow.serialize()
    finally:
        flow.shutdown()


def test_an_unregistered_strategy_object_is_refused_when_writing() -> None:
    from routilux import SequentialStrategy

    class Private(SequentialStrategy):
        name = "private"

    with (
        Flow("p", Private()) as flow,
        pytest.raises(SerializationError, match=r"^execution_strategy: 'priv"),
    ):
        flow.serialize()
