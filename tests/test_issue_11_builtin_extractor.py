"""Issue 11: ResultExtractor (and the YAML subset it reads without PyYAML)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from routilux import (
    ConfigurationError,
    DuplicateNameError,
    Flow,
    ResultExtractor,
    SerializationError,
)
from routilux.builtin import register_extractor
from routilux.builtin._yaml import _Parser, load_yaml

from .builtin_helpers import failure, output, round_trip

FENCE = "```"


def extractor(**config: Any) -> ResultExtractor:
    e = ResultExtractor()
    e.set_config(**config)
    return e


def block(language: str, body: str) -> str:
    return f"{FENCE}{language}\n{body}\n{FENCE}"


def test_json_block_wins_and_the_last_valid_one_is_taken(strategy: str) -> None:
    text = "\n".join(
        ["Thinking...", block("json", '{"draft": 1}'), block("json", '{"final": 2}')]
    )
    out = output(ResultExtractor(), strategy, data=text)
    assert out == {
        "extracted_result": {"final": 2},
        "format": "json",
        "metadata": {
            "block_index": 1,
            "block_count": 2,
            "extractor": "json_block",
            "strategy": "auto",
        },
        "confidence": 0.95,
        "extraction_path": ["json_block"],
    }


@pytest.mark.parametrize(
    ("text", "result", "kind", "path"),
    [
        (
            block("yaml", "name: Ada\nlangs:\n  - en\n  - fr"),
            {"name": "Ada", "langs": ["en", "fr"]},
            "yaml",
            "yaml_block",
        ),
        ('  [1, {"a": null}]  ', [1, {"a": None}], "json", "json"),
        ('The answer is {"ok": true} as you see.', {"ok": True}, "json", "json"),
        (
            "{'a': (1, 2), 'b': {3}}",
            {"a": [1, 2], "b": [3]},
            "python",
            "python_literal",
        ),
        (block("python", "print('hi')\n"), "print('hi')", "python", "code_block"),
        (
            "name: Ada\nage = 36\nactive: true",
            {"name": "Ada", "age": 36, "active": True},
            "key_value",
            "key_value",
        ),
    ],
)
def test_each_builtin_extractor(
    strategy: str, text: str, result: Any, kind: str, path: str
) -> None:
    out = output(ResultExtractor(), strategy, data=text)
    assert (out["extracted_result"], out["format"], out["extraction_path"]) == (
        result,
        kind,
        [path],
    )
    assert 0 < out["confidence"] <= 1


def test_literals_are_never_evaluated(strategy: str) -> None:
    text = "[__import__('os').system('echo pwned')]"
    out = output(ResultExtractor(), strategy, data=text)
    assert out["extraction_path"] == [] and out["extracted_result"] == text


def test_nothing_found_passes_the_input_on_or_fails(strategy: str) -> None:
    out = output(ResultExtractor(), strategy, data="just prose, no structure")
    assert out == {
        "extracted_result": "just prose, no structure",
        "format": "text",
        "metadata": {"extractor": None, "strategy": "auto"},
        "confidence": 0.0,
        "extraction_path": [],
    }
    strict = extractor(return_original_on_failure=False)
    assert "no extractor found a result" in failure(strict, strategy, data="prose")


def test_dicts_and_lists_pass_through_as_structured(strategy: str) -> None:
    out = output(ResultExtractor(), strategy, data={"a": 1})
    assert out["extracted_result"] == {"a": 1} and out["extraction_path"] == [
        "structured"
    ]


@pytest.mark.parametrize("value", [42, None, 3.5])
def test_other_input_types_fail_naming_data(strategy: str, value: Any) -> None:
    message = failure(ResultExtractor(), strategy, data=value)
    assert "ResultExtractor: 'data' must be text, a dict or a list" in message


def test_strategies(strategy: str) -> None:
    text = "\n".join([block("python", "x = 1"), block("json", '{"a": 1}')])
    auto = output(ResultExtractor(), strategy, data=text)
    assert auto["extraction_path"] == ["json_block"]
    first = output(extractor(strategy="first_match"), strategy, data="x: 1\n" + text)
    assert first["extraction_path"] == ["json_block"]  # the default order
    chosen = extractor(strategy="priority", extractor_priority=["code_block"])
    assert output(chosen, strategy, data=text)["extraction_path"] == ["code_block"]
    everything = output(extractor(strategy="all"), strategy, data=text)
    assert everything["format"] == "multi"
    assert everything["extraction_path"] == ["json_block", "json", "code_block"]
    assert everything["extracted_result"] == [{"a": 1}, {"a": 1}, '{"a": 1}']
    assert everything["confidence"] == 0.95
    assert len(everything["metadata"]["extractions"]) == 3


def test_unknown_priority_names_fail_the_job(strategy: str) -> None:
    e = extractor(strategy="priority", extractor_priority=["nope"])
    assert "extractor_priority' names unknown extractors ['nope']" in failure(
        e, strategy, data="x"
    )


def _answer_line(data: Any, config: dict[str, Any]) -> Any:
    if isinstance(data, str) and data.startswith("ANSWER="):
        return data[7:], "answer", {"prefix": "ANSWER="}
    return None


def test_registered_extractors_are_tried_first_and_kept_by_name(strategy: str) -> None:
    e = ResultExtractor()
    e.register_extractor("issue11_answer", _answer_line)
    e.register_extractor("issue11_answer", _answer_line)  # the same: no change
    assert e.get_config("extractors") == ["issue11_answer"]
    out = output(e, strategy, data='ANSWER={"a": 1}')
    assert out["extracted_result"] == '{"a": 1}' and out["confidence"] == 1.0
    assert out["extraction_path"] == ["issue11_answer"]
    rebuilt = round_trip(e)
    assert output(rebuilt, strategy, data="ANSWER=7")["extracted_result"] == "7"
    other = output(ResultExtractor(), strategy, data="ANSWER=7")
    assert other["extraction_path"] == ["key_value"]


def test_registering_is_checked() -> None:
    with pytest.raises(DuplicateNameError, match="built in"):
        register_extractor("json", _answer_line)
    register_extractor("issue11_taken", _answer_line)
    with pytest.raises(DuplicateNameError, match="replace=True"):
        register_extractor("issue11_taken", lambda d, c: None)
    register_extractor("issue11_taken", lambda d, c: None, replace=True)
    with pytest.raises(ConfigurationError, match="must be callable"):
        register_extractor("issue11_x", "not a function")  # type: ignore[arg-type]


def test_registered_extractor_errors_are_clear(strategy: str) -> None:
    def broken(data: Any, config: dict[str, Any]) -> Any:
        raise KeyError("oops")

    def wrong(data: Any, config: dict[str, Any]) -> Any:
        return "not a tuple"

    register_extractor("issue11_broken", broken, replace=True)
    register_extractor("issue11_wrong", wrong, replace=True)
    e = extractor(extractors=["issue11_broken"])
    assert "extractor 'issue11_broken' raised KeyError" in failure(
        e, strategy, data="x"
    )
    e = extractor(extractors=["issue11_wrong"])
    assert "extractor 'issue11_wrong' returned 'not a tuple'" in failure(
        e, strategy, data="x"
    )
    e = extractor(extractors=["issue11_never_registered"])
    assert "unknown extractor 'issue11_never_registered'" in failure(
        e, strategy, data="x"
    )


@pytest.mark.parametrize(
    "config",
    [
        {"strategy": "best"},
        {"extractor_priority": "json"},
        {"extractors": ["json"]},
        {"extractors": [""]},
        {"return_original_on_failure": 1},
    ],
)
def test_bad_configuration_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="ResultExtractor: config"):
        ResultExtractor().set_config(**config)


def test_round_trip(strategy: str) -> None:
    e = extractor(strategy="priority", extractor_priority=["key_value", "json"])
    rebuilt = round_trip(e)
    assert rebuilt.config() == e.config()
    out = output(rebuilt, strategy, data='{"a": 1}')
    assert out["extraction_path"] == ["json"]


def test_a_function_in_the_config_cannot_be_saved() -> None:
    e = extractor(hook=print)
    with Flow() as flow:
        flow.add_routine(e, "x")
        with pytest.raises(
            SerializationError, match="ResultExtractor 'x': config 'hook'"
        ):
            flow.serialize()


# -- the YAML subset -------------------------------------------------------------------

SUBSET = """
# a comment
name: "Ada # not a comment"
quote: 'it''s'
count: 3
ratio: 0.5
flags: [1, 2]
empty:
nothing: ~
yes_no: no
people:
  - name: Bob
    age: 4
  -
    name: Cy
