"""The step journal of the JSON-file store: steps are appended, not rewritten.

A job's file (``<job_id>.json``) holds its document and its pending list as of
the last *compaction*. The steps recorded since are lines appended to its
journal, ``<job_id>.steps.jsonl``::

    {"journal": "<token>"}
    {"finished": ["a3"], "added": [{"id": "a7", ...}, ...]}
    ...

so a step costs one append, whatever the job's size (rewriting the whole file
per step made a 4,000-item job take 32 s). Reading a job replays its journal on
the pending list of its file. A step that changes the document (a job start,
pause or end, an error, at most one a second otherwise) and every
:data:`COMPACT_AFTER` lines compact: the file is rewritten with the pending list
as replayed, then the journal is deleted.

Crash safety, for one writing process:

* a line is whole once its newline is written; a process killed in the middle
  of an append leaves a torn last line, which reading ignores and the next
  append cuts off first (that step was never recorded: it runs again);
* a compaction writes the file (atomically, see ``replace_file``) naming the
  journal it folded in by its token and line count, then deletes the journal:
  killed in between, the file says which lines it holds already, and reading
  skips them. A new journal has a new token, so its lines are never skipped.
"""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import orjson

from ..exceptions import CheckpointError
from .base import encode

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = [
    "COMPACT_AFTER",
    "JOURNAL_SUFFIX",
    "Journal",
    "append_step",
    "journal_of",
    "read_journal",
    "remove_journal",
    "replay",
]

#: The journal file of ``<job_id>.json`` is ``<job_id>`` + this.
JOURNAL_SUFFIX = ".steps.jsonl"
#: A journal this many steps long is folded into its job's file.
COMPACT_AFTER = 1000


class Journal:
    """What a job's journal holds: its token and its whole step lines.

    Attributes:
        token: The journal's token (None: there is no journal).
        steps: The decoded step lines, in order, as read (appends made since
            are counted, not kept: the file holds them).
        count: How many step lines the journal has.
        whole: The length in bytes of the whole lines (a torn tail follows).
    """

    __slots__ = ("count", "steps", "token", "whole")

    def __init__(
        self, token: str | None, steps: list[dict[str, Any]], whole: int
    ) -> None:
        self.token = token
        self.steps = steps
        self.count = len(steps)
        self.whole = whole


def journal_of(path: Path) -> Path:
    """The journal of the job file ``path`` (``<job_id>.json``)."""
    return path.with_name(path.name[: -len(".json")] + JOURNAL_SUFFIX)


def read_journal(path: Path) -> Journal:
    """Read the journal of the job file ``path``; a torn last line is left out.

    Raises:
        CheckpointError: When a whole line is not a step (the file names the
            line: move the journal away to give the job up, or delete it).
        OSError: When the journal exists but cannot be read.
    """
    where = journal_of(path)
    try:
        data = where.read_bytes()
    except FileNotFoundError:
        return Journal(None, [], 0)
    whole = data.rfind(b"\n") + 1
    lines = data[:whole].splitlines()
    if not lines:
        return Journal(None, [], 0)
    token = _header(lines[0], where)
    steps = [_step(line, where, number) for number, line in enumerate(lines[1:], 2)]
    return Journal(token, steps, whole)


def _header(line: bytes, where: Path) -> str:
    found = _decoded(line, where, 1)
    token = found.get("journal")
    if len(found) != 1 or not isinstance(token, str):
        raise CheckpointError(f"{where}: line 1 is not a journal header")
    return token


def _step(line: bytes, where: Path, number: int) -> dict[str, Any]:
    found = _decoded(line, where, number)
    finished, added = found.get("finished"), found.get("added")
    if not (
        isinstance(finished, list)
        and isinstance(added, list)
        and all(isinstance(item, str) for item in finished)
        and all(isinstance(item, dict) and "id" in item for item in added)
    ):
        raise CheckpointError(f"{where}: line {number} is not a recorded step")
    return found


def _decoded(line: bytes, where: Path, number: int) -> dict[str, Any]:
    try:
        found = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CheckpointError(f"{where}: line {number} is not JSON: {exc}") from exc
    if not isinstance(found, dict):
        raise CheckpointError(f"{where}: line {number} is not a JSON object")
    return found


def replay(found: dict[str, Any], journal: Journal) -> int:
    """Apply ``journal``'s steps to the pending list of the checked file ``found``.

    Steps the file says it holds already (it was compacted, and the process
    was killed before the journal was deleted) are skipped.

    Returns:
        How many steps were applied.
    """
    if journal.token is None:
        return 0
    folded = found.get("journal")
    skip = 0
    if isinstance(folded, dict) and folded.get("token") == journal.token:
        skip = folded.get("steps", 0)
    steps = journal.steps[skip:]
    if not steps:
        return 0
    pending = {item["id"]: item for item in found["pending_activations"]}
    for step in steps:
        for activation_id in step["finished"]:
            pending.pop(activation_id, None)
        for item in step["added"]:
            pending[item["id"]] = item
    found["pending_activations"] = list(pending.values())
    return len(steps)


def append_step(
    path: Path,
    journal: Journal,
    finished: Sequence[str],
    added: Sequence[dict[str, Any]],
    fsync: bool,
) -> None:
    """Append one step to the journal of ``path``, as read into ``journal``.

    A torn last line is cut off first; a journal that does not exist yet is
    started with a new token. ``journal``'s token, count and length are
    updated to match the file.

    Raises:
        CheckpointError: When the step cannot be encoded (nothing is written).
        OSError: When the journal cannot be written.
    """
    line = encode(
        {"finished": list(finished), "added": list(added)},
        str(journal_of(path)),
        "a step",
    )
    where = journal_of(path)
    with open(where, "ab") as file:
        if file.tell() != journal.whole:
            file.truncate(journal.whole)  # a torn line: that step never happened
            file.seek(journal.whole)
        if journal.token is None:
            journal.token = secrets.token_hex(8)
            file.write(orjson.dumps({"journal": journal.token}) + b"\n")
        file.write(line + b"\n")
        if fsync:
            file.flush()
            os.fsync(file.fileno())
        journal.whole = file.tell()
    journal.count += 1


def remove_journal(path: Path) -> None:
    """Delete the journal of ``path``, if there is one.

    Raises:
        OSError: When it exists and cannot be deleted.
    """
    with suppress(FileNotFoundError):
        journal_of(path).unlink()
