"""Steps of running jobs written together: the group commit of checkpoints.

A checkpointed job records each settled activation as one *step* (the
activation done, the children it made pending, now and then the job document
and the history made since). Written one transaction each, steps cost more than
the activations they record, so on the concurrent strategy the runtime hands
them to one writer thread that writes whatever has queued up, from every job of
the flow, in one call: :func:`write_steps`. A store implementing
:class:`BatchingStore` writes such a batch in one transaction
(:class:`~routilux.persistence.SQLiteCheckpointStore` does); any other store is
given the steps one by one, through ``record_step`` (or ``log_step``).

Each step stays atomic either way, and every step reports its own outcome: a
step that cannot be written (a payload the store refuses, an unknown job) fails
alone, a failed transaction fails every step it held.

.. versionadded:: 1.0
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from .base import CheckpointStore
from .history_log import LoggingStore

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["BatchingStore", "Step", "write_step", "write_steps"]


class Step(NamedTuple):
    """One step of a running job, as :meth:`CheckpointStore.record_step` takes it.

    Attributes:
        job_id: The job the step belongs to (stored already).
        finished: Ids of pending activations that completed.
        added: Activations that became pending, in the order they were made.
        job: The job document after the step, if it is written with it.
        history: History entries to append to the job's log (only for a
            :class:`~routilux.persistence.LoggingStore`), numbered from ``first``.
        first: The number of the first entry of ``history``.
    """

    job_id: str
    finished: Sequence[str] = ()
    added: Sequence[dict[str, Any]] = ()
    job: dict[str, Any] | None = None
    history: Sequence[dict[str, Any]] | None = None
    first: int = 0


@runtime_checkable
class BatchingStore(CheckpointStore, Protocol):
    """A :class:`CheckpointStore` that writes many steps in one transaction.

    Implementations are thread-safe.

    .. versionadded:: 1.0
    """

    def record_steps(self, steps: Sequence[Step]) -> list[BaseException | None]:
        """Write ``steps``, in order, each atomically; return each one's error.

        A step whose input is refused (an activation the store cannot encode,
        an unknown job) is left out and gets its own error; the others are
        written in one transaction, so a failed write gives each of them the
        same error and writes none.

        Returns:
            One entry per step, in order: None when it was written.
        """


def write_steps(
    store: CheckpointStore, steps: Sequence[Step]
) -> list[BaseException | None]:
    """Write ``steps`` to ``store``: in one transaction when it can batch.

    Never raises: every step's error is in the list returned, one entry per
    step (None when it was written).
    """
    if _batches(store):
        try:
            return store.record_steps(steps)  # type: ignore[attr-defined, no-any-return]
        except BaseException as exc:  # noqa: BLE001 - each step reports it
            return [exc] * len(steps)
    return [_written_or_error(store, step) for step in steps]


def _batches(store: CheckpointStore) -> bool:
    """Whether ``store`` writes batches through ``record_steps``.

    Not when its class overrides ``record_step`` or ``log_step`` below the
    class that batches: a subclass that changes how one step is written (to
    count, check or refuse steps) is given every step through them.
    """
    cls = type(store)
    known = _BATCHES.get(cls)
    if known is None:
        # isinstance() of a runtime-checkable protocol is slow: once per class.
        known = isinstance(store, BatchingStore) and _same_writer(cls)
        _BATCHES[cls] = known
    return known


def _same_writer(cls: type) -> bool:
    owner = next(k for k in cls.__mro__ if "record_steps" in vars(k))
    return all(
        getattr(cls, name, None) is getattr(owner, name, None)
        for name in ("record_step", "log_step")
    )


#: Per batching store class: whether it batches (read without a lock: a
#: second computation gives the same answer).
_BATCHES: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _written_or_error(store: CheckpointStore, step: Step) -> BaseException | None:
    try:
        write_step(store, step)
    except BaseException as exc:  # noqa: BLE001 - the step reports it
        return exc
    return None


def write_step(store: CheckpointStore, step: Step) -> None:
    """Write one step through ``record_step`` (``log_step`` when it logs).

    Raises:
        Exception: What the store raised.
    """
    if step.history is not None and isinstance(store, LoggingStore):
        store.log_step(
            step.job_id,
            finished=step.finished,
            added=step.added,
            history=step.history,
            first=step.first,
            job=step.job,
        )
    else:
        store.record_step(
            step.job_id, finished=step.finished, added=step.added, job=step.job
        )
