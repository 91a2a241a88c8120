"""The driver's side of remote calls: a flow bound to the strategy's actors.

Before each job starts, :meth:`RayStrategy.bind_flow` describes every routine of
the flow from its document entry (class + config, as ``Flow.serialize`` writes
it), keys it by flow id, routine id and a hash of the entry and of the routine's
connections, places it on an actor and installs it there. Anything a worker
could not rebuild is refused then, before the job exists.

During the job, :meth:`FlowBinding.call` is the handler call: one actor call per
activation, awaited on the runtime's event loop, whose reply is the handler's
value or error and what it emitted. The emits are routed here, by the driver's
ledger; retries, circuit breakers, merges and checkpoints never leave it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from ...exceptions import RemoteHandlerError, WorkerLostError
from ..base import DONE, MISSING

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from types import ModuleType

    from ...routine import Routine
    from ._batch import Batcher

__all__ = ["FlowBinding", "Spot", "entry_key", "unpack_error"]

_log = logging.getLogger("routilux.strategies.ray")

#: Seconds a retry waits for Ray to restart the actor that died under a call.
RESTART_WAIT = 120.0
#: Seconds to wait for an actor's statistics when a job ends.
STATS_TIMEOUT = 60.0


class Spot:
    """Where one routine of a flow lives: its key, entry and actor.

    Attributes:
        key: ``<flow id>/<routine id>/<hash of entry and connections>``.
        prefix: ``<flow id>/<routine id>`` (a new key replaces the old one).
        routine_id: The routine's id in the flow.
        entry: The routine's flow-document entry, stats left out.
        modules: The allow-list the actor resolves the class with.
        actor: The actor handle that holds the routine.
    """

    __slots__ = ("actor", "entry", "key", "modules", "prefix", "routine_id")

    def __init__(
        self,
        key: str,
        prefix: str,
        routine_id: str,
        entry: dict[str, Any],
        modules: list[str],
        actor: Any,
    ) -> None:
        self.key = key
        self.prefix = prefix
        self.routine_id = routine_id
        self.entry = entry
        self.modules = modules
        self.actor = actor

    def install_args(self) -> tuple[Any, ...]:
        """The arguments of the actor's ``install``."""
        return (self.key, self.prefix, self.routine_id, self.entry, self.modules)


