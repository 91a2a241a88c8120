"""Slot handler-call rules and merge strategies."""

from __future__ import annotations

from typing import Any

import pytest

from routilux import Slot, UnknownMergeStrategyError, register_merge_strategy
from routilux.exceptions import DuplicateNameError


def call(handler: Any, data: dict[str, Any]) -> Any:
    return Slot("s", handler=handler).call_handler(data, propagate_exceptions=True)


def test_rule_1_kwargs_gets_everything() -> None:
    assert call(lambda **kw: kw, {"a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_rule_2_single_parameter_named_data_gets_the_dict() -> None:
    assert call(lambda data: data, {"data": 5, "x": 1}) == {"data": 5, "x": 1}


def test_rule_3_single_parameter_gets_its_key_or_the_dict() -> None:
    assert call(lambda value: value, {"value": 3, "x": 1}) == 3
    assert call(lambda value: value, {"x": 1}) == {"x": 1}


def test_rule_4_several_parameters_get_those_present() -> None:
    def handler(a: Any = None, b: Any = None) -> Any:
        return (a, b)

    assert call(handler, {"a": 1, "zz": 0}) == (1, None)
    assert call(handler, {"a": 1, "b": 2}) == (1, 2)


def test_rule_4_none_present_passes_the_dict_positionally() -> None:
    def handler(a: Any = None, b: Any = None) -> Any:
        return (a, b)

    assert call(handler, {"zz": 0}) == ({"zz": 0}, None)


def test_bound_method_self_is_not_counted() -> None:
    class Holder:
        def handle(self, value: Any) -> Any:
            return value

    assert call(Holder().handle, {"value": 9}) == 9


def test_handler_without_parameters() -> None:
    assert call(lambda: "called", {"x": 1}) == "called"


def test_call_handler_returns_exception_when_not_propagating() -> None:
    def bad(**kw: Any) -> None:
        raise KeyError("k")

    result = Slot("s", handler=bad).call_handler({}, propagate_exceptions=False)
    assert isinstance(result, KeyError)
    with pytest.raises(KeyError):
        Slot("s", handler=bad).call_handler({}, propagate_exceptions=True)


def test_override_keeps_newest() -> None:
    slot = Slot("s", handler=lambda **kw: None)
    slot.receive({"a": 1})
    slot.receive({"b": 2})
    assert slot.data == {"b": 2}


def test_append_first_value_plain_then_lists_and_copies() -> None:
    seen: list[dict[str, Any]] = []
    slot = Slot("s", handler=lambda **kw: seen.append(kw), merge_strategy="append")
    slot.receive({"a": 1})
    slot.receive({"a": 2})
    slot.receive({"a": 3, "b": "x"})
    assert seen == [{"a": 1}, {"a": [1, 2]}, {"a": [1, 2, 3], "b": "x"}]
    seen[1]["a"].append(99)  # handlers get copies: the slot's data is untouched
    assert slot.data["a"] == [1, 2, 3]


def test_append_wraps_a_non_list_old_value() -> None:
    slot = Slot("s", merge_strategy="append")
    slot.receive({"a": "first"})
    slot.receive({"a": "second"})
    assert slot.data == {"a": ["first", "second"]}


def test_callable_merge_result_is_kept_and_passed() -> None:
    seen: list[Any] = []

    def total(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        return {"sum": old.get("sum", 0) + new["n"]}

    slot = Slot("s", handler=lambda **kw: seen.append(kw["sum"]), merge_strategy=total)
    for n in (1, 2, 3):
        slot.receive({"n": n})
    assert seen == [1, 3, 6]
    slot.reset()
    assert slot.data == {}


def test_registered_merge_strategy_by_name() -> None:
    register_merge_strategy(
        "test_slot_max", lambda old, new: {"m": max(old.get("m", 0), new["m"])}
    )
    slot = Slot("s", merge_strategy="test_slot_max")
    for m in (3, 1, 5, 2):
        slot.receive({"m": m})
    assert slot.data == {"m": 5}
    with pytest.raises(DuplicateNameError, match="test_slot_max"):
        register_merge_strategy("test_slot_max", lambda old, new: new)
    with pytest.raises(DuplicateNameError, match="append"):
        register_merge_strategy("append", lambda old, new: new)


def test_unknown_merge_strategy_names_it() -> None:
    with pytest.raises(UnknownMergeStrategyError, match="nosuch"):
        Slot("s", merge_strategy="nosuch")
