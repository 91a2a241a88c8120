"""The runtime on a remote host: routines rebuilt from their flow entries.

A remote strategy (``ray``) runs :class:`HostWorker` in its worker processes
(the runner hands the class to the strategy's ``bind_flow``, so that strategies
never import the runtime). A host holds many routine instances, each under a
*key* (flow id, routine id and a hash of the routine's document entry), and runs
calls on its threads, each in a frame of its own that keeps what the handler
emits. Nothing here imports Ray: only plain data travels (entries, payloads,
replies).

A call that finds no routine under its key answers :data:`MISSING`: the actor
was restarted (its routines went with the old process) or the routine was
rebuilt under a new key; the driver then installs it again and repeats the call.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import pickle
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..exceptions import SessionError
from ..serialization._resolver import Resolver
from ..serialization._routines import read_routine
from ..serialization._writer import SCHEMA_VERSION
from ..strategies.base import DONE, FAILED, MISSING
from .context import enter, leave

if TYPE_CHECKING:
    from ..routine import Routine
    from ..slot import Slot

__all__ = ["HostWorker", "pack_error"]

#: Threads that run the calls of batches on one host.
POOL_THREADS = 32


def pack_error(exc: BaseException) -> dict[str, Any]:
    """An error as the driver gets it: the exception when it survives pickling.

    ``error`` is None when the exception cannot be pickled and read back (a class
    the driver could not rebuild it with); ``type``, ``message`` and
    ``traceback`` always travel, so the driver can wrap it.
    """
    kind = type(exc)
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ still leaves the type
        text = f"<unprintable {kind.__name__} object>"
    try:
        trace = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    except Exception:  # noqa: BLE001 - format_exception calls a broken __str__
        trace = f"{kind.__name__}: {text}"
    portable: BaseException | None = exc
    try:
        # Our own bytes, read back at once: does the driver get the same error?
        pickle.loads(pickle.dumps(exc))  # noqa: S301
    except Exception:  # noqa: BLE001 - any failure means: send the text instead
        portable = None
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": text,
        "traceback": trace,
        "error": portable,
    }


class _Route:
    """What ``Slot.data`` reads of the running activation's route."""

    __slots__ = ("slot",)

    def __init__(self, slot: Slot) -> None:
        self.slot = slot


class _WorkerFrame:
    """The execution context of a handler on a host (the runtime's Frame).

    Emits are kept, in order, for the driver to route; the job's other
    services (session state, slot data) answer from what the host holds.
    """

    __slots__ = ("_host", "emits", "lane", "payload", "route", "routine", "routine_id")

    def __init__(
        self,
        host: HostWorker,
        routine: Routine,
        routine_id: str,
        slot: Slot,
        payload: dict[str, Any],
        lane: Any,
    ) -> None:
        self._host = host
        self.routine = routine
        self.routine_id = routine_id
        self.route = _Route(slot)
        self.payload = payload
        self.lane = lane
        self.emits: list[tuple[str, dict[str, Any]]] = []

    @property
    def job(self) -> _WorkerFrame:
        return self

    @property
    def activation(self) -> _WorkerFrame:
        return self

    def id_of(self, routine: Any) -> str | None:
        return self.routine_id if routine is self.routine else None

    def emit(
        self, routine_id: str, event_name: str, data: dict[str, Any], source: Any
    ) -> None:
        self.emits.append((event_name, data))

    def slot_data(self, slot: Slot) -> dict[str, Any]:
        return dict(self.payload) if slot is self.route.slot else {}

    def session_state(self) -> dict[str, Any]:
        return self._host.session(self.routine_id, self.lane)

    def as_context(self) -> None:
        # The flow and its JobState stay on the driver: a handler on a worker
        # sees no execution context, as outside a job.
        return None


class HostWorker:
    """A host actor's state: routine instances by key, and their session states."""

    def __init__(self) -> None:
        self._routines: dict[str, tuple[str, Routine]] = {}
        self._sessions: dict[tuple[str, Any], dict[str, Any]] = {}
        self._lock = threading.Lock()  # guards _routines, _sessions, _pool's start
        self._pool: ThreadPoolExecutor | None = None  # runs batches' calls

    def ping(self) -> int:
        """The actor's process id (the driver waits on it for the actor to be up)."""
        return os.getpid()

    def install(
        self, key: str, prefix: str, rid: str, entry: dict[str, Any], modules: list[str]
    ) -> None:
        """Build routine ``rid`` from its flow entry under ``key`` (idempotent).

        The class resolves through the allow-list ``modules``, as in
        ``Flow.deserialize``. A routine of the same ``prefix`` (flow and routine
        id) under another key is dropped: its wiring or config changed.

        Raises:
            SerializationError: When the entry cannot be rebuilt here.
        """
        with self._lock:
            if key in self._routines:
                return
        routine = read_routine(rid, entry, Resolver(modules), SCHEMA_VERSION)
        with self._lock:
            for old in [k for k, (p, _) in self._routines.items() if p == prefix]:
                del self._routines[old]
            self._routines.setdefault(key, (prefix, routine))

    def call(
        self, key: str, rid: str, slot_name: str, payload: dict[str, Any], lane: Any
    ) -> tuple[Any, ...]:
        """Call a slot's handler; the reply says what happened (never raises)."""
        with self._lock:
            held = self._routines.get(key)
        if held is None:
            return (MISSING,)
        routine = held[1]
        slot = routine.get_slot(slot_name)
        if slot is None and slot_name == "trigger":
            slot = routine.entry_slot()
        if slot is None:
            error = LookupError(f"routine {rid!r} has no slot {slot_name!r}")
            return (FAILED, pack_error(error), [])
        frame = _WorkerFrame(self, routine, rid, slot, payload, lane)
        # Handlers reach the job through the frame: this one stands in for it.
        token = enter(frame)  # type: ignore[arg-type]
        try:
            value = slot.invoke(payload)
            if inspect.isawaitable(value):
                value = asyncio.run(_finish(value))
        except BaseException as exc:  # noqa: BLE001 - every error goes back
            return (FAILED, pack_error(exc), frame.emits)
        finally:
            leave(token)
        return (DONE, value, frame.emits)

    def call_many(self, calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Make several calls side by side; their replies, in order."""
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        POOL_THREADS, thread_name_prefix="routilux-host"
                    )
                pool = self._pool
        running = [pool.submit(self.call, *args) for args in calls]
        return [future.result() for future in running]

    def stats(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The statistics of the routines under ``keys`` that this host holds."""
        with self._lock:
            held = {k: self._routines[k][1] for k in keys if k in self._routines}
        return {key: routine.stats() for key, routine in held.items()}

    def session(self, rid: str, lane: Any) -> dict[str, Any]:
        """The state routine ``rid`` keeps for ``lane`` on this host."""
        if lane is None:
            raise SessionError(
                f"routine {rid!r} read session_state in an activation without a session"
            )
        with self._lock:
            return self._sessions.setdefault((rid, lane), {})


async def _finish(pending: Any) -> Any:
    return await pending