def entry_key(flow_id: str, rid: str, entry: dict[str, Any], wiring: Any) -> str:
    """The key of a routine: what it is built from and how it is connected."""
    digest = hashlib.sha256(
        orjson.dumps([entry, wiring], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()[:16]
    return f"{flow_id}/{rid}/{digest}"


class _RemoteTraceback(Exception):
    """The traceback text of an error raised on a worker (set as its cause)."""

    def __str__(self) -> str:
        return f"\n\nthe error was raised on a Ray worker:\n{self.args[0]}"


def unpack_error(packed: dict[str, Any]) -> BaseException:
    """The driver's exception for an error packed on a worker.

    The original exception when it travelled, else a
    :class:`~routilux.RemoteHandlerError` with its type, text and traceback; the
    worker's traceback text is the exception's ``__cause__``.
    """
    error: BaseException | None = packed["error"]
    if error is None:
        error = RemoteHandlerError(
            f"{packed['type']}: {packed['message']} (raised on a Ray worker; the "
            "exception could not be sent back as itself)",
            packed["type"],
            packed["traceback"],
        )
    error.__cause__ = _RemoteTraceback(packed["traceback"])
    return error


class FlowBinding:
    """One flow's routines placed on actors: the runtime's RemoteCalls.

    Args:
        ray: The ``ray`` module.
        spots: Routine id -> where it lives.
        routines: Routine id -> the driver's routine (its stats are written back).
    """

    def __init__(
        self,
        ray: ModuleType,
        spots: dict[str, Spot],
        routines: dict[str, Routine],
        batcher: Batcher,
    ) -> None:
        self._ray = ray
        self._spots = spots
        self._routines = routines
        self._batcher = batcher
        #: id() of actors that died under a call of this job: the next call to
        #: one (a retry) first waits for Ray to have restarted it.
        self._lost: set[int] = set()

    def call(self, activation: Any) -> Any:
        """Start the handler call of ``activation`` on its actor (a coroutine)."""
        return self._call(activation)

    async def _call(self, activation: Any) -> Any:
        rid = activation.routine_id
        spot = self._spots.get(rid)
        if spot is None:
            raise LookupError(f"routine {rid!r} was not placed on a Ray actor")
        slot = activation.route.slot.name
        args = (spot.key, rid, slot, activation.payload, activation.lane)
        if self._lost and id(spot.actor) in self._lost:
            await self._until_restarted(spot)
        reply = await self._batched(spot, args)
        if reply[0] == MISSING:  # a restarted actor: build the routine again
            await self._ask(spot, "install", spot.install_args())
            reply = await self._batched(spot, args)
            if reply[0] == MISSING:
                raise WorkerLostError(
                    f"routine {rid!r}: its Ray actor lost it again right after "
                    "it was rebuilt"
                )
        _, result, emits = reply
        job = activation.job
        for event_name, data in emits:
            job.emit(rid, event_name, data, activation)
        if reply[0] == DONE:
            return result
        raise unpack_error(result)

    async def _batched(self, spot: Spot, args: tuple[Any, ...]) -> Any:
        """The reply of one call, sent in a batch with its routine's others."""
        return await self._guard(spot, self._batcher.send(spot, args))

    async def _ask(self, spot: Spot, method: str, args: tuple[Any, ...]) -> Any:
        """The reply of one actor call made on its own (install, ping)."""
        ref = getattr(spot.actor, method).remote(*args)
        return await self._guard(spot, asyncio.wrap_future(ref.future()))

    async def _guard(self, spot: Spot, reply: Awaitable[Any]) -> Any:
        """Await ``reply``; Ray's errors become the runtime's.

        A reply that Ray could not send (a value it cannot pickle) fails every
        call of its batch: their handlers ran, their answers are lost.
        """
        ray = self._ray
        try:
            return await reply
        except ray.exceptions.RayActorError as exc:
            self._lost.add(id(spot.actor))
            raise WorkerLostError(
                f"routine {spot.routine_id!r}: its Ray actor died during the call "
                f"({type(exc).__name__}: {_first_line(exc)})"
            ) from exc
        except ray.exceptions.RayError as exc:
            raise RemoteHandlerError(
                f"routine {spot.routine_id!r}: the Ray call failed: "
                f"{type(exc).__name__}: {_first_line(exc)}",
                f"{type(exc).__module__}.{type(exc).__qualname__}",
                str(exc),
            ) from exc

    async def _until_restarted(self, spot: Spot) -> None:
        """Wait (bounded) until Ray has restarted the actor that died."""
        ray = self._ray
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESTART_WAIT
        while True:
            try:
                await asyncio.wrap_future(spot.actor.ping.remote().future())
            except ray.exceptions.ActorUnavailableError:
                if loop.time() < deadline:
                    await asyncio.sleep(0.05)  # restarting: ask again shortly
                    continue
            except ray.exceptions.RayError:
                pass  # dead for good, or worse: the call itself will say so
            self._lost.discard(id(spot.actor))
            return

    def _stats_of(self, ref: Any, job_state: Any) -> dict[str, dict[str, Any]]:
        ray = self._ray
        try:
            found: dict[str, dict[str, Any]] = ray.get(ref, timeout=STATS_TIMEOUT)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            _log.warning(
                "job %s: a Ray actor did not answer for its routines' statistics "
                "(it died or is restarting); they keep the values they had",
                getattr(job_state, "job_id", "?"),
            )
            return {}
        return found

    def job_ended(self, job_state: Any) -> None:
        """Bring the routines' statistics back from their actors.

        An actor that died has lost its routines' statistics with its process:
        the driver then keeps the ones it had (a warning says so).
        """
        by_actor: dict[int, tuple[Any, list[str]]] = {}
        for spot in self._spots.values():
            held = by_actor.setdefault(id(spot.actor), (spot.actor, []))
            held[1].append(spot.key)
        refs = [actor.stats.remote(keys) for actor, keys in by_actor.values()]
        found: dict[str, dict[str, Any]] = {}
        for ref in refs:
            found.update(self._stats_of(ref, job_state))
        for rid, spot in self._spots.items():
            stats = found.get(spot.key)
            if stats is not None:
                stats.pop("circuit_breaker", None)  # the driver's breaker counts
                _adopt_stats(self._routines[rid], stats)


def _adopt_stats(routine: Routine, stats: dict[str, Any]) -> None:
    """Make the driver's statistics of ``routine`` those its worker kept."""
    gone = [key for key in routine.stats() if key not in stats]
    if gone:
        routine.reset_stats(gone)
    for key, value in stats.items():
        routine.set_stat(key, value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
