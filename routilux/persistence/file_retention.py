"""Pruning and tidying the JSON-file store's directory.

:class:`FileRetention` gives the store its ``prune`` and ``retention=``;
:func:`prune_files` deletes the files of the jobs a prune matches and drops their
replayed dead letters (see :mod:`.retention` for the rule). Each job is a file,
so this is one ``unlink`` per job: the JSON-file store is for quick use, and a
store that must forget many jobs at once is the SQLite one.

:func:`remove_temporary_files` deletes what a process killed in the middle of a
write leaves: the temporary file (``.<job>.<random>.tmp``) it was about to
rename over the job's file. The job's file itself is whole, old or new. The
store calls it when it opens a directory for writing; only one process may
write a directory at a time, so no temporary file found then is still in use.

The caller holds the store's lock around each function here.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import CheckpointError
from . import letter_files
from .base import job_row
from .json_journal import remove_journal
from .retention import FINISHED, doomed_jobs, prune_plan

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from contextlib import AbstractContextManager
    from datetime import timedelta
    from pathlib import Path

    from .base import JobRow
    from .retention import PrunePlan, Retention

__all__ = ["TEMPORARY", "FileRetention", "prune_files", "remove_temporary_files"]


class _Files(Protocol):
    """What :class:`FileRetention` uses of the JSON-file store."""

    _retention: Retention | None
    _until_prune: int
    _fsync: bool

    @property
    def _letters_dir(self) -> Path: ...

    def _guard(
        self, action: str, *, write: bool = False
    ) -> AbstractContextManager[None]: ...

    def _files(self) -> list[Path]: ...

    def _read(self, path: Path) -> dict[str, Any] | None: ...

    def _file(self, job_id: str) -> Path: ...

    def _prune(
        self, plan: PrunePlan, writing: tuple[JobRow, Path] | None = None
    ) -> list[str]: ...


class FileRetention:
    """The JSON-file store's ``prune`` and ``retention=`` (a base class of it)."""

    def prune(
        self: _Files,
        *,
        older_than: float | timedelta | None = None,
        status: str | Collection[str] | None = None,
        keep_last: int | None = None,
        flow_id: str | None = None,
    ) -> int:
        """Delete the stored jobs that match; return how many. Thread-safe.

        The rule is the one of :class:`~routilux.persistence.PruningStore`:
        matching status, older than ``older_than``, not among the ``keep_last``
        newest of its flow; replayed dead letters go with the job, waiting ones
        stay. Reads every job file, then removes one file per job.

        Raises:
            CheckpointError: For a bad argument (naming it), a corrupt file, or
                when a file cannot be removed (jobs removed before it stay
                removed).

        .. versionadded:: 1.0
        """
        plan = prune_plan(older_than, status, keep_last, flow_id)
        with self._guard("prune jobs", write=True):
            return len(self._prune(plan))

    def _retain(self: _Files, row: JobRow, path: Path) -> bool:
        """Count a finished job; prune by the retention when its turn comes.

        Runs (lock held) before the job's own file is written, counting the job
        as it is about to be, as SQLite prunes in the transaction that writes
        it; a failing prune leaves that file as it was.

        Returns:
            True when the prune took the job itself (its file is gone: the
            caller writes nothing).
        """
        policy = self._retention
        if policy is None or row.status not in FINISHED:
            return False
        self._until_prune -= 1
        if self._until_prune > 0:
            return False
        self._until_prune = policy.every
        return row.job_id in self._prune(policy.plan(), (row, path))

    def _prune(
        self: _Files, plan: PrunePlan, writing: tuple[JobRow, Path] | None = None
    ) -> list[str]:
        """Delete what ``plan`` matches (lock held).

        Args:
            plan: What to delete.
            writing: A job about to be written, and its file.

        Returns:
            The ids of the jobs deleted.
        """
        rows = [] if writing is None else [writing]
        for path in self._files():
            if writing is not None and path == writing[1]:
                continue  # counted as it is about to be
            found = self._read(path)
            if found is not None:
                rows.append((job_row(found["job"], str(path)), path))
        return prune_files(
            rows,
            plan,
            time.time(),
            lambda job_id: self._letters_dir / self._file(job_id).name,
            self._fsync,
        )


#: The names :func:`routilux.persistence.base.replace_file` gives temporary files.
TEMPORARY = re.compile(r"\..+\.tmp")


def remove_temporary_files(directory: Path) -> int:
    """Delete the temporary files left in ``directory`` and its letters directory.

    Returns:
        How many were deleted.

    Raises:
        CheckpointError: When a directory cannot be listed or a file removed.
    """
    removed = 0
    try:
        for folder in (directory, directory / letter_files.LETTERS):
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if TEMPORARY.fullmatch(entry.name) and entry.is_file():
                    with suppress(FileNotFoundError):
                        entry.unlink()
                        removed += 1
    except OSError as exc:
        raise CheckpointError(
            f"{directory}: cannot remove temporary files: {exc}"
        ) from exc
    return removed


def prune_files(
    rows: list[tuple[JobRow, Path]],
    plan: PrunePlan,
    now: float,
    letters_of: Callable[[str], Path],
    fsync: bool,
) -> list[str]:
    """Delete the job files ``plan`` matches and their replayed dead letters.

    Args:
        rows: Every stored job's checked row and file.
        plan: What to delete.
        now: The time ``older_than`` counts back from.
        letters_of: A job id's letter file.
        fsync: Flush rewritten letter files to disk.

    Returns:
        The ids of the jobs deleted.

    Raises:
        CheckpointError: When a letter file is corrupt. OSError: When a file
            cannot be removed or rewritten.
    """
    files = {row.job_id: path for row, path in rows}
    doomed = doomed_jobs(
        ((r.job_id, r.flow_id, r.status, r.sort_key) for r, _ in rows), plan, now
    )
    for job_id in doomed:
        _drop_replayed_letters(letters_of(job_id), fsync)
        with suppress(FileNotFoundError):
            files[job_id].unlink()
        remove_journal(files[job_id])
    return doomed


def _drop_replayed_letters(path: Path, fsync: bool) -> None:
    letters = letter_files.letters_in(path)
    waiting = [letter for letter in letters if letter.get("replayed_by") is None]
    if len(waiting) == len(letters):
        return
    if waiting:
        letter_files.write_letters(path, waiting, fsync)
    else:
        with suppress(FileNotFoundError):
            path.unlink()