list_at_key_level:
- a
- b
nested:
  deeper:
    deepest: true
"""
EXPECTED = {
    "name": "Ada # not a comment",
    "quote": "it's",
    "count": 3,
    "ratio": 0.5,
    "flags": [1, 2],
    "empty": None,
    "nothing": None,
    "yes_no": False,
    "people": [{"name": "Bob", "age": 4}, {"name": "Cy"}],
    "list_at_key_level": ["a", "b"],
    "nested": {"deeper": {"deepest": True}},
}


def test_yaml_subset_reads_common_yaml() -> None:
    assert _Parser(SUBSET).parse() == EXPECTED
    assert load_yaml(SUBSET) == EXPECTED  # PyYAML, when installed, agrees


@pytest.mark.parametrize(
    "text", ["a: &x 1", "a: !tag 1", "a: |\n  text", "a: 1\n   b: 2", "a:\n\t- 1"]
)
def test_yaml_subset_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each refusal has its own message
        _Parser(text).parse()


@pytest.mark.skipif(
    importlib.util.find_spec("yaml") is not None, reason="PyYAML reads anchors"
)
def test_unreadable_yaml_blocks_are_kept_as_code(strategy: str) -> None:
    out = output(ResultExtractor(), strategy, data=block("yaml", "a: &anchor 1"))
    assert out["extraction_path"] == ["code_block"]
    assert out["extracted_result"] == "a: &anchor 1" and out["format"] == "yaml"
