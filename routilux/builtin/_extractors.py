"""The built-in extractors of :class:`ResultExtractor`.

Each takes the text and returns an :class:`Extraction` or None. Nothing here runs
code found in the text: JSON through :mod:`json`, Python literals through
:func:`ast.literal_eval`, YAML through ``safe_load`` or a small subset reader.
"""

from __future__ import annotations

import ast
import json
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from ._yaml import load_yaml

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["BUILTIN", "Extraction"]

#: What a parser of text may raise on bad input (deep nesting among it).
_PARSE_ERRORS = (ValueError, TypeError, SyntaxError, RecursionError, MemoryError)
_FENCE = "```"
_PAIR = re.compile(r"^\s*(?:[-*]\s+)?([A-Za-z_][\w .-]{0,63}?)\s*[:=](.*)$")
_MAX_STARTS = 100  # where an embedded JSON value is looked for, at most


class Extraction(NamedTuple):
    """One extractor's result."""

    result: Any
    format: str
    metadata: dict[str, Any]
    confidence: float


def _blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block, in order (one pass, no regex)."""
    found: list[tuple[str, str]] = []
    position = 0
    while True:
        start = text.find(_FENCE, position)
        line_end = text.find("\n", start) if start >= 0 else -1
        end = text.find(_FENCE, line_end + 1) if line_end >= 0 else -1
        if end < 0:
            return found
        info = text[start + len(_FENCE) : line_end].split()
        found.append((info[0].lower() if info else "", text[line_end + 1 : end]))
        position = end + len(_FENCE)


def _parsed_block(
    text: str,
    languages: tuple[str, ...],
    parse: Callable[[str], Any],
    kind: str,
    confidence: float,
) -> Extraction | None:
    """The last block in ``languages`` that ``parse`` reads."""
    blocks = _blocks(text)
    for index in reversed(range(len(blocks))):
        language, body = blocks[index]
        if language not in languages:
            continue
        try:
            value = parse(body)
        except _PARSE_ERRORS:
            continue
        metadata = {"block_index": index, "block_count": len(blocks)}
        return Extraction(value, kind, metadata, confidence)
    return None


def json_block(text: str) -> Extraction | None:
    """The last fenced ``json`` block that parses."""
    return _parsed_block(text, ("json", "jsonc", "json5"), json.loads, "json", 0.95)


def yaml_block(text: str) -> Extraction | None:
    """The last fenced ``yaml``/``yml`` block that parses."""
    return _parsed_block(text, ("yaml", "yml"), load_yaml, "yaml", 0.9)


def bare_json(text: str) -> Extraction | None:
    """A JSON object or array: the whole text (0.9), else the first one inside it."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return Extraction(json.loads(stripped), "json", {"embedded": False}, 0.9)
        except _PARSE_ERRORS:
            pass
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r"[\[{]", text)][:_MAX_STARTS]
    for start in starts:
        try:
            value, end = decoder.raw_decode(text, start)
        except _PARSE_ERRORS:
            continue
        if isinstance(value, (dict, list)) and value:
            metadata = {"embedded": True, "start": start, "end": end}
            return Extraction(value, "json", metadata, 0.75)
    return None


def python_literal(text: str) -> Extraction | None:
    """A Python dict, list, tuple or set literal (``ast.literal_eval``, never eval)."""
    stripped = text.strip()
    if stripped[:1] not in ("{", "[", "("):
        return None
    try:
        value = ast.literal_eval(stripped)
    except _PARSE_ERRORS:
        return None
    if not isinstance(value, (dict, list, tuple, set, frozenset)):
        return None
    return Extraction(_plain(value), "python", {}, 0.85)


def code_block(text: str) -> Extraction | None:
    """The last fenced block of any language, as text."""
    blocks = _blocks(text)
    if not blocks:
        return None
    language, body = blocks[-1]
    metadata = {
        "language": language or None,
        "block_index": len(blocks) - 1,
        "block_count": len(blocks),
    }
    return Extraction(body.rstrip("\n"), language or "code", metadata, 0.7)


def key_value(text: str) -> Extraction | None:
    """``key: value`` or ``key = value`` lines, when every non-blank line is one."""
    pairs: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _PAIR.match(line)
        if match is None:
            return None
        pairs[match.group(1)] = _value(match.group(2).strip())
    if not pairs:
        return None
    return Extraction(pairs, "key_value", {"pairs": len(pairs)}, 0.6)


def _value(text: str) -> Any:
    """A number, true, false or null as such; anything else as the text."""
    if text in ("true", "false", "null") or re.fullmatch(
        r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text
    ):
        try:
            return json.loads(text)
        except _PARSE_ERRORS:
            return text
    return text


def _plain(value: Any) -> Any:
    """Tuples and sets as lists (sets sorted when they can be), recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        items = [_plain(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


#: The built-in extractors of text, by name, in their default order.
BUILTIN: dict[str, Callable[[str], Extraction | None]] = {
    "json_block": json_block,
    "yaml_block": yaml_block,
    "json": bare_json,
    "python_literal": python_literal,
    "code_block": code_block,
    "key_value": key_value,
}
