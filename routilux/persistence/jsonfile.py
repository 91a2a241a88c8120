"""A checkpoint store for quick use: one JSON file per job in a directory.

Each job lives in ``<directory>/<job_id>.json``::

    {"schema_version": 1, "job": {...}, "pending_activations": [...]}

Payloads are kept in the tagged JSON encoding of :mod:`.payloads`.

A step is one line appended to the job's journal (``<job_id>.steps.jsonl``, see
:mod:`.json_journal`); a step that changes the job document, and every
thousandth, rewrites the job's file instead, atomically (a temporary file in the
same directory, then ``os.replace``), so a reader or a killed process never sees
half a file. Only one process may write a directory at a time. Dead letters live
in a ``dead_letters`` subdirectory (see :mod:`.letter_files`), job leases in
``.leases`` (see :mod:`.lease_files`).
"""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import CheckpointError
from . import file_retention, json_journal, letter_files
from .base import (
    ClosingStore,
    decode,
    encode,
    job_row,
    prepare_directory,
    replace_file,
    stored_job,
    summary,
    text,
)
from .dead_letters import letter_row
from .lease import (
    DEFAULT_LEASE_TTL,
    Heartbeat,
    check_clock,
    check_lease_ttl,
    query_status,
    with_leases,
)
from .lease_files import LeaseFiles, LeasingFiles, checked_activation
from .payloads import read_pending, value_classes
from .retention import Retention, checked_retention

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

__all__ = ["FORMAT_VERSION", "JsonFileCheckpointStore"]

#: The file layout version this module reads and writes.
FORMAT_VERSION = 1

_SUFFIX = ".json"
_JOB_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


