"""Pool statistics: what :meth:`Flow.get_stats() <routilux.Flow.get_stats>` returns.

:class:`PoolStats` is a typed, immutable snapshot of a flow's pool — workers, busy,
queued, completed and failed activations, per-routine counts and durations,
sessions and lanes, inbox fill, dead letters, backpressure and circuit breakers —
taken at one moment. It is also a read-only mapping with the same keys (so
``stats["routines"]["a"]["p95_execution_time"]`` and ``stats.routines["a"].
p95_execution_time`` read the same figure) and :meth:`PoolStats.to_dict` gives
plain dicts for JSON.

The pool figures (``workers``, ``busy``, ``queued``...) are summed over every
strategy the flow has started; ``strategies`` keeps each one's own figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["InboxStats", "PoolStats", "RoutineStats"]


class _FieldMapping(Mapping[str, Any]):
    """A dataclass readable as a read-only mapping of its fields."""

    def __getitem__(self, key: str) -> Any:
        if key in _names(type(self)):
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(_names(type(self)))

    def __len__(self) -> int:
        return len(_names(type(self)))

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain dicts and lists, nested ones included."""
        return {name: _plain(getattr(self, name)) for name in _names(type(self))}


def _names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


def _plain(value: Any) -> Any:
    if isinstance(value, _FieldMapping):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


# eq=False: equality is the mapping's (a snapshot equals a dict of its figures).
@dataclasses.dataclass(frozen=True, eq=False)
class RoutineStats(_FieldMapping):
    """One routine's figures over every job the flow ran.

    Durations are in seconds; the percentiles are over the routine's latest
    4,096 durations, the other figures over all of its activations.
    """

    #: Activations that ran (retries are separate activations' attempts, not
    #: counted again).
    total_executions: int
    #: Activations that ended without an error.
    completed: int
    #: Activations whose handler raised (or timed out, or met an open circuit).
    failed: int
    #: ``completed / total_executions`` (0.0 before any ran).
    success_rate: float
    #: Mean duration.
    avg_execution_time: float
    #: Shortest duration in the window.
    min_execution_time: float
    #: Longest duration in the window.
    max_execution_time: float
    #: Median duration in the window.
    p50_execution_time: float
    #: 95th percentile duration in the window.
    p95_execution_time: float


@dataclasses.dataclass(frozen=True, eq=False)
class InboxStats(_FieldMapping):
    """Payloads waiting in slot inboxes (joins, batches, windows) of active jobs."""

    #: Inboxes holding at least one payload.
    waiting: int
    #: Payloads held in them (for policies that say how many they hold; one
    #: counted per waiting inbox otherwise).
    payloads: int


@dataclasses.dataclass(frozen=True, eq=False)
class PoolStats(_FieldMapping):
    """A snapshot of a flow's pool and of everything it ran (see the module doc)."""

    #: The flow's id.
    flow_id: str
    #: Worker threads over every strategy started.
    workers: int
    #: Activations running a handler now.
    busy: int
    #: Activations of ``async def`` handlers awaiting on the event loop.
    awaiting: int
    #: Activations accepted by a strategy and not started yet.
    queued: int
    #: Activations the strategies finished.
    completed: int
    #: Activations whose handler failed, over all routines.
    failed: int
    #: Activations dropped unstarted (a job cancelled, a shutdown).
    dropped: int
    #: Each strategy's own figures, by strategy name.
    strategies: Mapping[str, Mapping[str, Any]]
    #: Jobs with work left now.
    active_jobs: int
    #: Jobs paused now.
    paused_jobs: int
    #: Finished jobs by status.
    jobs: Mapping[str, int]
    #: Per-routine figures, by routine id.
    routines: Mapping[str, RoutineStats]
    #: Session lanes and session states (see :doc:`/guide/sessions`).
    sessions: Mapping[str, Any]
    #: Slot inboxes holding payloads.
    inboxes: InboxStats
    #: Dead letters held in memory and not replayed.
    dead_letters: int
    #: Backpressure figures, or None without ``max_pending``.
    pressure: Mapping[str, Any] | None
    #: Circuit breaker figures by routine id (routines with a breaker).
    circuit_breakers: Mapping[str, Mapping[str, Any]]

    @classmethod
    def build(cls, **figures: Any) -> PoolStats:
        """A snapshot from plain figures; the pool totals are summed here.

        ``strategies`` is summed into ``workers``, ``busy``, ``awaiting``,
        ``queued``, ``completed`` and ``dropped``; ``routines`` (dicts of
        figures) becomes :class:`RoutineStats` and gives ``failed``.
        """
        strategies: Mapping[str, Mapping[str, Any]] = figures.pop("strategies")
        routines = {
            rid: RoutineStats(**values)
            for rid, values in figures.pop("routines").items()
        }

        def total(key: str) -> int:
            return sum(int(each.get(key, 0)) for each in strategies.values())

        return cls(
            strategies=MappingProxyType(dict(strategies)),
            routines=MappingProxyType(routines),
            failed=sum(each.failed for each in routines.values()),
            workers=total("workers"),
            busy=total("busy"),
            awaiting=total("awaiting"),
            queued=total("queued"),
            completed=total("completed"),
            dropped=total("dropped"),
            **figures,
        )
