"""Reading YAML blocks: PyYAML's ``safe_load`` when installed, else a small subset.

routilux does not depend on PyYAML. Without it, the block-style YAML language
models and people write most is read: mappings (``key: value``), sequences
(``- item``), nesting by indentation, comments, quoted and plain scalars (numbers,
``true``/``false``/``yes``/``no``, ``null``/``~``) and flow collections written as
JSON (``[1, 2]``). Anything else (anchors, tags, ``|`` and ``>`` blocks) raises
``ValueError``, and the extractor then keeps the block as text.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

__all__ = ["load_yaml"]

MAX_DEPTH = 100
_BOOLS = {
    **dict.fromkeys(("true", "yes", "on"), True),
    **dict.fromkeys(("false", "no", "off"), False),
}
_NULLS = ("", "~", "null")
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_FLOAT = re.compile(
    r"[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
)
_KEY = re.compile(
    r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\[\]{},:-][^#]*?|-[^\s#][^#]*?)\s*:(?:\s+|$)"""
)


def load_yaml(text: str) -> Any:
    """The value of a YAML document.

    Raises:
        ValueError: When the text is not YAML this function can read.
    """
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        return _Parser(text).parse()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not YAML: {exc}") from None


class _Parser:
    def __init__(self, text: str) -> None:
        self.lines: list[tuple[int, str]] = []
        for raw in text.splitlines():
            content = _strip_comment(raw).rstrip()
            if content.strip() in ("", "---"):
                continue
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise ValueError("tabs are not allowed in YAML indentation")
            self.lines.append((len(content) - len(content.lstrip()), content.strip()))

    def parse(self) -> Any:
        if not self.lines:
            return None
        value, end = self.node(0, self.lines[0][0], 0)
        if end != len(self.lines):
            raise ValueError(f"unexpected indentation at {self.lines[end][1]!r}")
        return value

    def node(self, index: int, indent: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise ValueError("YAML nested too deeply")
        text = self.lines[index][1]
        if text == "-" or text.startswith("- "):
            return self.sequence(index, indent, depth)
        if _KEY.match(text):
            return self.mapping(index, indent, depth)
        if index + 1 < len(self.lines) and self.lines[index + 1][0] >= indent:
            raise ValueError(
                f"a plain value cannot continue on the next line: {text!r}"
            )
        return _scalar(text), index + 1

    def sequence(self, index: int, indent: int, depth: int) -> tuple[list[Any], int]:
        items: list[Any] = []
        while index < len(self.lines) and self.lines[index][0] == indent:
            text = self.lines[index][1]
            if not (text == "-" or text.startswith("- ")):
                break
            rest = text[1:].lstrip()
            if rest:  # the item starts on the dash's line, maybe a mapping
                inner = indent + len(text) - len(rest)
                self.lines[index] = (inner, rest)
                value, index = self.node(index, inner, depth + 1)
            else:
                value, index = self.child(index + 1, indent, depth)
            items.append(value)
        return items, index

    def mapping(
        self, index: int, indent: int, depth: int
    ) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        while index < len(self.lines) and self.lines[index][0] == indent:
            match = _KEY.match(self.lines[index][1])
            if match is None:
                break
            key = _key(match.group(1))
            rest = self.lines[index][1][match.end() :].strip()
            if rest:
                result[key], index = _scalar(rest), index + 1
            else:
                result[key], index = self.child(index + 1, indent, depth, dash_ok=True)
        return result, index

    def child(
        self, index: int, indent: int, depth: int, *, dash_ok: bool = False
    ) -> tuple[Any, int]:
        """The block under a ``key:`` or ``-`` line (None when there is none)."""
        if index >= len(self.lines):
            return None, index
        inner, text = self.lines[index]
        same_level_list = dash_ok and inner == indent and text.startswith("-")
        if inner > indent or same_level_list:
            return self.node(index, inner, depth + 1)
        return None, index


def _strip_comment(line: str) -> str:
    quote = ""
    for position, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1].isspace()):
            return line[:position]
    return line


def _key(text: str) -> str:
    value = _scalar(text)
    return value if isinstance(value, str) else text


def _scalar(text: str) -> Any:
    if text[:1] in ("&", "*", "!", "|", ">", "%", "@", "`"):
        raise ValueError(f"YAML feature not supported without PyYAML: {text!r}")
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise ValueError(f"unterminated string: {text!r}")
        return text[1:-1].replace("''", "'")
    if text[:1] in "[{":
        return json.loads(text)
    lowered = text.lower()
    if lowered in _NULLS:
        return None
    if lowered in _BOOLS:
        return _BOOLS[lowered]
    if _INT.fullmatch(text):
        return int(text.replace("_", ""))
    if _FLOAT.fullmatch(text):
        return float(text.replace("_", ""))
    return text