class JsonFileCheckpointStore(LeasingFiles, file_retention.FileRetention, ClosingStore):
    """Checkpoints as one JSON file per job.

    Thread-safe (one lock serializes the writes of this store). Not safe for two
    processes writing the same directory, except for job leases: claiming a job
    is ordered between processes by a lock file (see
    :mod:`routilux.persistence.lease_files`), so only one of them runs it.

    Args:
        directory: Where the files live; created when missing.
        fsync: Flush every file to disk before it replaces the old one, so a power
            cut cannot lose a step (slower). Without it a killed process still
            loses nothing.
        read_only: Only read, e.g. a directory without write permission; writes
            raise :class:`~routilux.CheckpointError`.
        allowed_classes: When given, the only classes whose values (enum members,
            pydantic models, dataclasses) stored payloads, letters and job
            documents may rebuild; by default any such class the process has
            imported (nothing is imported).
        retention: Prune finished jobs as they accumulate (see
            :class:`~routilux.persistence.Retention`): at the first job this
            store records as finished, then once every ``retention.every``.

            .. versionadded:: 1.0
        lease_ttl: Seconds a job's lease stays live after its last beat (see
            :class:`~routilux.persistence.SQLiteCheckpointStore`).
        clock: Returns the time leases are written and judged by (``time.time``).

    Opening a directory for writing deletes the temporary files a process
    killed in the middle of a write left there.

    Raises:
        CheckpointError: When ``directory`` cannot be created, is not a directory,
            or cannot be written (unless ``read_only``); for a ``retention`` that
            is not a :class:`~routilux.persistence.Retention`, a ``lease_ttl``
            that is not a finite number > 0 or a ``clock`` that is not callable.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = False,
        read_only: bool = False,
        retention: Retention | None = None,
        allowed_classes: Iterable[type] | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._retention = checked_retention(retention)
        self._classes = value_classes(allowed_classes)
        #: As given: the runtime reads this store's job documents with it.
        self.allowed_classes = allowed_classes
        ttl = check_lease_ttl(lease_ttl, os.fspath(directory))
        clock = check_clock(clock, os.fspath(directory))
        self._dir = Path(directory)
        self._fsync = fsync
        self._read_only = read_only
        prepare_directory(self._dir, self._dir, read_only=read_only)
        # Guards the files of this directory (every read-modify-write), _closed
        # and _until_prune (finished jobs until the next amortized prune).
        self._lock = threading.Lock()
        self._closed = False
        self._until_prune = 1
        self._fenced = {}
        # job id -> its journal as this store last read or wrote it (this
        # process is the directory's only writer).
        self._journals: dict[str, json_journal.Journal] = {}
        if not read_only:
            file_retention.remove_temporary_files(self._dir)
        self._ttl = ttl
        self._leases = LeaseFiles(self._dir, ttl, clock, fsync)
        self._heartbeat = Heartbeat(
            f"routilux-leases-{self._dir.name}", ttl / 3, self._beat
        )

    @property
    def directory(self) -> Path:
        """The directory holding the files."""
        return self._dir

    @property
    def lease_ttl(self) -> float:
        """Seconds a job's lease stays live after its last beat."""
        return self._ttl

    def __repr__(self) -> str:
        return f"{type(self).__name__}({os.fspath(self._dir)!r})"

    # -- the CheckpointStore protocol -----------------------------------------

    def save_job(self, job: dict[str, Any]) -> None:
        """Insert or replace a job document, keeping its pending list. Thread-safe.

        Args:
            job: :meth:`routilux.JobState.serialize` output (at least ``job_id``,
                ``flow_id``, ``status`` and an ISO-8601 ``updated_at``).

        Raises:
            CheckpointError: On a bad document or when the file cannot be written;
                the old file is left as it was.
        """
        row, document = stored_job(job, str(self._dir))
        path = self._file(row.job_id)
        with (
            self._guard(f"save job {row.job_id!r}", write=True),
            self._fence(row.job_id),
        ):
            old, journal = self._current(path, row.job_id)
            pending = [] if old is None else old["pending_activations"]
            if not self._retain(row, path):
                self._compact(path, row.job_id, document, pending, journal)

    def record_step(
        self,
        job_id: str,
        *,
        finished: Sequence[str] = (),
        added: Sequence[dict[str, Any]] = (),
        job: dict[str, Any] | None = None,
    ) -> None:
        """Record one completed step of a job: one line appended to its journal.

        A step with ``job`` (and every ``COMPACT_AFTER``-th) rewrites the job's
        file instead (see :mod:`.json_journal`). Thread-safe.

        Args:
            job_id: The job; it must have been saved before unless ``job`` is
                given.
            finished: Ids of pending activations to remove (unknown ids are
                ignored).
            added: Activations to append; one whose id is already pending replaces
                it in place.
            job: The job document after the step, if it changed.

        Raises:
            CheckpointError: On bad input, an unknown job, or when the file cannot
                be written; the old file is left as it was.
        """
        path = self._file(job_id)
        where = str(self._dir)
        checked = None if job is None else stored_job(job, where, job_id)
        new = None if checked is None else checked[1]
        fresh = [checked_activation(a, job_id, where) for a in added]
        with (
            self._guard(f"record a step of job {job_id!r}", write=True),
            self._fence(job_id),
        ):
            if new is None and self._appended(path, job_id, finished, fresh):
                return
            old, journal = self._current(path, job_id)
            if old is not None:
                document = old["job"] if new is None else new
                current = old["pending_activations"]
            elif new is not None:
                document, current = new, []
            else:
                raise CheckpointError(
                    f"{path}: cannot record a step of unknown job {job_id!r}: "
                    "save_job() it first or pass job="
                )
            pending = {activation["id"]: activation for activation in current}
            for activation_id in finished:
                pending.pop(activation_id, None)
            for activation in fresh:
                pending[activation["id"]] = activation
            if checked is None or not self._retain(checked[0], path):
                self._compact(path, job_id, document, list(pending.values()), journal)

    def pending(self, job_id: str) -> list[dict[str, Any]]:
        """Return the job's pending activations in insertion order. Thread-safe.

        Raises:
            CheckpointError: When the job's file is corrupt or cannot be read.
        """
        path = self._file(job_id)
        with self._guard(f"read pending of job {job_id!r}"):
            found = self._replayed(path)
        return [] if found is None else self._decoded(found, job_id)

    def load(self, job_id: str) -> dict[str, Any]:
        """Return the job document plus its ``pending_activations``. Thread-safe.

        Raises:
            CheckpointError: When the job is unknown or its file is corrupt or
                cannot be read.
        """
        path = self._file(job_id)
        with self._guard(f"load job {job_id!r}"):
            found = self._replayed(path)
        if found is None:
            raise CheckpointError(f"{self._dir}: no checkpoint of job {job_id!r}")
        document: dict[str, Any] = found["job"]
        document["pending_activations"] = self._decoded(found, job_id)
        return document

    def list_jobs(
        self,
        flow_id: str | None = None,
        status: str | None = None,
        *,
        owners: bool = False,
    ) -> list[dict[str, Any]]:
        """Return job summaries, oldest ``updated_at`` first. Thread-safe.

        Reads every file of the directory.

        Args:
            flow_id: Only jobs of this flow.
            status: Only jobs with this status (a string or a ``JobStatus``);
                ``"interrupted"``: ``running`` jobs whose lease is not live.
            owners: Add ``owner`` and ``live`` to each row (see
                :meth:`routilux.persistence.SQLiteCheckpointStore.list_jobs`).

        Returns:
            ``{"job_id", "flow_id", "status", "updated_at"}`` dicts.

        Raises:
            CheckpointError: When a file is corrupt (the message names it: delete
                or move it) or the directory cannot be read.
        """
        asked = text(status)
        status = query_status(asked)
        rows = []
        with self._guard("list jobs"):
            for path in self._files():
                found = self._read(path)
                if found is None:  # deleted since the directory was listed
                    continue
                row = job_row(found["job"], str(path))
                if flow_id in (None, row.flow_id) and status in (None, row.status):
                    rows.append(row)
            held = self._leases.all() if owners or asked != status else {}
        rows.sort(key=lambda row: (row.sort_key, row.job_id))
        summaries = [summary(row) for row in rows]
        if not owners and asked == status:
            return summaries
        return with_leases(summaries, held, asked, owners)

    def delete(self, job_id: str) -> None:
        """Remove a job's file; an unknown id is a no-op. Thread-safe.

        Raises:
            CheckpointError: When the file cannot be removed.
        """
        path = self._file(job_id)
        with self._guard(f"delete job {job_id!r}", write=True):
            with self._leases.locked():
                self._leases.forget(job_id)
            self._journals.pop(job_id, None)
            with suppress(FileNotFoundError):
                path.unlink()
            json_journal.remove_journal(path)

    # -- the DeadLetterStore protocol -------------------------------------------

    def add_dead_letter(self, letter: dict[str, Any]) -> None:
        """Keep a dead letter in its job's letter file. Thread-safe.

        One with the same ``letter_id`` is replaced, keeping its place and its
        ``replayed_by``. The job's file of letters is rewritten each time.

        Raises:
            CheckpointError: On a bad letter or when the file cannot be
                written; the old file is left as it was.
        """
        row = letter_row(letter, str(self._dir))
        path = self._letters_dir / self._file(row.job_id).name
        with self._guard(f"keep dead letter {row.letter_id!r}", write=True):
            letter_files.add_letter(path, letter, self._fsync)

    def dead_letters(
        self,
        flow_id: str | None = None,
        job_id: str | None = None,
        include_replayed: bool = False,
    ) -> list[dict[str, Any]]:
        """Return the kept letters, oldest first. Thread-safe.

        Reads every letter file, or only the job's with ``job_id``.

        Args:
            flow_id: Only letters of this flow.
            job_id: Only letters of this job.
            include_replayed: Include letters already replayed.

        Raises:
            CheckpointError: When a file is corrupt or cannot be read.
        """
        if job_id is not None and not _JOB_ID.fullmatch(str(job_id)):
            return []  # no job of that id has a file, nor letters
        with self._guard("list dead letters"):
            paths = (
                [self._letters_dir / self._file(job_id).name]
                if job_id is not None
                else letter_files.letter_files(self._letters_dir)
            )
            return letter_files.read_letters(
                paths, flow_id, include_replayed, self._classes
            )

    def mark_dead_letters_replayed(
        self, letter_ids: Sequence[str], job_id: str
    ) -> None:
        """Record that job ``job_id`` replays these letters. Thread-safe.

        Every letter is checked before any file is written.

        Raises:
            CheckpointError: When a letter is unknown or already replayed
                (nothing is changed then), or a file cannot be written.
        """
        with self._guard(f"mark dead letters replayed by {job_id!r}", write=True):
            paths = letter_files.letter_files(self._letters_dir)
            letter_files.mark_replayed(paths, letter_ids, job_id, self._fsync)

    @property
    def _letters_dir(self) -> Path:
        return self._dir / letter_files.LETTERS

    def close(self) -> None:
        """Stop the lease heartbeat and refuse further use.

        Idempotent and thread-safe. Leases still held stop beating and expire
        after ``lease_ttl``.
        """
        self._heartbeat.stop()
        with self._lock:
            self._closed = True

    # -- internals --------------------------------------------------------------

    @contextmanager
    def _guard(self, action: str, *, write: bool = False) -> Iterator[None]:
        """Hold the lock; refuse use after close; map OSError to CheckpointError."""
        with self._lock:
            if self._closed:
                raise CheckpointError(f"{self._dir}: cannot {action}: store is closed")
            if write and self._read_only:
                raise CheckpointError(
                    f"{self._dir}: cannot {action}: the store was opened read-only"
                )
            try:
                yield
            except OSError as exc:
                raise CheckpointError(f"{self._dir}: cannot {action}: {exc}") from exc

    def _file(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise CheckpointError(
                f"{self._dir}: job id {job_id!r} cannot name a file: use up to 200 "
                "letters, digits, '.', '_' and '-', not starting with '.'"
            )
        return self._dir / (job_id + _SUFFIX)

    def _files(self) -> list[Path]:
        return sorted(
            entry
            for entry in self._dir.iterdir()
            if entry.name.endswith(_SUFFIX) and not entry.name.startswith(".")
        )

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The checked content of a job's file, or None when there is none."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        found = decode(data, str(path), "the checkpoint file")
        if not (
            isinstance(found, dict)
            and isinstance(found.get("job"), dict)
            and isinstance(found.get("pending_activations"), list)
        ):
            raise CheckpointError(
                f"{path}: not a checkpoint file (no job and pending_activations); "
                "delete it or move it away"
            )
        if found.get("schema_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {found.get('schema_version')!r}, "
                f"but this routilux reads version {FORMAT_VERSION}"
            )
        return found

    def _decoded(self, found: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
        """The pending activations of a checked file, payloads decoded."""
        where = str(self._file(job_id))
        return read_pending(found["pending_activations"], where, job_id, self._classes)

    def _write(
        self,
        path: Path,
        job: dict[str, Any],
        pending: list[dict[str, Any]],
        journal: json_journal.Journal | None = None,
    ) -> None:
        """Replace ``path`` atomically with the job and its pending list.

        ``journal``: the journal whose steps ``pending`` holds (the file names
        it, see :mod:`.json_journal`).
        """
        content: dict[str, Any] = {
            "schema_version": FORMAT_VERSION,
            "job": job,
            "pending_activations": pending,
        }
        if journal is not None and journal.token is not None:
            content["journal"] = {"token": journal.token, "steps": journal.count}
        data = encode(content, str(path), f"job {job.get('job_id')!r}")
        replace_file(self._dir, path, data, self._fsync)

    def _journal(self, path: Path, job_id: str) -> json_journal.Journal:
        """The job's journal for appends: read once, then counted as it grows."""
        journal = self._journals.get(job_id)
        if journal is None:
            journal = self._journals[job_id] = json_journal.read_journal(path)
        return journal

    def _replayed(self, path: Path) -> dict[str, Any] | None:
        """The checked file with its journal's steps applied (lock held)."""
        found = self._read(path)
        if found is not None:
            json_journal.replay(found, json_journal.read_journal(path))
        return found

    def _current(
        self, path: Path, job_id: str
    ) -> tuple[dict[str, Any] | None, json_journal.Journal]:
        """The replayed file, for a write, and the journal it replayed.

        The journal is read whole here (a compaction: at most every
        ``COMPACT_AFTER`` steps), not kept in memory between appends.
        """
        found = self._read(path)
        self._journals.pop(job_id, None)  # read afresh below
        journal = json_journal.read_journal(path)
        if found is not None:
            json_journal.replay(found, journal)
        return found, journal

    def _appended(
        self,
        path: Path,
        job_id: str,
        finished: Sequence[str],
        added: list[dict[str, Any]],
    ) -> bool:
        """Append a step that leaves the document as it is; False: compact.

        False too for an unknown job (the caller reports it).
        """
        if not path.exists():
            self._journals.pop(job_id, None)
            return False
        journal = self._journal(path, job_id)
        if journal.count + 1 >= json_journal.COMPACT_AFTER:
            return False
        json_journal.append_step(path, journal, finished, added, self._fsync)
        return True

    def _compact(
        self,
        path: Path,
        job_id: str,
        job: dict[str, Any],
        pending: list[dict[str, Any]],
        journal: json_journal.Journal,
    ) -> None:
        """Rewrite the job's file with everything, then drop its journal."""
        self._write(path, job, pending, journal)
        self._journals.pop(job_id, None)
        json_journal.remove_journal(path)
