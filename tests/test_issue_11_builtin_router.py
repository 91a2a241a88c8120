"""Issue 11: ConditionalRouter: routes, defaults, safe expressions, saving."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from routilux import (
    ConditionalRouter,
    ConfigurationError,
    DuplicateNameError,
    Flow,
    SerializationError,
)
from routilux.builtin._expressions import MAX_DEPTH, compile_condition, evaluate

from .builtin_helpers import emits, failure, round_trip, run


def router(**config: Any) -> ConditionalRouter:
    r = ConditionalRouter()
    r.set_config(**config)
    return r


ROUTES = [
    ("urgent", "data.get('priority') == 'high'"),
    ("big", {"size": lambda v: v > 10}),
    ("small", {"size": 1}),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"priority": "high", "size": 20}, "urgent"),
        ({"size": 20}, "big"),
        ({"size": 1}, "small"),
    ],
)
def test_first_matching_route_takes_the_data(
    strategy: str, data: dict[str, Any], expected: str
) -> None:
    job = run(router(routes=ROUTES), strategy, data=data)
    assert emits(job) == [(expected, {"data": data, "route": expected})]


def test_unmatched_data_goes_out_on_output_with_route_none(strategy: str) -> None:
    job = run(router(routes=ROUTES), strategy, data={"size": 5})
    assert emits(job) == [("output", {"data": {"size": 5}, "route": None})]
    r = router(routes=ROUTES, default_route="rest")
    job = run(r, strategy, data={"size": 5})
    assert emits(job) == [("rest", {"data": {"size": 5}, "route": "rest"})]
    assert r.get_stat("routes_to_rest") == 1


def test_all_matches_in_order(strategy: str) -> None:
    r = router(routes=ROUTES, route_priority="all")
    job = run(r, strategy, data={"priority": "high", "size": 20})
    assert [event for event, _ in emits(job)] == ["urgent", "big"]
    assert router(route_priority="all_matches").get_config("route_priority") == "all"


def test_route_events_are_declared_when_configured_and_can_be_connected(
    strategy: str,
) -> None:
    r = router(routes=[("a", "x > 1")])
    r.add_route("b", "x <= 1")
    assert [r.get_event(n) is not None for n in ("output", "a", "b")] == [True] * 3
    assert r.get_event("b").output_params == ["data", "route"]  # type: ignore[union-attr]
    with Flow(execution_strategy=strategy) as flow:
        from .builtin_helpers import Feed
        from .routines import Collector

        sink = Collector()
        flow.add_routine(Feed(), "feed")
        flow.add_routine(r, "r")
        flow.add_routine(sink, "sink")
        flow.connect("feed", "output", "r", "input")
        flow.connect("r", "b", "sink", "input")
        assert flow.execute("feed", {"data": {"x": 0}}).wait(30)
    assert sink.received == [{"data": {"x": 0}, "route": "b"}]


def test_expressions_see_data_keys_config_and_stats(strategy: str) -> None:
    r = router(
        routes=[
            ("over", "value > config['threshold']"),
            ("busy", "stats.get('routes_to_over', 0) >= 1 and value > 0"),
        ],
        threshold=10,
        route_priority="all",
    )
    assert [e for e, _ in emits(run(r, strategy, data={"value": 11}))] == ["over"]
    assert [e for e, _ in emits(run(r, strategy, data={"value": 5}))] == ["busy"]


def test_callable_conditions_may_take_config_and_stats(strategy: str) -> None:
    def high(data: Any, config: dict[str, Any]) -> bool:
        return bool(data["n"] > config["limit"])

    r = router(routes=[("high", high)], limit=3)
    assert [e for e, _ in emits(run(r, strategy, data={"n": 4}))] == ["high"]


def test_a_condition_failing_on_the_data_fails_the_job_naming_the_route(
    strategy: str,
) -> None:
    message = failure(router(routes=[("r1", "data['missing'] > 1")]), strategy, data={})
    assert "route 'r1'" in message and "missing" in message
    message = failure(router(routes=[("r2", "size > 'a'")]), strategy, data={"size": 1})
    assert "route 'r2'" in message and "cannot compare int and str" in message


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("__import__('os')", "calls are not allowed"),
        ("().__class__", "attributes starting with '_'"),
        ("(lambda: 1)()", "lambdas are not allowed"),
        ("lambda: 1", "lambdas are not allowed"),
        ("[x for x in ()]", "comprehensions are not allowed"),
        ("(x for x in ())", "generator expressions are not allowed"),
        ("{k: 1 for k in 'ab'}", "comprehensions are not allowed"),
        ("import os", "not a valid expression"),
        ("data.get('a').upper()", "calls are not allowed"),
        ("len(data)", "calls are not allowed"),
        ("data.get(**{})", "calls are not allowed"),
        ("_secret", "names starting with '_'"),
        ("f'{data}'", "f-strings are not allowed"),
        ("(y := 1)", "assignment expressions"),
        ("2 ** 1000000", "the ** operator"),
        ("data[1:2]", "slices are not allowed"),
        ("b'x'", "bytes literals"),
        ("1 +", "not a valid expression"),
        ("", "not a valid expression"),
    ],
)
def test_unsafe_or_malformed_expressions_are_refused_when_configured(
    expression: str, why: str
) -> None:
    r = ConditionalRouter()
    with pytest.raises(ConfigurationError, match="route 'x'") as caught:
        r.add_route("x", expression)
    assert why in str(caught.value)
    assert r.get_config("routes") == [] and r.get_event("x") is None


@pytest.mark.parametrize(
    "expression",
    [
        "1+" * 10_000 + "1",
        "-" * 10_000 + "1",
        "not " * 10_000 + "1",
        "(" * 10_000 + "1" + ")" * 10_000,
        "a" + "[0]" * 10_000,
        "1 if 1 else " * 10_000 + "1",
    ],
)
def test_ten_thousand_nested_operators_are_refused_without_recursion_error(
    expression: str,
) -> None:
    with pytest.raises(ConfigurationError, match=r"nested|longer than") as caught:
        compile_condition(expression)
    assert not isinstance(caught.value, RecursionError)
    assert sys.getrecursionlimit() < 10_000  # the limit was not what saved us


def test_depth_limit_is_enforced_below_what_the_parser_allows() -> None:
    compile_condition("1" + "+1" * (MAX_DEPTH - 5))
    with pytest.raises(ConfigurationError, match=f"more than {MAX_DEPTH} levels"):
        compile_condition("1" + "+1" * (MAX_DEPTH + 5))


def test_expression_evaluation_never_calls_anything() -> None:
    class Spy(dict[str, Any]):
        def get(self, *args: Any) -> Any:
            raise AssertionError("the expression called a method")

        def __getitem__(self, key: str) -> Any:
            raise AssertionError("the expression called a method")

        def __contains__(self, key: object) -> bool:
            raise AssertionError("the expression called a method")

    tree = compile_condition("data.get('a', 2) + 1 == 3")
    assert evaluate(tree, {"data": Spy()}) is True
    spy = Spy(a=1)
    assert evaluate(compile_condition("data['a'] + data.a"), {"data": spy}) == 2
    assert evaluate(compile_condition("data.items"), {"data": {"items": 5}}) == 5
    with pytest.raises(ValueError, match="cannot apply Mult to str and int"):
        evaluate(compile_condition("'a' * 3"), {})


def test_bad_configuration_is_refused_before_anything_changes() -> None:
    r = router(routes=[("a", "True")])
    bad: list[dict[str, Any]] = [
        {"routes": "a"},
        {"routes": [("a",)]},
        {"routes": [("", "True")]},
        {"routes": [("output", "True")]},
        {"routes": [("b", 42)]},
        {"route_priority": "best"},
        {"default_route": 3},
    ]
    for config in bad:
        with pytest.raises(ConfigurationError, match="ConditionalRouter: config"):
            r.set_config(**{"default_route": "zzz", **config})
    assert r.config() == router(routes=[("a", "True")]).config()
    with pytest.raises(DuplicateNameError):
        r.add_route("a", "False")
    with pytest.raises(DuplicateNameError):
        r.set_config(routes=[("a", "True"), ("a", "False")])


def test_round_trip_keeps_routes_and_their_events(strategy: str) -> None:
    r = router(
        routes=[("hot", "temp > 30"), ("named", {"kind": "x"})],
        default_route="rest",
        route_priority="all",
        threshold=3,
    )
    r.set_config(routes=[("named", {"kind": "x"}), ("cold", "temp < 0")])  # drops hot
    rebuilt = round_trip(r)
    assert isinstance(rebuilt, ConditionalRouter)
    assert rebuilt.config() == r.config()
    events = ["output", "hot", "named", "rest", "cold"]
    assert [e.name for e in rebuilt.get_spec().events.values()] == events
    job = run(rebuilt, strategy, data={"temp": -5, "kind": "x"})
    assert [e for e, _ in emits(job)] == ["named", "cold"]


def test_saving_a_callable_condition_names_the_route_and_key() -> None:
    r = router(routes=[("ok", "True"), ("fn", lambda data: True)])
    with Flow() as flow:
        flow.add_routine(r, "router")
        with pytest.raises(SerializationError) as caught:
            flow.serialize()
    message = str(caught.value)
    assert "ConditionalRouter 'router'" in message and "routes[1][1]" in message
    assert "expression string" in message
    r2 = router(routes=[("big", {"size": lambda v: v > 1})])
    with pytest.raises(SerializationError, match=r"routes\[0\]\[1\]\.size"):
        r2.serialize()


def test_a_document_with_a_bad_expression_does_not_load() -> None:
    with Flow() as flow:
        flow.add_routine(router(routes=[("a", "x > 1")]), "r")
        doc = flow.serialize()
    route = doc["routines"]["r"]["config"]["routes"][0]
    route = route["$tuple"] if isinstance(route, dict) else route  # a tuple, tagged
    route[1] = "__import__('os').system('x')"
    with pytest.raises(SerializationError, match="calls are not allowed"):
        Flow.deserialize(doc)
