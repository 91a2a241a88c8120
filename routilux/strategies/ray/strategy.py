"""The ``ray`` strategy: handlers run on Ray actors, the job stays on the driver.

Tasks are queued, gated and taken exactly as by the ``concurrent`` strategy (its
FIFOs, session lanes and ``max_concurrency`` gates), in this process. What runs
elsewhere is only the handler call: the runtime awaits it on its event loop
through the flow's :class:`~._binding.FlowBinding`, so a pool thread hands an
activation to an actor and takes the next one at once.

Placement: by default a few *host* actors (one per CPU of the Ray instance, or
``num_cpus``) each hold many routine instances and run calls on threads; a
routine lives on one host, the one holding fewest when the routine is first
placed, for the strategy's life, so a session's work always reaches the same
host and instance. ``placement="dedicated"`` gives
each routine an actor of its own. Actors are made once, under the strategy's
lock, and killed by :meth:`RayStrategy.shutdown`.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from ...exceptions import (
    ConfigurationError,
    SerializationError,
    StrategyShutdownError,
    WorkerLostError,
)
from ...serialization._writer import routine_to_dict
from ..base import StrategyState, run_task
from ..threaded import ThreadedStrategy
from ._batch import Batcher
from ._binding import FlowBinding, Spot, entry_key
from ._loader import import_ray

if TYPE_CHECKING:
    from types import ModuleType

    from ...routine import Routine
    from ..base import Task

__all__ = ["RayStrategy"]

#: Seconds to wait for actors to come up, or to answer an install.
START_TIMEOUT = 180.0
#: Threads of one actor, unless ``actor_options`` says otherwise.
ACTOR_THREADS = 32
PLACEMENTS = ("host", "dedicated")


class RayStrategy(ThreadedStrategy):
    """Runs handlers on Ray actors built from the flow document.

    Args:
        max_workers: Threads on the driver that hand activations to actors (they
            do not wait for the answers).
        name_prefix: Prefix of those threads' names.
        address: The Ray instance to join (``"auto"``, ``"ray://host:10001"``);
            None joins the one this process already uses, else starts a local one.
        num_cpus: CPUs of a local instance this strategy starts, and the number
            of host actors (None: every CPU the instance has).
        actor_options: More ``ray.remote`` options for the actors
            (``num_gpus``, ``resources``, ``max_concurrency``, ...).
        max_restarts: How often Ray restarts a dead actor (its routines are
            rebuilt from their entries on the next call).
        placement: ``"host"`` (routines share host actors) or ``"dedicated"``
            (an actor per routine).
        max_task_retries: Ray's own silent re-runs of a call whose actor died
            (0: none; the routine's error policy decides instead).
        runtime_env: Ray's ``runtime_env`` for the actors (how workers find the
            modules the routine classes are defined in).

    Raises:
        ExtraNotInstalledError: When Ray is not installed.
        ConfigurationError: For a bad ``placement``, ``max_restarts`` or
            ``max_task_retries``.
    """

    name = "ray"

    def __init__(
        self,
        max_workers: int = 4,
        name_prefix: str = "routilux",
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        actor_options: dict[str, Any] | None = None,
        max_restarts: int = 3,
        placement: str = "host",
        max_task_retries: int = 0,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        if placement not in PLACEMENTS:
            raise ConfigurationError(
                f"RayStrategy placement must be one of {list(PLACEMENTS)}, "
                f"got {placement!r}"
            )
        for label, value in (
            ("max_restarts", max_restarts),
            ("max_task_retries", max_task_retries),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise ConfigurationError(
                    f"RayStrategy {label} must be an int >= -1, got {value!r}"
                )
        self._ray: ModuleType = import_ray()  # before any thread starts
        super().__init__(max_workers, name_prefix)
        self.address = address
        self.num_cpus = num_cpus
        self.placement = placement
        self._options: dict[str, Any] = {
            "max_restarts": max_restarts,
            "max_task_retries": max_task_retries,
            "max_concurrency": ACTOR_THREADS,
            "num_cpus": 0,  # the actors only hold routines; the pool bounds work
            "scheduling_strategy": "SPREAD",
            **({"runtime_env": runtime_env} if runtime_env else {}),
            **(actor_options or {}),
        }
        # Guards the connection, the actors and what was installed on them.
        self._place_lock = threading.Lock()
        self._connected = False
        self._owns_ray = False  # this strategy called ray.init
        self._hosts: list[Any] = []
        self._host_load: list[int] = []  # routines placed on each host
        self._host_of: dict[str, int] = {}  # flow id/routine id -> host index
        self._dedicated: dict[str, tuple[str, Any]] = {}  # prefix -> (key, actor)
        self._installed: set[tuple[int, str]] = set()  # (id(actor), key)
        self._batcher = Batcher()  # used on the runtime's event loop only
        self._host_class: type = object  # the runtime's HostWorker, once bound

    # -- tasks --

    def submit(self, task: Task) -> None:
        """Queue ``task``; one emitted on the event loop is handed over at once.

        An activation a remote handler emitted is made on the runtime's event
        loop, where running it only starts its remote call: with no gate to
        pass (no ``max_concurrency``, no session lane) it is run there, saving
        a pool thread's wake-up per hop of a chain. Thread-safe.
        """
        if (
            task.limit is None
            and task.serial_key is None
            and self._batcher.on_loop()
            and self._run_here(task)
        ):
            return
        super().submit(task)

    def _run_here(self, task: Task) -> bool:
        """Run ``task`` in this thread, accounted as the pool would; False: no."""
        with self._lock:
            if self._dropping or self._state is StrategyState.CLOSED:
                return False
            self._in_flight += 1
            self._busy += 1
        pending = run_task(task)
        with self._lock:
            self._busy -= 1
            if pending is None:
                self._settle_locked(task, ran=True)  # no gate: nothing to free
            else:
                self._awaiting += 1
        if pending is not None:
            pending.add_done_callback(self._settler(task))
        return True

    # -- binding flows --

    def bind_flow(self, flow: Any, host: type) -> FlowBinding:
        """Place and install ``flow``'s routines on actors, for one job.

        ``host`` is the class the actors run (the runtime's
        :class:`~routilux.runtime.remote.HostWorker`); the first call starts the
        host actors with it.

        Raises:
            StrategyShutdownError: After :meth:`shutdown`.
            ConfigurationError: For a routine the workers cannot rebuild (a class
                not importable there, a lambda merge strategy, a value that is not
                plain JSON); the message names the routine.
        """
        described = {
            rid: _describe(flow, rid, routine) for rid, routine in flow.routines.items()
        }
        with self._place_lock:
            if self._state is StrategyState.CLOSED:
                raise StrategyShutdownError(
                    "cannot schedule new activations after shutdown"
                )
            self._connect_locked(host)
            spots = {
                rid: self._place_locked(flow.flow_id, rid, *parts)
                for rid, parts in described.items()
            }
        self._install(spots)
        return FlowBinding(self._ray, spots, dict(flow.routines), self._batcher)

    def _connect_locked(self, host: type) -> None:
        if self._connected:
            return
        self._host_class = host
        ray = self._ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False}
            if self.address is None and not os.environ.get("RAY_ADDRESS"):
                # Ray starts a local instance: these settings are its own.
                options.update(include_dashboard=False, num_cpus=self.num_cpus)
            try:
                ray.init(address=self.address, **options)
            except Exception as exc:
                where = self.address or os.environ.get("RAY_ADDRESS") or "local"
                raise ConfigurationError(
                    f"the ray strategy could not start or join Ray ({where}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self._owns_ray = True
        if self.placement == "host":
            count = self.num_cpus or int(ray.cluster_resources().get("CPU", 1))
            self._hosts = [self._new_actor() for _ in range(max(count, 1))]
            self._host_load = [0] * len(self._hosts)
            ray.get([host.ping.remote() for host in self._hosts], timeout=START_TIMEOUT)
        self._connected = True

    def _new_actor(self) -> Any:
        return self._ray.remote(self._host_class).options(**self._options).remote()

    def _place_locked(
        self, flow_id: str, rid: str, entry: dict[str, Any], wiring: Any, modules: Any
    ) -> Spot:
        prefix = f"{flow_id}/{rid}"
        hashed = {k: v for k, v in entry.items() if k != "stats"}
        key = entry_key(flow_id, rid, hashed, wiring)
        if self.placement == "host":
            actor = self._hosts[self._host_index_locked(prefix)]
        else:
            held = self._dedicated.get(prefix)
            if held is not None and held[0] == key:
                actor = held[1]
            else:
                if held is not None:  # rebuilt: its wiring or config changed
                    self._ray.kill(held[1], no_restart=True)
                actor = self._new_actor()
                self._dedicated[prefix] = (key, actor)
        return Spot(key, prefix, rid, entry, modules, actor)

    def _host_index_locked(self, prefix: str) -> int:
        """The host of a routine: the one holding fewest, fixed at first placement.

        Fixed for the strategy's life, so every activation of a routine (a
        session's included) reaches the same host and instance.
        """
        index = self._host_of.get(prefix)
        if index is None:
            index = min(range(len(self._hosts)), key=self._host_load.__getitem__)
            self._host_of[prefix] = index
            self._host_load[index] += 1
        return index

    def _install(self, spots: dict[str, Spot]) -> None:
        """Build the routines not yet built on their actors; wait for each."""
        ray = self._ray
        with self._place_lock:
            todo = [
                s for s in spots.values() if (id(s.actor), s.key) not in self._installed
            ]
        refs = [spot.actor.install.remote(*spot.install_args()) for spot in todo]
        for spot, ref in zip(todo, refs, strict=True):
            try:
                ray.get(ref, timeout=START_TIMEOUT)
            except ray.exceptions.RayActorError as exc:
                raise WorkerLostError(
                    f"routine {spot.routine_id!r}: its Ray actor died while the "
                    f"routine was built: {exc}"
                ) from exc
            except ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None) or exc
                raise ConfigurationError(
                    f"routine {spot.routine_id!r} (class "
                    f"{spot.entry.get('class')!r}) could not be built on a Ray "
                    f"worker: {type(cause).__name__}: {cause}; the class must be "
                    "importable on the workers (an installed package, or a module "
                    "the runtime_env ships)"
                ) from exc
            with self._place_lock:
                self._installed.add((id(spot.actor), spot.key))

    # -- what the tests and the benchmarks reach --

    def actors(self) -> list[Any]:
        """The actor handles made so far (hosts, then dedicated ones)."""
        with self._place_lock:
            return [*self._hosts, *(actor for _, actor in self._dedicated.values())]

    def actor_of(self, flow_id: str, routine_id: str) -> Any:
        """The actor that holds ``routine_id`` of flow ``flow_id``.

        Raises:
            KeyError: When no job of the flow has placed the routine yet.
        """
        prefix = f"{flow_id}/{routine_id}"
        with self._place_lock:
            if self.placement == "host":
                return self._hosts[self._host_of[prefix]]
            return self._dedicated[prefix][1]

    # -- lifecycle --

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop, kill this strategy's actors, and leave Ray as it was found.

        A Ray instance this strategy started (or connected to) is shut down; one
        that was running in this process already is left alone. Idempotent.
        """
        super().shutdown(wait=wait, timeout=timeout)
        with self._place_lock:
            actors = [*self._hosts, *(actor for _, actor in self._dedicated.values())]
            self._hosts, self._dedicated = [], {}
            self._host_of, self._host_load = {}, []
            self._installed.clear()
            owns, self._owns_ray = self._owns_ray, False
            self._connected = False
        ray = self._ray
        if ray.is_initialized():
            for actor in actors:
                ray.kill(actor, no_restart=True)
            if owns:
                ray.shutdown()

    def stats(self) -> dict[str, Any]:
        """The pool's statistics, with ``actors`` and ``placement``."""
        stats = super().stats()
        with self._place_lock:
            stats["actors"] = len(self._hosts) + len(self._dedicated)
        stats["placement"] = self.placement
        return stats


