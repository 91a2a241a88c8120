"""Retention: which stored jobs a store may forget, and when it does so by itself.

Both built-in stores implement :class:`PruningStore`: ``store.prune(...)`` deletes,
in one step, the stored jobs that match, with their pending activations and the
dead letters of theirs that were already replayed. Letters still waiting to be
replayed are kept: they are the only copy of work that failed, and
:meth:`routilux.Flow.replay` needs nothing else of the job that made them.

A store given ``retention=Retention(...)`` prunes as it goes: once every
:attr:`Retention.every` jobs it records as finished, in the same write as the
last of them, so the cost is spread over many jobs instead of paid on each.

A running job is never pruned (``"running"`` and ``"pending"`` are refused as
statuses), and a paused one only when ``"paused"`` is named.

A :class:`~routilux.persistence.CheckpointStore` of one's own need not implement
``prune``: the protocol stays as it was, so stores written before it still work.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from ..checks import is_number, positive_int
from ..exceptions import CheckpointError, ConfigurationError
from .base import text

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "FINISHED",
    "PRUNABLE",
    "PrunePlan",
    "PruningStore",
    "Retention",
    "checked_retention",
    "doomed_jobs",
    "prune_plan",
]

#: The statuses of jobs that ended: what prune and retention delete by default.
FINISHED = ("cancelled", "completed", "failed")
#: Every status a job may be pruned in (a paused job only when asked for).
PRUNABLE = frozenset({*FINISHED, "paused"})


@runtime_checkable
class PruningStore(Protocol):
    """A store that can forget old jobs (both built-in stores are).

    .. versionadded:: 1.0
    """

    def prune(
        self,
        *,
        older_than: float | timedelta | None = None,
        status: str | Collection[str] | None = None,
        keep_last: int | None = None,
        flow_id: str | None = None,
    ) -> int:
        """Delete stored jobs that match, all in one step; return how many.

        A job is deleted when its status is in ``status``, it was last updated
        more than ``older_than`` ago (when given), and it is not among the
        ``keep_last`` most recently updated matching jobs of its flow (when
        given). Its pending activations go with it, and so do its dead letters
        that were replayed; letters waiting to be replayed are kept.

        Args:
            older_than: Seconds (a number >= 0) or a ``timedelta``.
            status: A status or a collection of them, among ``completed``,
                ``failed``, ``cancelled`` and ``paused`` (default: the first
                three). A running job is never pruned.
            keep_last: Keep this many of the newest matching jobs per flow (>= 0).
            flow_id: Only jobs of this flow.

        Raises:
            CheckpointError: For a bad argument (naming it), or when the store
                cannot write; nothing is deleted then.
        """


@dataclass(frozen=True)
class Retention:
    """How long a store keeps finished jobs; give it as ``retention=`` to a store.

    Args:
        max_age: Delete matching jobs last updated longer ago than this: seconds
            (a number >= 0) or a ``timedelta``. None: any age.
        keep_last: Keep at least this many of the newest matching jobs of each
            flow (>= 0). None: no such floor.
        statuses: The statuses retention deletes (default: completed, failed and
            cancelled; ``"paused"`` may be added; running jobs never).
        every: Prune once per this many jobs the store records as finished.

    At least one of ``max_age`` and ``keep_last`` is needed: a retention that
    deleted every finished job at once would be a mistake, not a policy.

    Raises:
        ConfigurationError: For a bad value, naming the setting.

    Example:
        >>> week = Retention(max_age=timedelta(days=7), keep_last=100)
        >>> week.max_age_seconds, week.status_names
        (604800.0, ('cancelled', 'completed', 'failed'))
    """

    max_age: float | timedelta | None = None
    keep_last: int | None = None
    statuses: str | Collection[str] = FINISHED
    every: int = 100
    #: ``max_age`` in seconds (None without one).
    max_age_seconds: float | None = field(init=False, repr=False)
    #: ``statuses`` as a sorted tuple of strings.
    status_names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        plan = prune_plan(
            self.max_age,
            self.statuses,
            self.keep_last,
            None,
            names=("Retention.max_age", "Retention.statuses", "Retention.keep_last"),
            error=ConfigurationError,
        )
        if self.max_age is None and self.keep_last is None:
            raise ConfigurationError(
                "Retention needs max_age or keep_last (or both): without either it "
                "would delete every finished job"
            )
        object.__setattr__(self, "every", positive_int(self.every, "Retention.every"))
        object.__setattr__(self, "max_age_seconds", plan.older_than)
        object.__setattr__(self, "status_names", plan.statuses)

    def plan(self) -> PrunePlan:
        """The prune this retention makes (internal)."""
        return PrunePlan(self.max_age_seconds, self.status_names, self.keep_last, None)


_PRUNE_NAMES = ("prune: older_than", "prune: status", "prune: keep_last")


def checked_retention(retention: Any) -> Retention | None:
    """A store's ``retention`` argument, checked.

    Raises:
        CheckpointError: When it is neither None nor a :class:`Retention`.
    """
    if retention is not None and not isinstance(retention, Retention):
        raise CheckpointError(
            f"retention must be None or a Retention, got {type(retention).__name__}"
        )
    return retention


class PrunePlan(NamedTuple):
    """Checked ``prune`` arguments (internal).

    Attributes:
        older_than: Seconds, or None.
        statuses: Sorted status names.
        keep_last: Jobs kept per flow, or None.
        flow_id: Only this flow's jobs, or None.
    """

    older_than: float | None
    statuses: tuple[str, ...]
    keep_last: int | None
    flow_id: str | None

    def cutoff(self, now: float | None = None) -> float | None:
        """The ``updated_at`` (seconds since the epoch) jobs must be older than."""
        if self.older_than is None:
            return None
        return (time.time() if now is None else now) - self.older_than


def prune_plan(
    older_than: Any,
    status: Any,
    keep_last: Any,
    flow_id: Any,
    *,
    names: tuple[str, str, str] = _PRUNE_NAMES,
    error: type[Exception] = CheckpointError,
) -> PrunePlan:
    """Check ``prune`` arguments.

    Args:
        older_than: Seconds, a timedelta or None.
        status: A status, a collection of them, or None (the finished ones).
        keep_last: An int >= 0 or None.
        flow_id: A str or None.
        names: How the first three are named in error messages.
        error: The exception class raised.

    Raises:
        CheckpointError: (or ``error``) Naming the argument and what it must be.
    """
    age_name, status_name, keep_name = names
    if isinstance(older_than, timedelta):
        seconds: float | None = older_than.total_seconds()
    elif older_than is None or is_number(older_than):
        seconds = None if older_than is None else float(older_than)
    else:
        raise error(
            f"{age_name} must be None, seconds (a number >= 0) or a timedelta, "
            f"got {older_than!r:.80}"
        )
    if seconds is not None and seconds < 0:
        raise error(f"{age_name} must not be negative, got {older_than!r:.80}")
    if keep_last is not None and not (
        type(keep_last) is int and keep_last >= 0  # bool is an int: refused
    ):
        raise error(f"{keep_name} must be None or an int >= 0, got {keep_last!r:.80}")
    if flow_id is not None and not isinstance(flow_id, str):
        raise error(f"prune: flow_id must be None or a str, got {flow_id!r:.80}")
    return PrunePlan(seconds, _statuses(status, status_name, error), keep_last, flow_id)


def _statuses(status: Any, what: str, error: type[Exception]) -> tuple[str, ...]:
    if status is None:
        return FINISHED
    if isinstance(text(status), str):
        names = [text(status)]
    elif isinstance(status, Collection) and not isinstance(status, (bytes, dict)):
        names = [text(item) for item in status]
    else:
        raise error(
            f"{what} must be a status or a collection of them, got {status!r:.80}"
        )
    if not names:
        raise error(f"{what} is an empty collection: it would match no job")
    for name in names:
        if name not in PRUNABLE:
            why = (
                "a running job is never pruned"
                if name in ("running", "pending")
                else f"it must be one of {sorted(PRUNABLE)}"
            )
            raise error(f"{what}: cannot prune jobs of status {name!r:.80}: {why}")
    return tuple(sorted(set(names)))


def doomed_jobs(
    rows: Iterable[tuple[str, str, str, float]], plan: PrunePlan, now: float
) -> list[str]:
    """The ids of jobs a plan deletes, from ``(job_id, flow_id, status, updated)``.

    The stores without SQL (the JSON files) decide with this; SQLite decides
    with the same rule in one query.
    """
    cutoff = plan.cutoff(now)
    matching = [
        row
        for row in rows
        if row[2] in plan.statuses and plan.flow_id in (None, row[1])
    ]
    # Newest first within each flow, ties broken by the larger id, as the SQL
    # does: two stable sorts.
    matching.sort(key=lambda row: row[0], reverse=True)
    matching.sort(key=lambda row: (row[1], -row[3]))
    doomed: list[str] = []
    seen: dict[str, int] = {}
    for job_id, flow_id, _, updated in matching:
        rank = seen[flow_id] = seen.get(flow_id, 0) + 1
        if plan.keep_last is not None and rank <= plan.keep_last:
            continue
        if cutoff is not None and not updated < cutoff:
            continue
        doomed.append(job_id)
    return doomed
