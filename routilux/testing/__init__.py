"""Helpers for testing flows and strategies.

* :func:`check_strategy` runs the strategy conformance suite (see
  :mod:`routilux.testing.conformance`) against a strategy factory.
"""

from __future__ import annotations

from .conformance import CHECKS, ProbeTask, check_strategy

__all__ = ["CHECKS", "ProbeTask", "check_strategy"]
