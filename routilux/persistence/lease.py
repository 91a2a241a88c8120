"""Job ownership: who runs a stored job, and the heartbeat that says so.

A job being run is *leased* by one :class:`Owner` (process id, host, a random
token). The lease lives in the store beside the job, with the time of its last
*beat*. A store's :class:`Heartbeat` thread beats the leases it holds every third
of ``lease_ttl``; a lease that has not beaten for ``lease_ttl`` seconds belongs to
a process that died (or hung), and another may take the job over. So may a
lease whose process, on this host, is known to have ended (:func:`owner_died`):
a job whose process was killed can be resumed on its host at once. Taking a lease
is one store transaction, so of two processes (or two threads, each with its own
token) that try at once exactly one wins; the other gets
:class:`~routilux.JobOwnedError` naming the owner.

Stores that keep leases implement :class:`LeasingStore`; the runtime runs jobs
without ownership on a store that does not.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..exceptions import CheckpointError, JobOwnedError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "DEFAULT_LEASE_TTL",
    "INTERRUPTED",
    "Heartbeat",
    "LeasingStore",
    "Owner",
    "check_clock",
    "check_lease_ttl",
    "described",
    "is_live",
    "owned_error",
    "owner_died",
    "query_status",
    "with_leases",
]

#: Seconds a lease stays live without a beat, unless a store is told otherwise.
DEFAULT_LEASE_TTL = 30.0
#: The ``list_jobs`` status filter for running jobs whose lease is not live.
INTERRUPTED = "interrupted"
_HOST = socket.gethostname()


@dataclass(frozen=True)
class Owner:
    """Who runs a job: a process on a host, and a token unique to one claim.

    Two threads of one process that claim the same job have different tokens,
    so they are different owners.
    """

    pid: int
    host: str
    token: str

    @classmethod
    def new(cls) -> Owner:
        """An owner for this process with a fresh random token."""
        return cls(os.getpid(), _HOST, secrets.token_hex(16))


@runtime_checkable
class LeasingStore(Protocol):
    """A checkpoint store that keeps job leases (both built-in stores do).

    Every method is one transaction of the store and raises
    :class:`~routilux.CheckpointError` when the store cannot read or write.
    """

    def begin_job(
        self, job: dict[str, Any], added: Sequence[dict[str, Any]], owner: Owner
    ) -> bool:
        """Store a new job, its first pending activations and its lease, at once.

        Returns:
            True when written; False, writing nothing, when the store already
            holds a job with that id.
        """

    def claim(self, job_id: str, owner: Owner) -> None:
        """Take the job's lease for ``owner``.

        Raises:
            JobOwnedError: When another owner's lease is live.
        """

    def release(self, job_id: str, owner: Owner) -> None:
        """Give the lease up if ``owner`` holds it (else do nothing)."""

    def lease_of(self, job_id: str) -> dict[str, Any] | None:
        """``{"pid", "host", "live", "beat_age"}`` of the job's lease, or None."""

    def close(self) -> None:
        """Stop the heartbeat and release files and connections."""


