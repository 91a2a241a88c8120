"""Flow documents and JobState documents: round trips and safe refusals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import pytest

from routilux import ErrorHandler, Flow, JobState, Routine, SerializationError

from .routines import Collector, Relay, Source

if TYPE_CHECKING:
    from pathlib import Path


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
    assert document["schema_version"] == 1
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
    copy = orjson.loads(orjson.dumps(document))
    target = copy
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
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
