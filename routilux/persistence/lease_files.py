"""Job leases of the JSON-file store: one small file per leased job.

``<directory>/.leases/<job_id>.json`` holds ``{"pid", "host", "token", "beat"}``.
Every read-and-write of the leases happens while holding an exclusive ``flock`` on
``<directory>/.leases.lock`` (and a lock of this process's store), and each
lease file is replaced atomically (a temporary file, then a rename). So two
processes, or two threads, that claim the same job at once are ordered by the
lock, and the second finds the first one's live lease and raises
:class:`~routilux.JobOwnedError`. The kernel drops a ``flock`` when its process
dies, so a killed process never leaves the directory locked.

Where ``fcntl`` is missing (Windows) there is no lock between processes: only
the threads of one process are ordered there.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import orjson

from ..exceptions import CheckpointError
from .base import activation_fields, replace_file, stored_job
from .lease import described, is_live, lost_lease_error, owned_error
from .payloads import encoded_values

try:
    import fcntl
except ImportError:  # not on Windows: threads of one process only
    fcntl = None  # type: ignore[assignment]

#: Whether processes can be ordered (``flock``); without it, threads only.
_FLOCK = fcntl is not None

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from .lease import Heartbeat, Owner

__all__ = ["LeaseFiles", "LeasingFiles", "checked_activation"]

LEASES = ".leases"


class LeaseFiles:
    """The lease files of one store directory (internal). Thread-safe.

    Args:
        directory: The store's directory.
        ttl: Seconds a lease stays live after its last beat.
        clock: The store's clock.
        fsync: Flush each lease file before it replaces the old one.
    """

    def __init__(
        self,
        directory: Path,
        ttl: float,
        clock: Callable[[], float],
        fsync: bool,
    ) -> None:
        self._dir = directory / LEASES
        self._lock_path = directory / (LEASES + ".lock")
        self._ttl = ttl
        self._clock = clock
        self._fsync = fsync
        # Orders this process's threads; the flock orders processes.
        self._lock = threading.Lock()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the leases' lock (threads and, with ``fcntl``, processes)."""
        with self._lock:
            if not _FLOCK:
                yield
                return
            self._dir.mkdir(exist_ok=True)
            with open(self._lock_path, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def take(self, job_id: str, owner: Owner) -> None:
        """Take the lease (lock held).

        Raises:
            JobOwnedError: When another owner's lease has beaten within ttl.
        """
        now = self._clock()
        found = self._read(job_id)
        if (
            found is not None
            and found["token"] != owner.token
            and is_live(found["pid"], found["host"], found["beat"], now, self._ttl)
        ):
            raise owned_error(
                job_id,
                (found["pid"], found["host"], found["token"], found["beat"]),
                now,
            )
        self._write(job_id, owner, now)

    def release(self, job_id: str, owner: Owner) -> None:
        """Remove the lease file if ``owner`` holds it (lock held)."""
        found = self._read(job_id)
        if found is not None and found["token"] == owner.token:
            with suppress(FileNotFoundError):
                self._path(job_id).unlink()

    def check(self, job_id: str, owner: Owner) -> None:
        """Refuse a write unless ``owner`` still holds the lease (lock held).

        Raises:
            JobOwnedError: When another owner holds it, or none does.
        """
        found = self._read(job_id)
        if found is None or found["token"] != owner.token:
            row = None
            if found is not None:
                row = (found["pid"], found["host"], found["token"], found["beat"])
            raise lost_lease_error(job_id, owner, row, self._clock())

    def forget(self, job_id: str) -> None:
        """Remove the job's lease file, whoever holds it (lock held)."""
        with suppress(FileNotFoundError):
            self._path(job_id).unlink()

    def beat(self, leases: Sequence[tuple[str, Owner]]) -> None:
        """Write the beat of every lease still held by its owner (lock held)."""
        now = self._clock()
        for job_id, owner in leases:
            found = self._read(job_id)
            if found is not None and found["token"] == owner.token:
                self._write(job_id, owner, now)

    def lease_of(self, job_id: str) -> dict[str, Any] | None:
        """``{"pid", "host", "live", "beat_age"}`` of the job's lease, or None."""
        found = self._read(job_id)
        if found is None:
            return None
        return described(
            found["pid"], found["host"], found["beat"], self._clock(), self._ttl
        )

    def all(self) -> dict[str, dict[str, Any]]:
        """Every lease of the directory by job id (see :meth:`lease_of`)."""
        if not self._dir.is_dir():
            return {}
        found = {}
        for entry in sorted(self._dir.iterdir()):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                lease = self.lease_of(entry.name[: -len(".json")])
                if lease is not None:
                    found[entry.name[: -len(".json")]] = lease
        return found

    def _path(self, job_id: str) -> Path:
        return self._dir / (job_id + ".json")

    def _read(self, job_id: str) -> dict[str, Any] | None:
        path = self._path(job_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            found = orjson.loads(data)
            if not (
                isinstance(found, dict)
                and isinstance(found.get("pid"), int)
                and isinstance(found.get("host"), str)
                and isinstance(found.get("token"), str)
                and isinstance(found.get("beat"), (int, float))
            ):
                raise ValueError("not a lease (pid, host, token, beat)")
        except ValueError as exc:
            raise CheckpointError(
                f"{path}: the lease file is corrupt ({exc}); delete it"
            ) from exc
        return found

    def _write(self, job_id: str, owner: Owner, now: float) -> None:
        self._dir.mkdir(exist_ok=True)
        data = orjson.dumps(
            {"pid": owner.pid, "host": owner.host, "token": owner.token, "beat": now}
        )
        replace_file(self._dir, self._path(job_id), data, self._fsync)


class LeasingFiles:
    """The lease methods of the JSON-file store (one of its base classes).

    They make :class:`~routilux.persistence.JsonFileCheckpointStore` a
    :class:`~routilux.persistence.lease.LeasingStore`.
    """

    # Set by the store.
    _dir: Path
    _leases: LeaseFiles
    _heartbeat: Heartbeat
    #: job id -> the owner whose lease this store took: its writes are fenced.
    _fenced: dict[str, Owner]

    def _guard(self, action: str, *, write: bool = False) -> Any:
        raise NotImplementedError

    def _file(self, job_id: str) -> Path:
        raise NotImplementedError

    def _write(
        self, path: Path, job: dict[str, Any], pending: list[dict[str, Any]]
    ) -> None:
        raise NotImplementedError

    def begin_job(
        self, job: dict[str, Any], added: Sequence[dict[str, Any]], owner: Owner
    ) -> bool:
        """Store a new job with its first pending activations, and its lease.

        The job's file (document and pending activations) is written with one
        atomic replacement, after its lease file. Thread-safe.

        Returns:
            True when written; False, writing nothing, when the directory
            already holds a job with that id.

        Raises:
            CheckpointError: On bad input or when a file cannot be written.
        """
        where = str(self._dir)
        document = stored_job(job, where)[1]
        job_id = document["job_id"]
        path = self._file(job_id)
        fresh = [checked_activation(a, job_id, where) for a in added]
        with (
            self._guard(f"begin job {job_id!r}", write=True),
            self._leases.locked(),
        ):
            if path.exists():
                return False
            self._leases.take(job_id, owner)
            self._write(path, document, fresh)
        self._fenced[job_id] = owner
        self._heartbeat.hold(job_id, owner)
        return True

    def claim(self, job_id: str, owner: Owner) -> None:
        """Take the job's lease for ``owner`` and keep it beating. Thread-safe.

        Raises:
            JobOwnedError: When another owner's lease has beaten within
                ``lease_ttl``; nothing is changed then.
            CheckpointError: When the lease file cannot be written.
        """
        self._file(job_id)  # a job id that cannot name a file is refused here
        with (
            self._guard(f"claim job {job_id!r}", write=True),
            self._leases.locked(),
        ):
            self._leases.take(job_id, owner)
        self._fenced[job_id] = owner
        self._heartbeat.hold(job_id, owner)

    def release(self, job_id: str, owner: Owner) -> None:
        """Give the job's lease up if ``owner`` holds it. Thread-safe.

        Raises:
            CheckpointError: When the lease file cannot be removed.
        """
        self._heartbeat.drop(job_id, owner)
        if self._fenced.get(job_id) is owner:
            del self._fenced[job_id]
        with (
            self._guard(f"release job {job_id!r}", write=True),
            self._leases.locked(),
        ):
            self._leases.release(job_id, owner)

    @contextmanager
    def _fence(self, job_id: str) -> Iterator[None]:
        """Around a write of ``job_id``: refuse it if this store lost its lease.

        Only for a job whose lease this store took; the leases' lock is held
        through the write (the store's lock is held already).

        Raises:
            JobOwnedError: When the lease was taken over (nothing is written).
        """
        owner = self._fenced.get(job_id)
        if owner is None:
            yield
            return
        with self._leases.locked():
            self._leases.check(job_id, owner)
            yield

    def lease_of(self, job_id: str) -> dict[str, Any] | None:
        """The job's lease: ``{"pid", "host", "live", "beat_age"}``, or None.

        Raises:
            CheckpointError: When the lease file is corrupt or cannot be read.
        """
        self._file(job_id)
        with self._guard(f"read the lease of job {job_id!r}"):
            return self._leases.lease_of(job_id)

    def _beat(self, held: list[tuple[str, Owner]]) -> None:
        with self._guard("beat job leases", write=True), self._leases.locked():
            self._leases.beat(held)


def checked_activation(
    activation: dict[str, Any], job_id: str, where: str
) -> dict[str, Any]:
    """A checked pending activation with exactly the four keys, as files keep it.

    Its payload is in the tagged encoding of :mod:`.payloads`.
    """
    activation_id, routine_id, slot, payload = activation_fields(
        activation, job_id, where
    )
    what = f"activation {activation_id!r} of job {job_id!r}"
    return {
        "id": activation_id,
        "routine_id": routine_id,
        "slot": slot,
        "payload": encoded_values(payload, where, what),
    }
