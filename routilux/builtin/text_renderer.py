"""TextRenderer: dicts, lists and values as XML-like tags or markdown."""

from __future__ import annotations

from typing import Any, ClassVar

from ..exceptions import ConfigurationError
from ._base import MISSING, BuiltinRoutine, Check, input_value

__all__ = ["TextRenderer"]

#: The deepest nesting rendered; deeper data raises ValueError naming the path.
MAX_DEPTH = 100
_FORMATS = ("xml", "markdown")


def _check_format(value: Any, what: str) -> str:
    if not isinstance(value, str) or value not in _FORMATS:
        raise ConfigurationError(f"{what} must be 'xml' or 'markdown', got {value!r}")
    return value


def _check_indent(value: Any, what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 16:
        return " " * value
    if isinstance(value, str) and (value == "" or value.isspace()) and len(value) <= 16:
        return value
    raise ConfigurationError(
        f"{what} must be up to 16 spaces or tabs, or their number, got {value!r}"
    )


class TextRenderer(BuiltinRoutine):
    """Renders structured data as text.

    Slot ``input`` (the value as ``data`` or the payload's only value, else the
    whole payload); event ``output`` with ``rendered_text`` and
    ``original_type`` (the input's type name).

    Configuration (``set_config``):

    * ``tag_format`` (``"xml"``): ``"xml"`` renders each dict key as
      ``<key>value</key>`` and each list item as ``<item>value</item>``, nested
      values on their own indented lines; ``"markdown"`` renders keys as
      ``**key**: value`` and list items as ``- value``.
    * ``indent`` (two spaces): the indentation per level, spaces or tabs, or
      their number.

    Values are rendered with ``str()``; nothing is escaped (the tags are
    XML-like, for people and language models to read, not an XML document).
    Data nested deeper than 100 levels, or holding itself, raises ``ValueError``
    naming where.
    """

    defaults: ClassVar[dict[str, Any]] = {"tag_format": "xml", "indent": "  "}
    checks: ClassVar[dict[str, Check]] = {
        "tag_format": _check_format,
        "indent": _check_indent,
    }

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self._render)
        self.define_event("output", ["rendered_text", "original_type"])

    def _render(self, data: Any = MISSING, **kwargs: Any) -> None:
        value = input_value(data, kwargs, "data")
        renderer = _Renderer(self._setting("tag_format"), self._setting("indent"))
        text = "\n".join(renderer.lines(value, 0, "data"))
        self.emit("output", rendered_text=text, original_type=type(value).__name__)


class _Renderer:
    def __init__(self, tag_format: str, indent: str) -> None:
        self.xml = tag_format == "xml"
        self.indent = indent
        self.open: set[int] = set()  # ids of the containers being rendered

    def lines(self, value: Any, level: int, path: str) -> list[str]:
        pad = self.indent * level
        if not _nested(value):
            return [pad + _scalar(value)]
        if level >= MAX_DEPTH:
            raise ValueError(
                f"TextRenderer: {path} is nested more than {MAX_DEPTH} levels deep"
            )
        if id(value) in self.open:
            raise ValueError(f"TextRenderer: {path} contains itself")
        self.open.add(id(value))
        try:
            if isinstance(value, dict):
                return self._pairs(value, level, path)
            return self._items(value, level, path)
        finally:
            self.open.discard(id(value))

    def _pairs(self, value: dict[Any, Any], level: int, path: str) -> list[str]:
        pad, out = self.indent * level, []
        for key, item in value.items():
            inner = self.lines(item, level + 1, f"{path}[{key!r}]")
            if self.xml and _nested(item):
                out += [f"{pad}<{key}>", *inner, f"{pad}</{key}>"]
            elif self.xml:
                out.append(f"{pad}<{key}>{inner[0].lstrip()}</{key}>")
            elif _nested(item):
                out += [f"{pad}**{key}**:", *inner]
            else:
                out.append(f"{pad}**{key}**: {inner[0].lstrip()}")
        return out

    def _items(
        self, value: list[Any] | tuple[Any, ...], level: int, path: str
    ) -> list[str]:
        pad, out = self.indent * level, []
        for index, item in enumerate(value):
            inner = self.lines(item, level + 1, f"{path}[{index}]")
            if self.xml and _nested(item):
                out += [f"{pad}<item>", *inner, f"{pad}</item>"]
            elif self.xml:
                out.append(f"{pad}<item>{inner[0].lstrip()}</item>")
            else:  # the item's first line goes on the bullet, the rest below it
                out += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
        return out


def _nested(value: Any) -> bool:
    """A non-empty dict, list or tuple (rendered over several lines)."""
    return isinstance(value, (dict, list, tuple)) and len(value) > 0


def _scalar(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return ""  # empty: an empty tag, an empty line
    return str(value)
