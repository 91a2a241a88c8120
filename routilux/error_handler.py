"""Compatibility path for ``from routilux.error_handler import ErrorHandler``."""

from __future__ import annotations

from .resilience import ErrorHandler, ErrorStrategy

__all__ = ["ErrorHandler", "ErrorStrategy"]