def check_lease_ttl(value: object, where: str) -> float:
    """A finite number of seconds > 0.

    Raises:
        CheckpointError: Naming the setting and the store.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise CheckpointError(
            f"{where}: lease_ttl must be a finite number of seconds > 0, got {value!r}"
        )
    return float(value)


def check_clock(value: object, where: str) -> Callable[[], float]:
    """A callable returning seconds (``time.time`` by default).

    Raises:
        CheckpointError: When ``value`` is not callable.
    """
    if not callable(value):
        raise CheckpointError(
            f"{where}: clock must be a callable returning seconds, got "
            f"{type(value).__name__}"
        )
    return value


def owned_error(job_id: str, row: Sequence[Any], now: float) -> JobOwnedError:
    """The error for a job whose live lease ``(pid, host, token, beat)`` is not ours."""
    pid, host, _token, beat = row[:4]
    return JobOwnedError(
        f"job {job_id!r} is owned by process {pid} on host {host!r} (its lease "
        f"beat {max(0.0, now - beat):.1f}s ago); wait for it to end, or resume it "
        "once its lease has not beaten for lease_ttl seconds",
        job_id=job_id,
        pid=int(pid),
        host=str(host),
    )


def lost_lease_error(
    job_id: str, owner: Owner, row: Sequence[Any] | None, now: float
) -> JobOwnedError:
    """The error refusing a write of ``owner``, whose lease on the job is gone.

    Args:
        job_id: The job.
        owner: The owner that took the lease and now writes.
        row: The lease the store holds now, ``(pid, host, token, beat)``, or
            None when it holds none.
        now: The store's time.
    """
    if row is None:
        return JobOwnedError(
            f"job {job_id!r}: this process's lease on it is gone (it lapsed, "
            "and the job was taken over and ended or was deleted): its steps "
            "are no longer written",
            job_id=job_id,
            pid=owner.pid,
            host=owner.host,
        )
    taken = owned_error(job_id, row, now)
    return JobOwnedError(
        f"{taken}; this process's lease lapsed and was taken over: its steps are "
        "no longer written",
        job_id=job_id,
        pid=taken.pid,
        host=taken.host,
    )


class Heartbeat:
    """Beats a store's leases from one daemon thread while it holds any.

    The thread starts with the first lease held and ends when none is left, or
    at :meth:`stop` (the store's ``close``), which joins it.

    Args:
        name: The thread's name.
        interval: Seconds between beats.
        beat: Writes the beat of the given ``(job_id, owner)`` leases (one store
            transaction). Its errors are kept in :attr:`last_error`: a lease
            that cannot beat expires, and another process may take the job.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        beat: Callable[[list[tuple[str, Owner]]], None],
    ) -> None:
        self._name = name
        self._interval = interval
        self._beat = beat
        # Guards _held, _thread and _stopped.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._held: dict[tuple[str, str], Owner] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False
        #: The last error a beat raised, if any (the thread goes on).
        self.last_error: BaseException | None = None

    def hold(self, job_id: str, owner: Owner) -> None:
        """Beat this lease from now on."""
        with self._lock:
            if self._stopped:
                return
            self._held[job_id, owner.token] = owner
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self._name, daemon=True
                )
                self._thread.start()

    def drop(self, job_id: str, owner: Owner) -> None:
        """Stop beating this lease; the thread ends when it was the last."""
        with self._lock:
            self._held.pop((job_id, owner.token), None)
            if not self._held:
                self._wake.notify_all()

    def held(self) -> int:
        """How many leases are beating."""
        with self._lock:
            return len(self._held)

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread and wait (at most ``timeout`` s) for it. Idempotent."""
        with self._lock:
            self._stopped = True
            self._held.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        deadline = time.monotonic() + self._interval
        while True:
            with self._lock:
                while self._held and not self._stopped:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                if not self._held or self._stopped:
                    self._thread = None
                    return
                leases = [(job_id, owner) for (job_id, _), owner in self._held.items()]
            try:
                self._beat(leases)
            except Exception as exc:  # noqa: BLE001 - kept; the lease expires
                self.last_error = exc
            deadline = time.monotonic() + self._interval


def owner_died(pid: int, host: str) -> bool:
    """Whether ``pid`` on ``host`` is known to have ended.

    Only a process of this host can be looked at: a lease of another host is
    judged by its beat alone. A pid taken again by a new process looks alive,
    so its lease waits for ``lease_ttl`` (the safe side). Windows is not
    looked at (``os.kill`` ends a process there).
    """
    if os.name == "nt" or host != _HOST or pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, but is not ours to signal
        return False
    return False


def is_live(pid: int, host: str, beat_at: float, now: float, ttl: float) -> bool:
    """A lease that has beaten within ``ttl`` and whose process has not ended."""
    return now - beat_at < ttl and not owner_died(pid, host)


def described(
    pid: int, host: str, beat_at: float, now: float, ttl: float
) -> dict[str, Any]:
    """A lease as the stores show it: ``{"pid", "host", "live", "beat_age"}``."""
    live = is_live(pid, host, beat_at, now, ttl)
    return {"pid": pid, "host": host, "live": live, "beat_age": now - beat_at}


def query_status(status: Any) -> Any:
    """The status a store selects for ``status`` (``interrupted`` is ``running``)."""
    return "running" if status == INTERRUPTED else status


def with_leases(
    summaries: list[dict[str, Any]],
    leases: dict[str, dict[str, Any]],
    status: Any,
    owners: bool,
) -> list[dict[str, Any]]:
    """``list_jobs`` rows with ownership: filtered for ``interrupted``, annotated.

    Args:
        summaries: The rows the store selected (``running`` ones for
            ``interrupted``).
        leases: The store's leases by job id (:func:`described`).
        status: The status asked for.
        owners: Add ``owner`` (``{"pid", "host"}`` of the lease, or None) and
            ``live`` (the lease has beaten within ``lease_ttl``) to each row.
    """
    rows = []
    for row in summaries:
        lease = leases.get(row["job_id"])
        live = lease is not None and bool(lease["live"])
        if status == INTERRUPTED and live:
            continue
        if owners:
            row["owner"] = (
                None if lease is None else {"pid": lease["pid"], "host": lease["host"]}
            )
            row["live"] = live
        rows.append(row)
    return rows
