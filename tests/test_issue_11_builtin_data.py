"""Issue 11: DataFlattener, DataTransformer and TimeProvider."""

from __future__ import annotations

import datetime as dt
import gc
from typing import Any

import pytest

from routilux import (
    ConfigurationError,
    DataFlattener,
    DataTransformer,
    DuplicateNameError,
    Flow,
    SerializationError,
    TimeProvider,
)
from routilux.builtin import register_transformation
from routilux.builtin.data_flattener import flatten

from .builtin_helpers import failure, output, round_trip

# -- DataFlattener ---------------------------------------------------------------------


def flattener(**config: Any) -> DataFlattener:
    f = DataFlattener()
    f.set_config(**config)
    return f


def test_flattens_nested_dicts_and_lists(strategy: str) -> None:
    data = {"a": {"b": 1, "c": [2, {"d": 3}]}, "e": {}, "f": None}
    assert output(DataFlattener(), strategy, data=data) == {
        "flattened_data": {"a.b": 1, "a.c.0": 2, "a.c.1.d": 3, "e": {}, "f": None},
        "original_type": "dict",
        "depth": 4,
    }


def test_separator_preserve_lists_and_max_depth(strategy: str) -> None:
    data = {"a": {"b": {"c": 1}}, "l": [1, 2]}
    out = output(flattener(separator="/", preserve_lists=True), strategy, data=data)
    assert out["flattened_data"] == {"a/b/c": 1, "l": [1, 2]}
    out = output(flattener(max_depth=2), strategy, data=data)
    assert out["flattened_data"] == {"a.b": {"c": 1}, "l.0": 1, "l.1": 2}
    assert out["depth"] == 2


@pytest.mark.parametrize(
    ("value", "flat", "depth"),
    [(5, {"value": 5}, 0), ([], {}, 1), ({}, {}, 1), ([[1]], {"0.0": 1}, 2)],
)
def test_plain_values_and_empty_containers(value: Any, flat: Any, depth: int) -> None:
    assert flatten(value, ".", False, 100) == (flat, depth)


def test_deep_data_does_not_exhaust_the_stack() -> None:
    deep: Any = "bottom"
    for _ in range(5000):
        deep = {"k": deep}
    flat, depth = flatten(deep, ".", False, 1000)
    ((key, value),) = flat.items()
    assert key.count(".") == 999 and isinstance(value, dict) and depth == 1000


def test_collisions_and_self_containing_data_fail_naming_the_key(strategy: str) -> None:
    message = failure(DataFlattener(), strategy, data={"a.b": 1, "a": {"b": 2}})
    assert "two paths flatten to the key 'a.b'" in message
    loop: dict[str, Any] = {"x": {}}
    loop["x"]["y"] = loop
    with pytest.raises(ValueError, match=r"'x\.y' contains itself"):
        flatten(loop, ".", False, 100)


@pytest.mark.parametrize(
    "config",
    [
        {"separator": ""},
        {"separator": 1},
        {"preserve_lists": None},
        {"max_depth": 0},
        {"max_depth": 10_000},
        {"max_depth": 2.0},
    ],
)
def test_bad_flattener_configuration_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="DataFlattener: config"):
        DataFlattener().set_config(**config)


def test_flattener_round_trip(strategy: str) -> None:
    rebuilt = round_trip(flattener(separator="_", max_depth=3, preserve_lists=True))
    assert rebuilt.config() == {
        "separator": "_",
        "preserve_lists": True,
        "max_depth": 3,
    }
    out = output(rebuilt, strategy, data={"a": {"b": [1]}})
    assert out["flattened_data"] == {"a_b": [1]}


# -- DataTransformer -------------------------------------------------------------------


def transformer(*names: Any, **config: Any) -> DataTransformer:
    t = DataTransformer()
    t.set_config(transformations=list(names), **config)
    return t


def test_transformations_apply_in_order_to_every_value(strategy: str) -> None:
    data = {"name": "  ADA ", "tags": [" X ", None], "age": " 36 ", "gone": None}
    t = transformer("strip_whitespace", "lowercase", "remove_none")
    assert output(t, strategy, data=data) == {
        "transformed_data": {"name": "ada", "tags": ["x"], "age": "36"},
        "transformation_applied": ["strip_whitespace", "lowercase", "remove_none"],
        "errors": [],
    }


def test_failed_conversions_are_reported_and_leave_the_value(strategy: str) -> None:
    t = transformer("to_int", fields=["age", "height"])
    out = output(t, strategy, data={"age": "36", "height": "tall", "name": "Ada"})
    assert out["transformed_data"] == {"age": 36, "height": "tall", "name": "Ada"}
    (error,) = out["errors"]
    assert error["transformation"] == "to_int" and error["path"] == "height"
    assert error["error"].startswith("ValueError: invalid literal for int()")


@pytest.mark.parametrize(
    ("name", "value", "result"),
    [
        ("uppercase", "ab", "AB"),
        ("to_string", 3, "3"),
        ("to_string", None, None),
        ("to_int", 4.0, 4),
        ("to_float", "2.5", 2.5),
        ("to_float", True, True),
        ("lowercase", 7, 7),
    ],
)
def test_builtin_transformations(name: str, value: Any, result: Any) -> None:
    out = output(transformer(name), "sequential", data=value)
    assert out["transformed_data"] == result and out["errors"] == []


