"""Issue 11: what the eight built-in routines share."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import routilux
import routilux.builtin
import routilux.builtin_routines
from routilux import ConfigurationError, Flow, Routine

from .builtin_helpers import WAIT, Feed, emits

# SPEC.md, "Built-in routines": class -> (slot, {event: params})
TABLE: dict[str, tuple[str, dict[str, list[str]]]] = {
    "TextClipper": (
        "input", {"output": ["clipped_text", "was_clipped", "original_length"]}
    ),
    "TextRenderer": ("input", {"output": ["rendered_text", "original_type"]}),
    "ResultExtractor": (
        "input",
        {"output": [
            "extracted_result", "format", "metadata", "confidence", "extraction_path"
        ]},
    ),
    "TimeProvider": (
        "request", {"output": ["time_string", "timestamp", "datetime", "formatted"]}
    ),
    "DataFlattener": (
        "input", {"output": ["flattened_data", "original_type", "depth"]}
    ),
    "DataTransformer": (
        "input",
        {"output": ["transformed_data", "transformation_applied", "errors"]},
    ),
    "DataValidator": (
        "input", {"valid": ["validated_data"], "invalid": ["errors", "data"]}
    ),
    "ConditionalRouter": ("input", {"output": ["data", "route"]}),
}  # fmt: skip


def test_importable_from_routilux_builtin_and_builtin_routines() -> None:
    for name in TABLE:
        cls = getattr(routilux, name)
        assert cls is getattr(routilux.builtin, name)
        assert cls is getattr(routilux.builtin_routines, name)
        assert name in routilux.__all__ and name in routilux.builtin_routines.__all__
        assert issubclass(cls, Routine)
    from routilux.builtin_routines import TextClipper  # the 0.9 spelling

    assert TextClipper is routilux.TextClipper


@pytest.mark.parametrize("name", sorted(TABLE))
def test_slots_and_events_are_those_of_the_spec(name: str) -> None:
    routine = getattr(routilux, name)()
    slot, events = TABLE[name]
    spec = routine.get_spec()
    assert list(spec.slots) == [slot]
    assert {e.name: list(e.output_params) for e in spec.events.values()} == events


@pytest.mark.parametrize("name", sorted(TABLE))
def test_no_constructor_arguments_and_documented_config(name: str) -> None:
    cls = getattr(routilux, name)
    assert list(inspect.signature(cls).parameters) == []
    routine = cls()
    assert set(routine.config()) == set(cls.defaults)
    for key in cls.defaults:
        assert f"``{key}``" in (cls.__doc__ or ""), f"{name} does not document {key}"


@pytest.mark.parametrize("name", sorted(TABLE))
def test_unknown_keys_are_kept_and_known_ones_checked_all_first(name: str) -> None:
    routine = getattr(routilux, name)()
    routine.set_config(note="mine")
    assert routine.get_config("note") == "mine"
    key = next(iter(type(routine).defaults))
    with pytest.raises(ConfigurationError, match=f"{name}: config '{key}'"):
        routine.set_config(other="kept?", **{key: object()})
    assert routine.get_config("other") is None  # nothing changed


def test_a_flow_of_all_eight_saves_and_loads(strategy: str) -> None:
    with Flow(execution_strategy=strategy) as flow:
        flow.add_routine(Feed(), "feed")
        for name in TABLE:
            routine = getattr(routilux, name)()
            flow.add_routine(routine, name.lower())
            slot = TABLE[name][0]
            flow.connect("feed", "output", name.lower(), slot)
        raw = flow.to_json()
        with Flow.from_json(raw) as loaded:
            assert loaded.to_json() == raw
            job = loaded.execute("feed", {"data": "some text"})
            assert job.wait(WAIT)
    assert job.status.value == "completed", [e.message for e in job.errors]
    emitted = {rid for rid in (n.lower() for n in TABLE) if emits(job, rid)}
    assert emitted == {n.lower() for n in TABLE}


def test_one_router_serves_many_concurrent_jobs() -> None:
    router = routilux.ConditionalRouter()
    router.set_config(routes=[("even", "n % 2 == 0"), ("odd", "n % 2 == 1")])
    with Flow(execution_strategy="concurrent", max_workers=4) as flow:
        flow.add_routine(Feed(), "feed")
        flow.add_routine(router, "r")
        flow.connect("feed", "output", "r", "input")
        jobs = [flow.execute("feed", {"data": {"n": n}}) for n in range(40)]
        assert flow.wait_for_completion(WAIT)
    routes: list[Any] = [emits(job)[0][1]["route"] for job in jobs]
    assert routes == ["even" if n % 2 == 0 else "odd" for n in range(40)]
    assert router.get_stat("routes_to_even") == router.get_stat("routes_to_odd") == 20
