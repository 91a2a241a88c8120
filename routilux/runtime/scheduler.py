"""The old name of the job ledger's module (internal; kept for scripts that read it).

Per-job bookkeeping moved to :mod:`routilux.runtime.ledger`; ``JobRun`` is the old
name of :class:`~routilux.runtime.ledger.JobLedger`.
"""

from __future__ import annotations

from .ledger import JobLedger as JobRun

__all__ = ["JobRun"]
