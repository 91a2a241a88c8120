"""The ledger: the one object per job that changes job and activation state.

The only writer of a job's :class:`~routilux.JobState` and of its activations'
states, in four modules: :mod:`.base` (state, halting, pausing), :mod:`.completion`
(completion rule, final write), :mod:`.failures` (errors by policy,
timeouts, failures around a task) and :mod:`.core` (emits, running, settling).
What a job produced is kept in :mod:`.outputs`. :mod:`.core`'s docstring
draws the whole picture and the lock order.
"""

from __future__ import annotations

from .core import JobLedger

__all__ = ["JobLedger"]
