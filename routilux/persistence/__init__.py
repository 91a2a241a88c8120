"""Checkpoint stores: where jobs and their pending activations are kept.

:class:`SQLiteCheckpointStore` (one SQLite file, safe for threads and processes) is
the default; :class:`JsonFileCheckpointStore` (one JSON file per job) serves quick
use. Both implement the :class:`CheckpointStore` protocol, the
:class:`DeadLetterStore` protocol, keeping dead letters beside the jobs, and the
:class:`PruningStore` protocol, forgetting old jobs (``prune``, or as they go
with ``retention=``:class:`Retention`). The SQLite store also implements
:class:`LoggingStore`: a running job's history is appended, not rewritten.
"""

from __future__ import annotations

import os

from ..exceptions import CheckpointError
from .base import CheckpointStore
from .dead_letters import DeadLetterStore
from .history_log import LoggingStore
from .jsonfile import JsonFileCheckpointStore
from .retention import PruningStore, Retention
from .sqlite import SQLiteCheckpointStore

__all__ = [
    "CheckpointStore",
    "DeadLetterStore",
    "JsonFileCheckpointStore",
    "LoggingStore",
    "PruningStore",
    "Retention",
    "SQLiteCheckpointStore",
    "checkpoint_store",
]


def checkpoint_store(
    target: CheckpointStore | str | os.PathLike[str],
) -> CheckpointStore:
    """Return ``target`` if it is a store, else a SQLite store at that path.

    Args:
        target: A :class:`CheckpointStore`, or the path of a SQLite database file.

    Raises:
        CheckpointError: When the database cannot be opened, or ``target`` is
            neither a store nor a path.
    """
    if isinstance(target, (str, os.PathLike)):
        return SQLiteCheckpointStore(target)
    if isinstance(target, CheckpointStore):
        return target
    raise CheckpointError(
        f"expected a CheckpointStore or a database path, got {type(target).__name__}"
    )
