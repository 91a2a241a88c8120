"""Dead letters in the JSON-file store: one file per job in ``dead_letters/``.

Each job's letters live in ``<directory>/dead_letters/<job_id>.json``::

    {"schema_version": 1, "dead_letters": [{...}, ...]}

in the order they were kept. Every write replaces a whole file atomically, as the
job files are. Marking letters replayed checks every letter first and then
rewrites each file that holds one; a process killed in between leaves some of
them marked (the files are never half written). The caller holds the store's
lock around each function here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import CheckpointError
from .base import decode, encode, replace_file
from .dead_letters import MISSING, check_ids, letter_row, not_markable
from .payloads import decode_values, encoded_values

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from ..serialization import ClassPolicy

__all__ = [
    "LETTERS",
    "add_letter",
    "letters_in",
    "mark_replayed",
    "read_letters",
    "write_letters",
]

#: The subdirectory of the store's directory that holds the letter files.
LETTERS = "dead_letters"
_VERSION = 1
_SUFFIX = ".json"


def add_letter(path: Path, letter: dict[str, Any], fsync: bool) -> None:
    """Add a letter to its job's file (replacing one with the same id in place).

    Raises:
        CheckpointError: On a bad letter or a corrupt file. OSError: When the
            file cannot be written.
    """
    row = letter_row(letter, str(path))
    stored = encoded_values(letter, str(path), f"dead letter {row.letter_id!r}")
    letters = _read(path)
    for index, kept in enumerate(letters):
        if kept.get("letter_id") == row.letter_id:
            letters[index] = {**stored, "replayed_by": kept.get("replayed_by")}
            break
    else:
        letters.append(stored)
    path.parent.mkdir(exist_ok=True)
    _write(path, letters, fsync)


def read_letters(
    paths: Sequence[Path],
    flow_id: str | None,
    include_replayed: bool,
    classes: ClassPolicy,
) -> list[dict[str, Any]]:
    """The letters of these files that match, oldest ``failed_at`` first.

    Raises:
        CheckpointError: When a file is corrupt or a letter's values do not
            decode (the message names it).
    """
    found = []
    for path in paths:
        for letter in _read(path):
            if flow_id not in (None, letter["flow_id"]):
                continue
            if include_replayed or letter.get("replayed_by") is None:
                what = f"dead letter {letter.get('letter_id')!r}"
                found.append(decode_values(letter, None, str(path), what, classes))
    found.sort(key=_failed_at)  # stable: a job's letters keep their order
    return found


def letter_files(directory: Path) -> list[Path]:
    """Every job's letter file in ``directory`` (none when it does not exist)."""
    if not directory.is_dir():
        return []
    return sorted(
        entry
        for entry in directory.iterdir()
        if entry.name.endswith(_SUFFIX) and not entry.name.startswith(".")
    )


def mark_replayed(
    paths: Sequence[Path], letter_ids: Sequence[str], job_id: str, fsync: bool
) -> None:
    """Mark letters replayed by ``job_id``; every letter is checked first.

    Raises:
        CheckpointError: When a letter is unknown or already replayed (nothing
            is written then), or a file is corrupt.
    """
    where = str(paths[0].parent) if paths else "dead letters"
    ids = check_ids(letter_ids, job_id, where)
    wanted = set(ids)
    files: dict[Path, list[dict[str, Any]]] = {}
    state: dict[str, Any] = {}
    for path in paths:
        letters = _read(path)
        for letter in letters:
            if letter["letter_id"] in wanted:
                files[path] = letters
                state[letter["letter_id"]] = letter.get("replayed_by")
    for letter_id in ids:
        replayed_by = state.get(letter_id, MISSING)
        if replayed_by is not None:
            raise not_markable(letter_id, replayed_by, where)
    for path, letters in files.items():
        for letter in letters:
            if letter["letter_id"] in wanted:
                letter["replayed_by"] = job_id
        _write(path, letters, fsync)


def _failed_at(letter: dict[str, Any]) -> float:
    value = letter.get("failed_at")
    return float(value) if isinstance(value, (int, float)) else 0.0


def _read(path: Path) -> list[dict[str, Any]]:
    """The checked letters of a file; [] when there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    found = decode(data, str(path), "the dead letters file")
    if not (
        isinstance(found, dict)
        and found.get("schema_version") == _VERSION
        and isinstance(found.get("dead_letters"), list)
    ):
        raise CheckpointError(
            f"{path}: not a dead letters file of version {_VERSION}; delete it or "
            "move it away"
        )
    letters: list[dict[str, Any]] = found["dead_letters"]
    for letter in letters:
        letter_row(letter, str(path))
    return letters


def letters_in(path: Path) -> list[dict[str, Any]]:
    """The letters of one file, checked, in their order ([] when there is none).

    Raises:
        CheckpointError: When the file is corrupt.
    """
    return _read(path)


def write_letters(path: Path, letters: list[dict[str, Any]], fsync: bool) -> None:
    """Replace a letter file atomically with ``letters``.

    Raises:
        OSError: When the file cannot be written.
    """
    _write(path, letters, fsync)


def _write(path: Path, letters: list[dict[str, Any]], fsync: bool) -> None:
    content = {"schema_version": _VERSION, "dead_letters": letters}
    replace_file(path.parent, path, encode(content, str(path), "dead letters"), fsync)
