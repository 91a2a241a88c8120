"""TextClipper: shorten text to a maximum length, keeping tracebacks whole."""

from __future__ import annotations

from typing import Any, ClassVar

from ..checks import flag, instance_of, positive_int
from ._base import MISSING, BuiltinRoutine, Check, input_value

__all__ = ["TextClipper"]

_TRACEBACK = "Traceback (most recent call last):"


def _check_message(value: Any, what: str) -> str:
    instance_of(value, str, what, "a string")
    return str(value)


class TextClipper(BuiltinRoutine):
    """Clips text to ``max_length`` characters, whole lines at a time.

    Slot ``input`` (the text as ``text``, ``data`` or the payload's only value);
    event ``output`` with ``clipped_text``, ``was_clipped`` and
    ``original_length``.

    Configuration (``set_config``):

    * ``max_length`` (1000): the most characters of the input kept. Whole lines
      are kept from the start while they fit; a first line longer than the limit
      is cut at the limit.
    * ``preserve_tracebacks`` (True): Python tracebacks (from ``Traceback (most
      recent call last):`` to the exception line) are kept whole wherever they
      are, even past the limit; the other lines share what is left.
    * ``truncation_message`` (``"...({remaining} lines clipped)"``): put where
      lines were dropped (or a line was cut); ``{remaining}`` is replaced by how
      many lines are not shown whole. The message comes
      on top of ``max_length``. It is not a format string: nothing else in it is
      interpreted.

    Text that fits is passed on unchanged. Input that is not a string raises
    ``ValueError`` naming ``text``.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "max_length": 1000,
        "preserve_tracebacks": True,
        "truncation_message": "...({remaining} lines clipped)",
    }
    checks: ClassVar[dict[str, Check]] = {
        "max_length": positive_int,
        "preserve_tracebacks": flag,
        "truncation_message": _check_message,
    }

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self._clip)
        self.define_event("output", ["clipped_text", "was_clipped", "original_length"])

    def _clip(self, text: Any = MISSING, **kwargs: Any) -> None:
        value = input_value(text, kwargs, "data")
        if not isinstance(value, str):
            raise ValueError(
                f"{type(self).__name__}: 'text' must be a string, got "
                f"{type(value).__name__}"
            )
        clipped, was_clipped = clip_text(
            value,
            self._setting("max_length"),
            self._setting("preserve_tracebacks"),
            self._setting("truncation_message"),
        )
        self.emit(
            "output",
            clipped_text=clipped,
            was_clipped=was_clipped,
            original_length=len(value),
        )


def clip_text(
    text: str, max_length: int, keep_tracebacks: bool, message: str
) -> tuple[str, bool]:
    """``text`` clipped as :class:`TextClipper` documents, and whether it was."""
    if len(text) <= max_length:
        return text, False
    lines = text.split("\n")
    pinned = _traceback_lines(lines) if keep_tracebacks else set()
    budget = max_length - sum(len(lines[i]) + 1 for i in pinned)
    kept: dict[int, str] = {i: lines[i] for i in pinned}
    partial = -1
    for index, line in enumerate(lines):
        if index in pinned:
            continue
        if len(line) + 1 > budget:
            if not kept and budget > 0:  # one long first line: cut it
                kept[index], partial = line[:budget], index
            break
        budget -= len(line) + 1
        kept[index] = line
    out: list[str] = []
    dropped = 0
    for index in range(len(lines)):
        if index not in kept:
            dropped += 1
            continue
        if dropped:
            out.append(message.replace("{remaining}", str(dropped)))
        out.append(kept[index])
        dropped = 1 if index == partial else 0
    if dropped:
        out.append(message.replace("{remaining}", str(dropped)))
    return "\n".join(out), True


def _traceback_lines(lines: list[str]) -> set[int]:
    """Indexes of the lines that belong to a Python traceback."""
    pinned: set[int] = set()
    index = 0
    while index < len(lines):
        header = lines[index]
        if not header.lstrip().startswith(_TRACEBACK):
            index += 1
            continue
        margin = len(header) - len(header.lstrip())
        pinned.add(index)
        index += 1
        while index < len(lines) and _indented(lines[index], margin):
            pinned.add(index)
            index += 1
        if index < len(lines) and lines[index].strip():  # the exception line
            pinned.add(index)
            index += 1
    return pinned


def _indented(line: str, margin: int) -> bool:
    return len(line) > margin and line[: margin + 1].isspace()
