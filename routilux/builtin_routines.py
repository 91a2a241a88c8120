"""The built-in routines under the module name routilux 0.9 used.

``from routilux.builtin_routines import TextClipper`` keeps working; new code
imports from ``routilux`` or :mod:`routilux.builtin`.
"""

from __future__ import annotations

from .builtin import (
    ConditionalRouter,
    DataFlattener,
    DataTransformer,
    DataValidator,
    ResultExtractor,
    TextClipper,
    TextRenderer,
    TimeProvider,
)

__all__ = [
    "ConditionalRouter",
    "DataFlattener",
    "DataTransformer",
    "DataValidator",
    "ResultExtractor",
    "TextClipper",
    "TextRenderer",
    "TimeProvider",
]
