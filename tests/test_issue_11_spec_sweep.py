"""Issue 11 sweep: SPEC'd 0.9 calls no other test exercised, written as 0.9 code does.

Each test takes one part of ``../shared/SPEC.md`` that the rest of the suite did
not call directly: the by-hand wiring of ``Event``, ``Slot`` and ``Connection``
without a flow, ``ExecutionRecord``'s constructor, the attribute names a
subclass must keep for itself, ``set_as_optional`` / ``set_as_critical`` as they
are now, and bad values given to a JobState (a RoutiluxError that is also a
ValueError, as pydantic's error was).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from routilux import (
    ConfigurationError,
    Connection,
    ErrorHandler,
    ErrorStrategy,
    Event,
    ExecutionRecord,
    Flow,
    JobState,
    RoutiluxError,
    Routine,
    Slot,
)

# -- Event, Slot and Connection by hand, without a flow (0.9's way) ---------------


def test_a_connection_links_both_ends_maps_and_unlinks() -> None:
    got: list[dict[str, Any]] = []
    event = Event("out", None, ["a"])
    slot = Slot("in", None, lambda **data: got.append(data))
    connection = Connection(event, slot, {"a": "b"})
    assert connection.source_event is event and connection.target_slot is slot
    assert connection.param_mapping == {"a": "b"}
    assert event.connected_slots == [slot] and slot.connected_events == [event]
    # Mapped keys move; other keys pass unless they are a mapping's target.
    connection.activate({"a": 1, "b": 9, "c": 2})
    assert got == [{"b": 1, "c": 2}]
    event.emit(a=5)  # no flow: the linked slot receives, mapped, in this thread
    assert got[-1] == {"b": 5}
    connection.disconnect()
    assert event.connected_slots == [] and slot.connected_events == []
    event.emit(a=6)
    assert len(got) == 2
    empty = Connection()
    assert empty.source_event is None and empty.param_mapping == {}


def test_event_and_slot_connect_and_disconnect_are_idempotent() -> None:
    event, slot = Event("e"), Slot("s")
    slot.connect(event)
    event.connect(slot)
    assert event.connected_slots == [slot] and slot.connected_events == [event]
    slot.disconnect(event)
    event.disconnect(slot)
    assert event.connected_slots == [] and slot.connected_events == []
    assert (event.name, event.routine, event.output_params) == ("e", None, [])


def test_a_slot_alone_receives_merges_and_reports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []
    slot = Slot("in", None, lambda value: seen.append(value), "append")
    assert (slot.name, slot.routine, slot.merge_strategy) == ("in", None, "append")
    slot.receive({"value": 1})
    slot.receive({"value": 2})
    assert seen == [1, [1, 2]]
    slot.reset()
    slot.receive({"value": 3})
    assert seen[-1] == 3

    def broken(data: dict[str, Any]) -> None:
        raise KeyError("missing")

    failing = Slot("f", None, broken)
    with caplog.at_level(logging.ERROR, logger="routilux.slot"):
        returned = failing.call_handler({"x": 1})
    assert isinstance(returned, KeyError)  # returned, not raised, and logged
    assert "handler of slot 'f' raised" in caplog.text
    with pytest.raises(KeyError):
        failing.call_handler({"x": 1}, propagate_exceptions=True)
    with pytest.raises(KeyError):
        failing.receive({"x": 1})  # direct delivery propagates
    copied = Slot()
    copied.deserialize(slot.serialize())
    assert (copied.name, copied.merge_strategy) == ("in", "append")


# -- ExecutionRecord -----------------------------------------------------------


def test_execution_record_as_0_9_built_it() -> None:
    before = datetime.now(timezone.utc)
    empty = ExecutionRecord()
    assert (empty.routine_id, empty.event_name, empty.data) == ("", "", None)
    assert empty.timestamp >= before  # defaults to now, in UTC
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    record = ExecutionRecord("r", "out", {"v": 1}, at)
    assert (record.routine_id, record.event_name, record.data) == ("r", "out", {"v": 1})
    assert record.timestamp == at
    assert record.serialize()["timestamp"].startswith("2024-01-02T03:04:05")


def test_a_bad_execution_record_raises_a_routilux_value_error() -> None:
    with pytest.raises(ConfigurationError, match="ExecutionRecord routine_id"):
        ExecutionRecord(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ExecutionRecord timestamp"):
        ExecutionRecord("r", "e", None, "yesterday")  # type: ignore[arg-type]
    record = ExecutionRecord("r")
    with pytest.raises(ConfigurationError, match="read-only: cannot set 'data'"):
        record.data = 1
    assert record.data is None


# -- JobState: bad values are RoutiluxErrors (and still ValueErrors) ---------------


def test_a_bad_job_state_value_names_the_field_and_changes_nothing() -> None:
    job = JobState("f")
    with pytest.raises(ConfigurationError, match="status: Input should be") as caught:
        job.status = "done"  # type: ignore[assignment]
    assert isinstance(caught.value, ValueError) and job.job_id in str(caught.value)
    assert job.status == "pending"
    with pytest.raises(ValueError, match="flow_id"):
        job.flow_id = 5  # type: ignore[assignment]
    assert job.flow_id == "f"
    with pytest.raises(RoutiluxError, match="JobState status"):
        JobState("f", status="done")
    uuid.UUID(job.job_id)  # a uuid4 string


def test_update_routine_state_stores_a_copy() -> None:
    job = JobState("f")
    state = {"status": "completed", "count": 1}
    job.update_routine_state("r", state)
    state["count"] = 2
    assert job.get_routine_state("r") == {"status": "completed", "count": 1}
    assert job.get_routine_state("missing") is None


# -- names a subclass keeps for itself --------------------------------------------

FREE = (
    "name",
    "routine_id",
    "result",
    "process",
    "send",
    "handle",
    "validate",
    "format",
    "aggregate",
    "processed",
    "called",
    "call_count",
)


class UsesEveryName(Routine):
    """A 0.9 routine that uses the names SPEC leaves free, as data and methods."""

    def __init__(self) -> None:
        super().__init__()
        for index, attribute in enumerate(FREE):
            if attribute not in ("process", "handle"):
                setattr(self, attribute, index)
        self.define_slot("trigger", handler=self.process)
        self.define_slot("input", handler=self.handle)
        self.define_event("output", ["value"])

    def process(self, value: int = 0) -> None:
        self.called = True
        self.emit("output", value=value + 1)

    def handle(self, value: int) -> None:
        self.call_count += 1
        self.result = value


def test_the_names_spec_leaves_free_are_the_subclass_own() -> None:
    first, second = UsesEveryName(), UsesEveryName()
    flow = Flow("free")
    flow.add_routine(first, "first")
    flow.add_routine(second, "second")
    flow.connect("first", "output", "second", "input")
    job = flow.execute("first", {"value": 41})
    assert job.status == "completed"
    assert first.called is True and second.result == 42
    assert second.call_count == FREE.index("call_count") + 1
    assert (first.name, first.routine_id, first.format) == (0, 1, 7)
    loaded = Flow.deserialize(flow.serialize())
    rebuilt = loaded.routines["second"]
    assert isinstance(rebuilt, UsesEveryName) and rebuilt.validate == 6


# -- error policy as it is now (SPEC shows set_as_optional's old default) ---------


def test_set_as_optional_and_set_as_critical_as_they_are_now() -> None:
    plain = Routine()
    plain.set_as_optional()  # no handler of its own: CONTINUE
    handler = plain.get_error_handler()
    assert handler is not None and handler.strategy is ErrorStrategy.CONTINUE
    assert handler.is_optional and not handler.is_critical
    skip = Routine()
    skip.set_as_optional(ErrorStrategy.SKIP)
    assert skip.get_error_handler().strategy is ErrorStrategy.SKIP  # type: ignore[union-attr]
    named = Routine()
    named.set_as_optional("skip")
    assert named.get_error_handler().strategy is ErrorStrategy.SKIP  # type: ignore[union-attr]
    retrying = Routine()
    shared = ErrorHandler("retry", max_retries=5, retry_delay=0.0)
    retrying.set_error_handler(shared)
    retrying.set_as_optional()  # None keeps the handler's own strategy
    own = retrying.get_error_handler()
    assert own is not shared and own is not None
    assert (own.strategy, own.max_retries, own.is_optional) == (
        ErrorStrategy.RETRY,
        5,
        True,
    )
    assert not shared.is_optional  # a handler shared with others is left alone
    with pytest.raises(ConfigurationError):
        Routine().set_as_optional("sometimes")
    critical = Routine()
    critical.set_as_critical()
    made = critical.get_error_handler()
    assert made is not None
    assert (made.strategy, made.max_retries, made.retry_delay, made.retry_backoff) == (
        ErrorStrategy.RETRY,
        3,
        1.0,
        2.0,
    )
    assert made.is_critical
