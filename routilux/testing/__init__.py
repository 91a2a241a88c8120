"""Helpers for testing flows, routines and strategies.

* :func:`run_routine` calls one routine alone and returns what it did;
  :class:`RecordingRoutine` records what reaches it, per job.
* :class:`ManualStrategy` runs activations one at a time in an order chosen by a
  seed, so a race found once is reproduced from its seed; :func:`yield_point`
  marks where a thread switch could hurt, and :func:`explore` tries many seeds.
* :class:`FakeClock` is time that moves only when the test says so.
* :func:`check_strategy` runs the strategy conformance suite (see
  :mod:`routilux.testing.conformance`) against a strategy factory.
* ``pytest_plugins = ["routilux.testing.plugin"]`` adds the ``routilux_flow``
  fixture (flows shut down after the test, and no leaked threads).
"""

from __future__ import annotations

from .clock import FakeClock
from .conformance import CHECKS, ProbeTask, check_strategy
from .helpers import RecordingRoutine, RoutineRun, run_routine
from .manual import ManualStrategy, SeedFailure, explore, yield_point

__all__ = [
    "CHECKS",
    "FakeClock",
    "ManualStrategy",
    "ProbeTask",
    "RecordingRoutine",
    "RoutineRun",
    "SeedFailure",
    "check_strategy",
    "explore",
    "run_routine",
    "yield_point",
]