def _describe(flow: Any, rid: str, routine: Routine) -> tuple[Any, Any, Any]:
    """A routine's entry, connections and allow-list, checked for the workers.

    Raises:
        ConfigurationError: Naming the routine and what a worker cannot rebuild.
    """
    cls = type(routine)
    name = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ConfigurationError(
            f"routine {rid!r}: class {name} cannot be imported on Ray workers; "
            "define it at the top level of an importable module"
        )
    for name in routine.get_spec().slots:
        slot = routine.get_slot(name)
        if slot is not None and not isinstance(slot.merge_strategy, str):
            raise ConfigurationError(
                f"routine {rid!r} slot {name!r}: its merge strategy "
                f"{slot.merge_strategy!r} is a callable, which Ray workers cannot "
                "rebuild; register it with register_merge_strategy and use its name"
            )
    try:
        entry = routine_to_dict(rid, routine)
    except SerializationError as exc:
        raise ConfigurationError(
            f"routine {rid!r} cannot run on Ray workers: {exc}"
        ) from exc
    wiring = sorted(
        [
            c.source_routine_id or "",
            c.source_event.name if c.source_event else "",
            c.target_routine_id or "",
            c.target_slot.name if c.target_slot else "",
            c.param_mapping or {},
        ]
        for c in flow.connections
        if rid in (c.source_routine_id, c.target_routine_id)
    )
    spec = routine.get_spec()
    modules = {cls.__module__}
    if spec.error_handler is not None:
        modules.update(t.__module__ for t in spec.error_handler.retryable_exceptions)
    return entry, wiring, sorted(modules)
