"""Fast paths taken for speed give exactly what the careful paths give.

Job ids are formatted without building a UUID object, and are still the text
``str(uuid.UUID(int=bits, version=4))`` would give; a job's end notifies only
when a thread waits for it, and a waiting thread still wakes.

``Flow.to_json`` writes a flow whose values are all plain JSON straight to bytes,
without the copies ``serialize()``'s document needs; whenever a value needs a
closer look it writes ``serialize()``'s document instead. Either way the bytes
(or the error) are those of ``to_json(flow.serialize())``.
"""

from __future__ import annotations

import enum
import random
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routilux import Flow, Routine, SerializationError
from routilux.job_state import new_job_id
from routilux.serialization import MAX_DEPTH, flow_to_json, to_json

from .payload_values import Level, values
from .routines import Collector, Relay, Source


class Word(str):
    """A str subclass: orjson writes it as text."""


class Count(int):
    """An int subclass."""


class Shade(enum.Enum):
    """A plain enum: orjson writes its value."""

    DARK = "dark"


def chain_flow(config: dict[str, Any], stats: dict[str, Any] | None = None) -> Flow:
    """source -> relay -> sink, the relay holding ``config`` (and ``stats``)."""
    flow = Flow(flow_id="fast-paths")
    flow.add_routine(Source(), "source")
    relay = Relay()
    relay.set_config(**config)
    for key, value in (stats or {}).items():
        relay.set_stat(key, value)
    flow.add_routine(relay, "relay")
    flow.add_routine(Collector(), "sink")
    flow.connect("source", "output", "relay", "input")
    flow.connect("relay", "output", "sink", "input")
    return flow


def careful(flow: Flow) -> bytes | str:
    """What the careful path gives: the bytes, or the error's message."""
    try:
        return to_json(flow.serialize())
    except SerializationError as exc:
        return f"error: {exc}"


def fast(flow: Flow) -> bytes | str:
    try:
        return flow.to_json()
    except SerializationError as exc:
        return f"error: {exc}"


def nested(depth: int) -> Any:
    """A value nested ``depth`` levels deep: ``[[...[1]...]]``."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_a_plain_flow_takes_the_fast_path_and_writes_the_same_bytes() -> None:
    flow = chain_flow(
        {"label": "stage", "factor": 3, "ratio": 0.5, "on": True, "none": None},
        {"seen": 4, "names": ["a", "b"]},
    )
    try:
        raw = flow_to_json(flow)
        assert raw is not None  # the fast path was taken
        assert raw == careful(flow) == flow.to_json()
    finally:
        flow.shutdown()


ODD = [
    pytest.param({"when": Decimal("1.50")}, id="decimal"),
    pytest.param({"pair": (1, 2)}, id="tuple"),
    pytest.param({"level": Level.HIGH}, id="int-enum"),
    pytest.param({"shade": Shade.DARK}, id="enum"),
    pytest.param({"word": Word("x")}, id="str-subclass"),
    pytest.param({"count": Count(3)}, id="int-subclass"),
    pytest.param({"keys": {1: "a"}}, id="int-key"),
    pytest.param({"keys": {Word("k"): 1}}, id="str-subclass-key"),
    pytest.param({"tag": {"$date": "2025-01-01"}}, id="one-key-tag-lookalike"),
    pytest.param({"tag": {"$a": 1, "b": 2}}, id="two-key-dollar"),
    pytest.param({"tag": {"!a": 1, "$b": 2}}, id="dollar-key-not-first"),
    pytest.param({"big": 2**64}, id="int-past-64-bits"),
    pytest.param({"small": -(2**63) - 1}, id="int-below-64-bits"),
    pytest.param({"nan": float("nan")}, id="nan"),
    pytest.param({"inf": float("inf")}, id="infinity"),
    pytest.param({"text": "\ud800"}, id="lone-surrogate"),
    pytest.param({"deep": nested(MAX_DEPTH - 3)}, id="deep-within"),
    pytest.param({"deep": nested(MAX_DEPTH - 2)}, id="deep-at-limit"),
    pytest.param({"deep": nested(MAX_DEPTH - 1)}, id="deep-past-limit"),
    pytest.param({"deep": nested(MAX_DEPTH + 5)}, id="deep-far-past-limit"),
    pytest.param({"bytes": b"x"}, id="bytes"),
    pytest.param({"other": object()}, id="unsupported"),
]


@pytest.mark.parametrize("config", ODD)
def test_values_that_need_a_closer_look_give_the_careful_result(
    config: dict[str, Any],
) -> None:
    flow = chain_flow(config)
    try:
        assert fast(flow) == careful(flow)
    finally:
        flow.shutdown()


@pytest.mark.parametrize(
    "stats",
    [
        {"level": Level.LOW},
        {"pair": (1, 2)},
        {"nan": float("nan")},
        {"big": 2**70},
        {"$x": 1},
        {"keys": {2: 3}},
    ],
    ids=["int-enum", "tuple", "nan", "big-int", "dollar-key", "int-key"],
)
def test_statistics_that_are_not_plain_give_the_careful_result(
    stats: dict[str, Any],
) -> None:
    flow = chain_flow({}, stats)
    try:
        assert fast(flow) == careful(flow)
    finally:
        flow.shutdown()


def test_a_routine_that_cannot_be_rebuilt_is_named_as_before() -> None:
    class NeedsArgument(Relay):
        def __init__(self, factor: int) -> None:
            super().__init__()
            self.factor = factor

    flow = chain_flow({"bad": object()})  # no encoding holds it
    flow.add_routine(NeedsArgument(2), "needs")
    try:
        message = fast(flow)
        assert message == careful(flow)
        assert isinstance(message, str)
        assert message.startswith("error: routines.relay.config")  # the first one
    finally:
        flow.shutdown()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(config=st.dictionaries(st.text(max_size=6), values, max_size=4))
def test_any_config_gives_the_bytes_or_error_of_the_careful_path(
    config: dict[str, Any],
) -> None:
    flow = chain_flow(config)
    try:
        assert fast(flow) == careful(flow)
    finally:
        flow.shutdown()


def test_new_job_ids_are_the_text_of_version_4_uuids() -> None:
    state = random.getstate()
    try:
        random.seed(8)
        ids = [new_job_id() for _ in range(2_000)]
        random.seed(8)
        expected = [
            str(uuid.UUID(int=random.getrandbits(128), version=4)) for _ in range(2_000)
        ]
    finally:
        random.setstate(state)
    assert ids == expected
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_waiters_wake_when_the_last_job_ends(strategy: str) -> None:
    """A job's end wakes a waiting thread (only waiting threads are notified)."""
    gate = threading.Event()

    class Held(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.hold)

        def hold(self) -> None:
            assert gate.wait(10)

    flow = Flow(flow_id="waiters", execution_strategy=strategy, max_workers=2)
    flow.add_routine(Held(), "held")
    results: list[bool] = []
    try:
        for _ in range(20):
            gate.clear()
            if strategy == "sequential":
                runner = threading.Thread(target=flow.execute, args=("held",))
                runner.start()
            else:
                flow.execute("held")
            waiters = [
                threading.Thread(
                    target=lambda: results.append(flow.wait_for_completion(10))
                )
                for _ in range(3)
            ]
            for waiter in waiters:
                waiter.start()
            gate.set()
            for waiter in waiters:
                waiter.join(15)
            if strategy == "sequential":
                runner.join(15)
    finally:
        gate.set()
        flow.shutdown(wait=True)
    assert results == [True] * 60
