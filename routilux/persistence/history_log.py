"""LoggingStore: a store that keeps a running job's history as an appended log.

A job's history grows with every emit and activation. Rewriting the whole job
document with it while the job runs (about once a second) made a checkpoint's
cost grow with the job, so a store implementing :class:`LoggingStore` is given
only the history made since the last document it was given, to append beside it
(:meth:`LoggingStore.log_step`), and the document written while the job runs
carries no history. Writing a whole document
(:meth:`~CheckpointStore.save_job`, or :meth:`~CheckpointStore.record_step`
with ``job=``), as the runtime does when a job pauses, compacts: the
document holds the whole history again and the log is emptied in the same
transaction. When a job ends, the runtime gives the store only the history
it was not given yet, with ``compact=True``: the store folds its log into the
document itself, and the history it holds is not encoded again.
:meth:`~CheckpointStore.load` returns the document's history followed by the
logged entries, so a reader sees one whole document either way.

The protocol is optional: a store without ``log_step`` is written as before
(the whole document about once a second).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, overload, runtime_checkable

import orjson

from .base import CheckpointStore

__all__ = ["HistoryBatch", "LoggingStore"]


class HistoryBatch(Sequence[dict[str, Any]]):
    """History entries encoded already: ``text``, the JSON array of ``size``.

    What the runtime gives :meth:`LoggingStore.log_step` as ``history``. A
    store that keeps the entries as JSON text (the SQLite store) writes
    :attr:`text` as it is; any other reads the batch as the sequence of
    entries it is (decoded once, when first read). The runtime encodes a long
    history a chunk at a time into one text: as a list of objects, a second's
    history (tens of thousands of entries) was built whole, then encoded, and
    its allocation alone set the garbage collector's full passes going.

    Args:
        text: A JSON array of history entries as a job document holds them.
        size: How many entries ``text`` holds.

    .. versionadded:: 1.0
    """

    __slots__ = ("_entries", "size", "text")

    def __init__(self, text: str, size: int) -> None:
        self.text = text
        self.size = size  # not "count": that is Sequence's method
        self._entries: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        entries = self._entries
        if entries is None:  # a race decodes twice, to equal lists
            entries = self._entries = orjson.loads(self.text)
        return entries[index]

    def __repr__(self) -> str:
        return f"HistoryBatch(size={self.size})"


@runtime_checkable
class LoggingStore(CheckpointStore, Protocol):
    """A :class:`CheckpointStore` that appends a running job's history.

    :class:`~routilux.persistence.SQLiteCheckpointStore` implements it.
    Implementations are thread-safe.

    .. versionadded:: 1.0
    """

    def log_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
        history: Sequence[dict[str, Any]] = (),
        first: int = 0,
        job: dict[str, Any] | None = None,
        restart: bool = False,
        compact: bool = False,
    ) -> None:
        """Record one step of a running job and the history it made, atomically.

        As :meth:`~CheckpointStore.record_step`, and appends ``history`` to the
        job's log; the log is kept when ``job`` replaces the document (the
        document's own ``execution_history`` comes first on load), unless
        ``compact``.

        Args:
            job_id: The job the step belongs to.
            finished: Ids of activations that completed (unknown ids are ignored).
            added: New pending activations, in the order they were emitted.
            history: History entries as a job document holds them (tagged
                JSON), numbered ``first``, ``first + 1``... within the job's log;
                an entry whose number is logged already replaces it. The
                runtime gives a :class:`HistoryBatch`.
            first: The number of the first entry of ``history``.
            job: The job document after the step, if it changed.
            restart: Empty the job's log first (the job's history is given
                again from the start).
            compact: Fold the log into the document (``job`` is required):
                the stored document's ``execution_history`` becomes ``job``'s
                followed by the log's entries, ``history`` included, in order,
                and the log is emptied. The job ended; what :meth:`load`
                returns is unchanged by it.

        Raises:
            CheckpointError: On bad input, an unknown job, or when the store
                cannot be written; nothing is written then.
        """
