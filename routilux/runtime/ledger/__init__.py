"""The ledger: the one object per job that changes job and activation state.

The only writer of a job's :class:`~routilux.JobState` and of its activations'
states, in seven modules, each class built on the one before: :mod:`.base`
(state), :mod:`.pausing` (halting, pausing), :mod:`.completion` (completion
rule, final write), :mod:`.failures` (errors by policy, timeouts, failures
around a task), :mod:`.running` (running and settling activations),
:mod:`.emitting` (emits made into queued activations) and :mod:`.core`
(starting jobs, inbox flushes), with :mod:`.streaming` and :mod:`.holding` for
checkpointed jobs. What a job produced is kept in :mod:`.outputs`, what waits
in slots with a policy in :mod:`.inboxes`. :mod:`.core`'s docstring draws the
whole picture and the lock order.
"""

from __future__ import annotations

from .core import JobLedger

__all__ = ["JobLedger"]
