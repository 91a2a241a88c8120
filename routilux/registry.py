"""The registry of Routine classes, by ``module:QualifiedName``.

Every subclass of :class:`~routilux.Routine` joins on definition, so a serialized
flow names its routines' classes and deserialization finds them here without
importing anything.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .routine import Routine

__all__ = [
    "class_key",
    "find_routine_class",
    "register_routine_class",
    "registered_keys",
]

_classes: dict[str, type[Routine]] = {}
_lock = threading.Lock()  # guards _classes: classes may be defined in several threads


def class_key(cls: type) -> str:
    """The registry key of ``cls``: ``module:QualifiedName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def register_routine_class(cls: type[Routine]) -> None:
    """Add ``cls`` under its key; a class redefined under the same key replaces it."""
    with _lock:
        _classes[class_key(cls)] = cls


def find_routine_class(key: str) -> type[Routine] | None:
    """The class registered under ``key``, or None."""
    return _classes.get(key)


def registered_keys() -> list[str]:
    """Every registered key, sorted."""
    with _lock:
        return sorted(_classes)
