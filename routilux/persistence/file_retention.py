"""Pruning and tidying the JSON-file store's directory.

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
from contextlib import suppress
from typing import TYPE_CHECKING

from . import letter_files
from .retention import doomed_jobs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from .base import JobRow
    from .retention import PrunePlan

__all__ = ["TEMPORARY", "prune_files", "remove_temporary_files"]

#: The names :func:`routilux.persistence.base.replace_file` gives temporary files.
TEMPORARY = re.compile(r"\..+\.tmp")


def remove_temporary_files(directory: Path) -> int:
    """Delete the temporary files left in ``directory`` and its letters directory.

    Returns:
        How many were deleted.

    Raises:
        OSError: When a directory cannot be listed or a file removed.
    """
    removed = 0
    for folder in (directory, directory / letter_files.LETTERS):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if TEMPORARY.fullmatch(entry.name) and entry.is_file():
                with suppress(FileNotFoundError):
                    entry.unlink()
                    removed += 1
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
