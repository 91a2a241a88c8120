"""Issue 11: DataValidator: rules, required and extra fields, pydantic models."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from routilux import ConfigurationError, DataValidator, Flow, SerializationError
from routilux.builtin import register_model, register_validator

from .builtin_helpers import Feed, emits, failure, round_trip, run


class Address(BaseModel):
    city: str
    zip: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    name: str
    age: int
    address: Address | None = None


def validator(**config: Any) -> DataValidator:
    v = DataValidator()
    v.set_config(**config)
    return v


def verdict(v: DataValidator, strategy: str, record: Any) -> tuple[str, dict[str, Any]]:
    job = run(v, strategy, data=record)
    assert job.status.value == "completed", [e.message for e in job.errors]
    (emitted,) = emits(job)
    return emitted


def test_valid_records_go_out_on_valid(strategy: str) -> None:
    v = validator(rules={"name": ["is_string", "not_empty"], "age": "is_positive"})
    assert verdict(v, strategy, {"name": "Ada", "age": 36}) == (
        "valid",
        {"validated_data": {"name": "Ada", "age": 36}},
    )


def test_invalid_records_go_out_on_invalid_with_pydantic_style_errors(
    strategy: str,
) -> None:
    v = validator(
        rules={"name": ["is_string", "not_empty"], "age": "is_positive"},
        required_fields=["name", "email"],
        allow_extra_fields=False,
    )
    record = {"name": "", "age": -1, "nick": "x"}
    event, data = verdict(v, strategy, record)
    assert event == "invalid" and data["data"] == record
    assert data["errors"] == [
        {"loc": ["email"], "msg": "Field required", "type": "missing"},
        {
            "loc": ["nick"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        },
        {"loc": ["name"], "msg": "failed the 'not_empty' check", "type": "not_empty"},
        {
            "loc": ["age"],
            "msg": "failed the 'is_positive' check",
            "type": "is_positive",
        },
    ]


def test_strict_mode_stops_at_the_first_error(strategy: str) -> None:
    v = validator(rules={"a": "is_int", "b": "is_int"}, strict_mode=True)
    event, data = verdict(v, strategy, {"a": "x", "b": "y"})
    assert event == "invalid" and [e["loc"] for e in data["errors"]] == [["a"]]


def test_a_model_validates_the_whole_record_with_pydantic_locations(
    strategy: str,
) -> None:
    v = validator(model=Person)
    assert v.get_config("model") == f"{__name__}:Person"
    event, data = verdict(v, strategy, {"name": "Ada", "age": "36"})
    assert (event, data) == (
        "valid",
        {"validated_data": {"name": "Ada", "age": 36, "address": None}},
    )
    bad = {"name": "Ada", "age": "old", "address": {"city": "Paris", "zip": "7500"}}
    event, data = verdict(v, strategy, bad)
    assert event == "invalid" and data["data"] == bad
    assert [(e["loc"], e["type"]) for e in data["errors"]] == [
        (["age"], "int_parsing"),
        (["address", "zip"], "string_pattern_mismatch"),
    ]


def test_a_model_as_a_field_rule_prefixes_the_field(strategy: str) -> None:
    v = validator(rules={"home": Address, "name": "is_string"})
    assert v.get_config("rules")["home"] == {"model": f"{__name__}:Address"}
    event, data = verdict(v, strategy, {"home": {"city": "Oslo"}, "name": 3})
    assert event == "invalid"
    assert [(e["loc"], e["type"]) for e in data["errors"]] == [
        (["home", "zip"], "missing"),
        (["name"], "is_string"),
    ]
    event, data = verdict(v, strategy, {"home": {"city": "Oslo", "zip": "12345"}})
    assert data == {"validated_data": {"home": {"city": "Oslo", "zip": "12345"}}}


def test_callables_and_registered_validators(strategy: str) -> None:
    def even(value: Any) -> tuple[bool, str]:
        return value % 2 == 0, f"{value} is odd"

    def explode(value: Any) -> bool:
        raise RuntimeError("validator bug")

    register_validator("issue11_even", even, replace=True)
    v = validator(rules={"a": "issue11_even", "b": even, "c": explode})
    event, data = verdict(v, strategy, {"a": 3, "b": 4, "c": 0})
    assert event == "invalid"
    assert data["errors"] == [
        {"loc": ["a"], "msg": "3 is odd", "type": "issue11_even"},
        {"loc": ["c"], "msg": "RuntimeError: validator bug", "type": "validator_error"},
    ]


def test_non_dict_records_are_invalid_when_fields_are_checked(strategy: str) -> None:
    _, data = verdict(validator(required_fields=["a"]), strategy, [1, 2])
    assert data["errors"] == [
        {"loc": [], "msg": "Input should be a valid dictionary", "type": "dict_type"}
    ]
    assert verdict(DataValidator(), strategy, 5) == ("valid", {"validated_data": 5})


def test_unknown_validator_or_model_names_fail_the_job_naming_the_key(
    strategy: str,
) -> None:
    message = failure(validator(rules={"age": "is_adult"}), strategy, data={"age": 3})
    assert "DataValidator: config 'rules.age': unknown validator 'is_adult'" in message
    assert "is_positive" in message
    v = validator(rules={"home": {"model": "nowhere:Missing"}})
    message = failure(v, strategy, data={"home": {}})
    assert (
        "config 'rules.home': no pydantic model is registered as 'nowhere:Missing'"
        in (message)
    )
    message = failure(validator(model="nowhere:Missing"), strategy, data={})
    assert "DataValidator: config 'model': no pydantic model is registered" in message


@pytest.mark.parametrize(
    "config",
    [
        {"rules": ["is_int"]},
        {"rules": {"a": 3}},
        {"rules": {"a": {"model": 3}}},
        {"model": dict},
        {"required_fields": "a"},
        {"strict_mode": "no"},
        {"allow_extra_fields": None},
    ],
)
def test_bad_configuration_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="DataValidator: config"):
        DataValidator().set_config(**config)


def test_round_trip_keeps_models_by_name(strategy: str) -> None:
    register_validator("issue11_short", lambda v: len(v) < 5, replace=True)
    v = validator(
        model=Person,
        rules={"name": ["not_empty", "issue11_short"], "age": "is_positive"},
        required_fields=["name"],
        allow_extra_fields=False,
        strict_mode=True,
    )
    rebuilt = round_trip(v)
    assert isinstance(rebuilt, DataValidator) and rebuilt.config() == v.config()
    event, data = verdict(rebuilt, strategy, {"name": "Ada", "age": 1})
    assert event == "valid"
    event, data = verdict(rebuilt, strategy, {"name": "Adalbert", "age": 1})
    assert data["errors"][0]["type"] == "issue11_short"


def test_models_are_found_only_through_the_allow_list() -> None:
    class Unlisted(BaseModel):
        x: int

    with Flow() as flow:
        flow.add_routine(Feed(), "feed")
        flow.add_routine(validator(model=Person), "v")
        flow.connect("feed", "output", "v", "input")
        doc = flow.serialize()
    doc["routines"]["v"]["config"]["model"] = "issue11:Unlisted"
    with Flow.deserialize(doc) as loaded:  # nothing is imported to find a model
        job = loaded.execute("feed", {"data": {"x": 1}})
        assert job.wait(30)
    assert job.status.value == "failed"
    assert "no pydantic model is registered as" in job.errors[0].message
    assert register_model(Unlisted, name="issue11:Unlisted") == "issue11:Unlisted"
    with Flow.deserialize(doc) as loaded:
        job = loaded.execute("feed", {"data": {"x": 1}})
        assert job.wait(30)
    assert job.status.value == "completed"
    assert job.get_execution_history("v")[0].data == {"validated_data": {"x": 1}}


def test_a_callable_rule_cannot_be_saved() -> None:
    v = validator(rules={"age": lambda a: a > 0})
    with pytest.raises(SerializationError) as caught:
        v.serialize()
    assert "config 'rules.age'" in str(caught.value)
    assert "register_validator" in str(caught.value)
