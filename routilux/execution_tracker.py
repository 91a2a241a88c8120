"""Compatibility path for ``from routilux.execution_tracker import ExecutionTracker``."""

from __future__ import annotations

from .tracking import ExecutionTracker

__all__ = ["ExecutionTracker"]
