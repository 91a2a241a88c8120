"""Old import path for ExecutionTracker (0.9 code imports it here)."""

from __future__ import annotations

from .tracking import ExecutionTracker

__all__ = ["ExecutionTracker"]
