"""Issue 11: TextClipper and TextRenderer."""

from __future__ import annotations

from typing import Any

import pytest

from routilux import ConfigurationError, TextClipper, TextRenderer
from routilux.builtin.text_clipper import clip_text

from .builtin_helpers import failure, output, round_trip

TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "job.py", line 3, in <module>',
    "    main()",
    "ValueError: boom",
]


def clipper(**config: Any) -> TextClipper:
    c = TextClipper()
    c.set_config(**config)
    return c


def renderer(**config: Any) -> TextRenderer:
    r = TextRenderer()
    r.set_config(**config)
    return r


# -- TextClipper ---------------------------------------------------------------------


def test_text_that_fits_passes_unchanged(strategy: str) -> None:
    assert output(TextClipper(), strategy, text="short") == {
        "clipped_text": "short",
        "was_clipped": False,
        "original_length": 5,
    }


def test_long_text_is_clipped_by_whole_lines_with_a_message(strategy: str) -> None:
    text = "\n".join(f"line {i}" for i in range(10))  # 7 characters a line
    out = output(clipper(max_length=20), strategy, text=text)
    assert out == {
        "clipped_text": "line 0\nline 1\n...(8 lines clipped)",
        "was_clipped": True,
        "original_length": len(text),
    }


def test_one_long_line_is_cut_at_the_limit(strategy: str) -> None:
    out = output(
        clipper(max_length=10, truncation_message="[{remaining}]"),
        strategy,
        text="x" * 50,
    )
    assert out["clipped_text"] == "x" * 10 + "\n[1]"


def test_tracebacks_are_kept_whole_wherever_they_are() -> None:
    lines = [*(f"log {i}" for i in range(20)), *TRACEBACK, "after 1", "after 2"]
    clipped, was_clipped = clip_text("\n".join(lines), 40, True, "...({remaining})")
    assert was_clipped
    assert clipped.split("\n") == ["...(20)", *TRACEBACK, "...(2)"]
    head = "\n".join(["a", "b", *TRACEBACK, "c" * 200])
    clipped, _ = clip_text(head, len("\n".join(TRACEBACK)) + 6, True, "~{remaining}")
    assert clipped.split("\n") == ["a", "b", *TRACEBACK, "~1"]


def test_tracebacks_are_clipped_like_any_text_when_not_preserved() -> None:
    text = "\n".join([*TRACEBACK, "x" * 100])
    clipped, _ = clip_text(text, 40, False, "...({remaining})")
    assert clipped.split("\n") == [*TRACEBACK[:1], "...(4)"]


def test_the_message_is_not_a_format_string(strategy: str) -> None:
    c = clipper(max_length=3, truncation_message="{0} {remaining.__class__} {x}")
    out = output(c, strategy, text="abcdef")
    assert out["clipped_text"] == "abc\n{0} {remaining.__class__} {x}"


@pytest.mark.parametrize("payload", [{"text": 42}, {"data": ["a"]}, {"a": 1, "b": 2}])
def test_non_text_input_fails_the_job_naming_text(
    strategy: str, payload: dict[str, Any]
) -> None:
    message = failure(TextClipper(), strategy, **payload)
    assert message.startswith("TextClipper: 'text' must be a string")


@pytest.mark.parametrize(
    "config",
    [
        {"max_length": 0},
        {"max_length": "10"},
        {"max_length": True},
        {"preserve_tracebacks": "yes"},
        {"truncation_message": None},
    ],
)
def test_bad_configuration_is_refused(config: dict[str, Any]) -> None:
    c = TextClipper()
    with pytest.raises(ConfigurationError, match=f"config '{next(iter(config))}'"):
        c.set_config(**config)
    assert c.config() == TextClipper().config()


def test_clipper_round_trip(strategy: str) -> None:
    c = clipper(max_length=12, preserve_tracebacks=False, truncation_message="~")
    rebuilt = round_trip(c)
    assert rebuilt.config() == c.config()
    out = output(rebuilt, strategy, text="hello\nworld\nagain")
    assert out["clipped_text"] == "hello\nworld\n~"


# -- TextRenderer --------------------------------------------------------------------

DATA = {"name": "Ada", "langs": ["en", "fr"], "address": {"city": "Paris"}, "none": []}


def test_renders_xml_like_tags_with_indentation(strategy: str) -> None:
    out = output(TextRenderer(), strategy, data=DATA)
    assert out["original_type"] == "dict"
    assert out["rendered_text"].split("\n") == [
        "<name>Ada</name>",
        "<langs>",
        "  <item>en</item>",
        "  <item>fr</item>",
        "</langs>",
        "<address>",
        "  <city>Paris</city>",
        "</address>",
        "<none></none>",
    ]


def test_renders_markdown(strategy: str) -> None:
    data = {"team": [{"name": "Ada", "role": "lead"}, "Bob"], "size": 2}
    out = output(renderer(tag_format="markdown", indent=4), strategy, data=data)
    assert out["rendered_text"].split("\n") == [
        "**team**:",
        "    - **name**: Ada",
        "        **role**: lead",
        "    - Bob",
        "**size**: 2",
    ]


@pytest.mark.parametrize(
    ("value", "text", "kind"),
    [
        (3.5, "3.5", "float"),
        ("plain", "plain", "str"),
        ([1, 2], "<item>1</item>\n<item>2</item>", "list"),
    ],
)
def test_renders_plain_values_and_lists(
    strategy: str, value: Any, text: str, kind: str
) -> None:
    assert output(TextRenderer(), strategy, data=value) == {
        "rendered_text": text,
        "original_type": kind,
    }


def test_self_containing_or_too_deep_data_fails_naming_where() -> None:
    loop: dict[str, Any] = {"a": {}}
    loop["a"]["back"] = loop
    deep: Any = 1
    for _ in range(150):
        deep = [deep]
    r = TextRenderer()
    for data, words in ((loop, "contains itself"), (deep, "nested more than 100")):
        from routilux.builtin.text_renderer import _Renderer

        with pytest.raises(ValueError, match=words):
            _Renderer("xml", "  ").lines(data, 0, "data")
    assert r.get_config("tag_format") == "xml"


def test_too_deep_data_is_an_error_record_not_a_crash(strategy: str) -> None:
    deep: Any = 1
    for _ in range(150):
        deep = {"k": deep}
    assert "nested more than 100 levels" in failure(TextRenderer(), strategy, data=deep)


@pytest.mark.parametrize(
    "config",
    [{"tag_format": "html"}, {"indent": "--"}, {"indent": 99}, {"indent": None}],
)
def test_bad_renderer_configuration_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="TextRenderer: config"):
        TextRenderer().set_config(**config)


def test_renderer_round_trip(strategy: str) -> None:
    r = renderer(tag_format="markdown", indent="\t")
    rebuilt = round_trip(r)
    assert rebuilt.config() == {"tag_format": "markdown", "indent": "\t"}
    out = output(rebuilt, strategy, data={"a": {"b": 1}})
    assert out["rendered_text"] == "**a**:\n\t**b**: 1"