def test_registered_transformations_take_the_whole_input(strategy: str) -> None:
    def keys_sorted(data: Any) -> Any:
        return dict(sorted(data.items()))

    t = DataTransformer()
    t.register_transformation("issue11_sorted", keys_sorted, replace=True)
    t.set_config(transformations=["issue11_sorted", "uppercase"])
    out = output(t, strategy, data={"b": "x", "a": "y"})
    assert list(out["transformed_data"].items()) == [("a", "Y"), ("b", "X")]
    rebuilt = round_trip(t)
    assert output(rebuilt, strategy, data={"z": "q", "y": "r"})["transformed_data"] == {
        "y": "R",
        "z": "Q",
    }
    with pytest.raises(DuplicateNameError, match="built in"):
        register_transformation("lowercase", keys_sorted)


def test_unknown_transformation_names_fail_the_job_naming_the_key(
    strategy: str,
) -> None:
    message = failure(transformer("issue11_nope"), strategy, data="x")
    assert (
        "DataTransformer: config 'transformations': unknown transformation" in message
    )
    assert "'issue11_nope'" in message and "lowercase" in message


def test_callables_work_but_cannot_be_saved(strategy: str) -> None:
    t = transformer(str.title)
    # The flow output() ran 'r' in is dropped but lives in a reference cycle
    # until the collector runs; a collection before serialize() (when one falls
    # there depends on every test before this one) would take 'r' out of the
    # message. With the collector paused, that flow is still there.
    collecting = gc.isenabled()
    gc.disable()
    try:
        assert (
            output(t, strategy, data="ada lovelace")["transformed_data"]
            == "Ada Lovelace"
        )
        with Flow() as flow:
            flow.add_routine(t, "clean")
            with pytest.raises(SerializationError) as caught:
                flow.serialize()
    finally:
        if collecting:
            gc.enable()
    message = str(caught.value)  # the routine ran in another flow as 'r' before
    assert "DataTransformer 'clean' or 'r': config 'transformations[0]'" in message
    assert "register_transformation" in message


@pytest.mark.parametrize(
    "config",
    [{"transformations": "lowercase"}, {"transformations": [3]}, {"fields": "a"}],
)
def test_bad_transformer_configuration_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="DataTransformer: config"):
        DataTransformer().set_config(**config)


def test_transformer_round_trip(strategy: str) -> None:
    t = transformer("strip_whitespace", "to_float", fields=["x"])
    rebuilt = round_trip(t)
    assert rebuilt.config() == t.config()
    out = output(rebuilt, strategy, data={"x": " 1 ", "y": " 2 "})
    assert out["transformed_data"] == {"x": 1.0, "y": " 2 "}


# -- TimeProvider ----------------------------------------------------------------------

MOMENT = 1709285400.0  # Friday 2024-03-01 09:30:00 UTC


def clock_at(reading: Any) -> TimeProvider:
    t = TimeProvider()
    t.set_config(timezone="UTC")
    t.set_clock(lambda: reading)
    return t


def test_emits_every_format_from_an_injected_clock(strategy: str) -> None:
    out = output(clock_at(MOMENT), strategy, slot="request")
    assert out == {
        "time_string": "2024-03-01T09:30:00+00:00",
        "timestamp": MOMENT,
        "datetime": "2024-03-01T09:30:00+00:00",
        "formatted": "2024-03-01 09:30:00",
    }


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ({"format": "timestamp"}, "1709285400.0"),
        (
            {"format": "formatted", "include_weekday": True},
            "Friday, 2024-03-01 09:30:00",
        ),
        ({"format": "custom", "custom_format": "%d/%m %Hh"}, "01/03 09h"),
        ({"format": "iso", "include_weekday": True}, "2024-03-01T09:30:00+00:00"),
    ],
)
def test_formats(strategy: str, config: dict[str, Any], text: str) -> None:
    t = clock_at(MOMENT)
    t.set_config(**config)
    assert output(t, strategy, slot="request")["time_string"] == text


def test_clock_may_return_a_datetime_and_local_time_is_aware() -> None:
    moment = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
    assert clock_at(moment).now() == moment
    local = TimeProvider()
    local.set_clock(lambda: MOMENT)
    assert local.now().utcoffset() is not None and local.now().timestamp() == MOMENT


def test_a_fake_clock_from_routilux_testing_drives_it(strategy: str) -> None:
    from routilux.testing import FakeClock

    fake = FakeClock(MOMENT)
    t = clock_at(0)
    t.set_clock(fake)
    assert output(t, strategy, slot="request")["formatted"] == "2024-03-01 09:30:00"
    fake.advance(90)
    assert output(t, strategy, slot="request")["formatted"] == "2024-03-01 09:31:30"


def test_a_broken_clock_fails_the_job_clearly(strategy: str) -> None:
    message = failure(clock_at("noon"), strategy, slot="request")
    assert "TimeProvider: the clock returned str" in message
    with pytest.raises(ConfigurationError, match="clock must be callable"):
        TimeProvider().set_clock(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "config",
    [
        {"format": "rfc"},
        {"custom_format": 5},
        {"include_weekday": "yes"},
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": 0},
    ],
)
def test_bad_time_configuration_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="TimeProvider: config"):
        TimeProvider().set_config(**config)


def test_time_provider_round_trip_keeps_config_not_clock(strategy: str) -> None:
    t = clock_at(MOMENT)
    t.set_config(format="custom", custom_format="%Y", include_weekday=True)
    rebuilt = round_trip(t)
    assert isinstance(rebuilt, TimeProvider)
    assert rebuilt.config() == t.config()
    rebuilt.set_clock(lambda: MOMENT)
    assert output(rebuilt, strategy, slot="request")["time_string"] == "Friday, 2024"
