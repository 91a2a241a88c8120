"""DataFlattener: nested dicts and lists to one dict of dotted keys."""

from __future__ import annotations

from typing import Any, ClassVar

from ..checks import flag, instance_of
from ..exceptions import ConfigurationError
from ._base import MISSING, BuiltinRoutine, Check, input_value

__all__ = ["DataFlattener"]

#: The largest ``max_depth`` accepted.
DEPTH_LIMIT = 1000
_EXIT = object()  # marks where the walk leaves a container


def _check_separator(value: Any, what: str) -> str:
    instance_of(value, str, what, "a non-empty string")
    if not value:
        raise ConfigurationError(f"{what} must be a non-empty string, got ''")
    return str(value)


def _check_depth(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{what} must be an int, got {value!r}")
    if not 1 <= value <= DEPTH_LIMIT:
        raise ConfigurationError(f"{what} must be from 1 to {DEPTH_LIMIT}, got {value}")
    return value


class DataFlattener(BuiltinRoutine):
    """Flattens nested dicts and lists into one dict with joined keys.

    Slot ``input`` (the value as ``data`` or the payload's only value, else the
    whole payload); event ``output`` with ``flattened_data``, ``original_type``
    (the input's type name) and ``depth`` (how many levels of containers were
    flattened: 0 for a plain value, 1 for a flat dict).

    ``{"a": {"b": 1, "c": [2, 3]}}`` becomes ``{"a.b": 1, "a.c.0": 2, "a.c.1": 3}``.

    Configuration (``set_config``):

    * ``separator`` (``"."``): joins the keys.
    * ``preserve_lists`` (False): when True, lists are kept whole as values
      instead of being flattened into index keys.
    * ``max_depth`` (100): containers deeper than this are kept whole as the
      value of their key (up to 1000).

    Empty dicts and lists below the top are kept as values; a plain value at the
    top becomes ``{"value": ...}``. Keys are joined with ``str()``. Two paths
    that flatten to the same key, and data that contains itself, raise
    ``ValueError`` naming the key.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "separator": ".",
        "preserve_lists": False,
        "max_depth": 100,
    }
    checks: ClassVar[dict[str, Check]] = {
        "separator": _check_separator,
        "preserve_lists": flag,
        "max_depth": _check_depth,
    }

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self._flatten)
        self.define_event("output", ["flattened_data", "original_type", "depth"])

    def _flatten(self, data: Any = MISSING, **kwargs: Any) -> None:
        value = input_value(data, kwargs, "data")
        flat, depth = flatten(
            value,
            self._setting("separator"),
            self._setting("preserve_lists"),
            self._setting("max_depth"),
        )
        self.emit(
            "output",
            flattened_data=flat,
            original_type=type(value).__name__,
            depth=depth,
        )


def flatten(
    value: Any, separator: str, preserve_lists: bool, max_depth: int
) -> tuple[dict[str, Any], int]:
    """``value`` flattened as :class:`DataFlattener` documents, and its depth.

    The walk keeps its own stack: deep data cannot exhaust Python's.
    """
    kinds: tuple[type, ...] = (dict,) if preserve_lists else (dict, list, tuple)
    flat: dict[str, Any] = {}
    if not isinstance(value, kinds):
        return {"value": value}, 0
    deepest = 0
    open_ids: set[int] = set()
    pending: list[tuple[Any, str, Any, int]] = [(None, "", value, 0)]
    while pending:
        marker, key, item, depth = pending.pop()
        if marker is _EXIT:
            open_ids.discard(id(item))
            continue
        expand = isinstance(item, kinds) and depth < max_depth
        if expand and (item or depth == 0):
            if id(item) in open_ids:
                raise ValueError(f"DataFlattener: {key!r} contains itself")
            open_ids.add(id(item))
            deepest = max(deepest, depth + 1)
            pending.append((_EXIT, key, item, depth))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            children = [
                (None, f"{key}{separator}{k}" if key else str(k), v, depth + 1)
                for k, v in pairs
            ]
            pending.extend(reversed(children))
            continue
        if key in flat:
            raise ValueError(
                f"DataFlattener: two paths flatten to the key {key!r}; choose "
                "another separator"
            )
        flat[key] = item
    return flat, deepest
